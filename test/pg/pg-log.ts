import type pg from 'pg'
import { openPgPool, pgKysely, type PgPoolOptions } from '../../src/db/pg/database.js'
import { migrateToLatest } from '../../src/db/migrate.js'
import { PgEventLog, type PgEventLogOptions } from '../../src/event-log/pg-event-log.js'
import type { PgCluster } from '../pg-cluster.js'

interface Teardown { teardown: (fn: () => unknown) => void }

export interface PgTestDatabase {
  name: string
  url: string
  /** A new pool on the database, closed at teardown: one per instance in a multi-instance test. */
  pool: (options?: PgPoolOptions) => pg.Pool
  /** A new event log on its own pool: an instance. */
  log: (options?: PgEventLogOptions & PgPoolOptions) => Promise<PgEventLog>
  query: <R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]) => Promise<R[]>
}

const templates = new WeakMap<PgCluster, Promise<string>>()

/** A database migrated once per cluster, copied for each test (CREATE DATABASE … TEMPLATE): migrating takes longer than copying. */
async function template (cluster: PgCluster): Promise<string> {
  let name = templates.get(cluster)
  if (name === undefined) {
    name = (async () => {
      const created = await cluster.createDatabase('template')
      const db = pgKysely(openPgPool(cluster.url(created), { max: 1 }))
      await migrateToLatest(db, 'postgres')
      await db.destroy()
      return created
    })()
    templates.set(cluster, name)
  }
  return await name
}

/** Teardown functions run by the caller (a property's run, which outlives no test of its own). */
export function scope (): Teardown & { close: () => Promise<void> } {
  const fns: Array<() => unknown> = []
  return {
    teardown: fn => { fns.push(fn) },
    close: async () => { for (const fn of fns.splice(0).reverse()) await fn() }
  }
}

/** A fresh database on the cluster, migrated as the service migrates it. */
export async function migratedDatabase (t: Teardown, cluster: PgCluster): Promise<PgTestDatabase> {
  const name = await cluster.createDatabase('t', await template(cluster))
  const url = cluster.url(name)
  const pools: pg.Pool[] = []
  t.teardown(async () => { for (const pool of pools) await pool.end() })
  const pool = (options: PgPoolOptions = {}): pg.Pool => {
    const created = openPgPool(url, options)
    pools.push(created)
    return created
  }
  const reader = pool()
  return {
    name,
    url,
    pool,
    log: async (options = {}) => {
      const own = openPgPool(url, { max: 1, ...options })
      const log = await PgEventLog.open(own, options)
      t.teardown(async () => {
        await log.close()
        await own.end()
      })
      return log
    },
    query: async (sql, params) => (await reader.query(sql, params)).rows
  }
}
