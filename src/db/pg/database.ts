import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import type { Database, SynchronousMode } from '../database.js'

export interface PgPoolOptions {
  /** Connections this pool opens at most. */
  max?: number
  /** PAYNOTIFY_SYNCHRONOUS: FULL waits for the server's WAL flush at COMMIT (synchronous_commit=on), NORMAL does not. */
  synchronous?: SynchronousMode
  /**
   * PAYNOTIFY_BUSY_TIMEOUT_MS: the longest wait for a lock (lock_timeout) and
   * for a free connection; a statement may run twice as long. Past it the
   * caller gets StoreUnavailableError (503), never a hang.
   */
  busyTimeoutMs?: number
  /** Names the pool's sessions in pg_stat_activity. */
  applicationName?: string
}

// bigint (int8) columns and count(*) come back as strings by default: as numbers here, refusing any
// past 2^53 - 1 rather than rounding it (a position or an amount is never that large).
const int8 = 20
function parseInt8 (text: string): number {
  const value = Number(text)
  if (!Number.isSafeInteger(value)) throw new RangeError(`integer ${text} is beyond 2^53 - 1`)
  return value
}
const types = {
  getTypeParser: ((oid: number, format?: string) => oid === int8 ? parseInt8 : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser
}

/**
 * A pool of connections to the database a PAYNOTIFY_DATABASE_URL names, with
 * the timeouts that turn an unreachable server, a lock held too long or a
 * full pool into a 503. A broken connection is dropped from the pool and the
 * next request opens a new one: a restarted server needs no restart of ours.
 */
export function openPgPool (url: string, options: PgPoolOptions = {}): pg.Pool {
  const busyTimeoutMs = Math.trunc(options.busyTimeoutMs ?? 5000)
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 8,
    types,
    application_name: options.applicationName ?? 'paynotify',
    connectionTimeoutMillis: busyTimeoutMs,
    lock_timeout: busyTimeoutMs,
    statement_timeout: 2 * busyTimeoutMs,
    // Statement_timeout cannot fire when the server is unreachable: the client gives up too.
    query_timeout: 2 * busyTimeoutMs + 1000,
    // A session that died mid-transaction on our side must not keep the log's head locked.
    idle_in_transaction_session_timeout: 10 * busyTimeoutMs,
    keepAlive: true,
    options: `-c synchronous_commit=${(options.synchronous ?? 'FULL') === 'FULL' ? 'on' : 'off'}`
  })
  // An idle connection the server closed emits 'error' on the pool: without a listener it would end the process.
  pool.on('error', () => {})
  pool.on('connect', client => { client.on('error', () => {}) })
  return pool
}

/** Kysely over a pool (reads, migrations): the same Database types as on SQLite. */
export function pgKysely (pool: pg.Pool): Kysely<Database> {
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
}
