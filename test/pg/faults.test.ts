import t from 'tap'
import { StoreUnavailableError } from '../../src/errors.js'
import type { PgEventLog } from '../../src/event-log/pg-event-log.js'
import { pgEventRows } from '../../src/event-log/pg-read.js'
import { verifyChainRows } from '../../src/event-log/verify-chain.js'
import { PgProjection } from '../../src/projection/pg-projection.js'
import { paid } from '../event-log/fixtures.js'
import { startPgCluster } from '../pg-cluster.js'
import { migratedDatabase, type PgTestDatabase } from './pg-log.js'

// Issue 14, faults at the log: PostgreSQL restarting under load gives 503 while it is down and
// recovers by itself (the same PgEventLog, no restart of the instance), losing nothing acked; dead
// connections are replaced.

const cluster = await startPgCluster(t)

async function instance (db: PgTestDatabase): Promise<PgEventLog> {
  // A short busy timeout: a request waiting for a server that is gone is refused within it, never left hanging.
  const options = { busyTimeoutMs: 1000 }
  return await db.log({ ...options, projection: await PgProjection.open(db.pool(options)) })
}

interface Acked { position: number, hash: string }

/** Appends distinct payments from each instance until stop() is called; returns what was acked and how many were refused (503). */
function load (instances: PgEventLog[]): { stop: () => Promise<{ acked: Acked[], refused: number, other: unknown[] }>, ackedSoFar: () => number } {
  const acked: Acked[] = []
  const other: unknown[] = []
  let refused = 0
  const state = { running: true }
  let n = 0
  const loops = instances.flatMap(log => [1, 2, 3, 4].map(async () => {
    while (state.running) {
      const id = ++n
      try {
        const [event] = await log.append([paid(`load-${id}`, `d-${id}`)])
        acked.push({ position: event!.position, hash: event!.hash })
      } catch (error) {
        if (error instanceof StoreUnavailableError) refused++
        else other.push(error)
        // Refused at once while the server is down: yield so the loop does not spin the event loop.
        await new Promise(resolve => setImmediate(resolve))
      }
    }
  }))
  return {
    ackedSoFar: () => acked.length,
    stop: async () => {
      state.running = false
      await Promise.all(loops)
      return { acked, refused, other }
    }
  }
}

async function until (condition: () => boolean | Promise<boolean>): Promise<void> {
  while (!await condition()) await new Promise(resolve => setImmediate(resolve))
}

// A server named by PAYNOTIFY_TEST_DATABASE_URL is not ours to stop: the embedded one (the default) runs this.
const restart = { skip: cluster.canRestart ? false : 'PAYNOTIFY_TEST_DATABASE_URL names a server this test cannot stop and start' }

t.test('PostgreSQL stops under load: appends get 503 while it is down, succeed again when it is back, and nothing acked is lost', restart, async t => {
  const db = await migratedDatabase(t, cluster)
  const instances = [await instance(db), await instance(db)]
  const traffic = load(instances)
  await until(() => traffic.ackedSoFar() >= 50)
  await cluster.stop()
  // Refused once: every reply the server sent before it went has been handled by now (a refusal takes I/O of its own).
  let probes = 0
  const refusedProbe = async (): Promise<boolean> => {
    try {
      await instances[0]!.append([paid('probe', `probe-${++probes}`)])
      return false
    } catch (error) {
      return error instanceof StoreUnavailableError
    }
  }
  await until(refusedProbe)
  const ackedBefore = traffic.ackedSoFar()
  await until(refusedProbe)
  t.equal(traffic.ackedSoFar(), ackedBefore, 'nothing is acked while the server is down')
  await cluster.start()
  await until(() => traffic.ackedSoFar() >= ackedBefore + 50)
  const { acked, refused, other } = await traffic.stop()
  t.same(other, [], 'every failure was a 503')
  t.ok(refused > 0, `${refused} appends refused with 503 while the server was down`)
  const stored = new Map<number, string>()
  for await (const row of pgEventRows(db.pool())) stored.set(row.position, row.hash)
  t.same(acked.filter(event => stored.get(event.position) !== event.hash), [], `all ${acked.length} acked appends are in the log`)
  t.match(await verifyChainRows(pgEventRows(db.pool())), { ok: true }, 'positions dense and the chain intact across the restart')
})

t.test('connections the server closed are replaced: the next append succeeds', async t => {
  const db = await migratedDatabase(t, cluster)
  const log = await instance(db)
  await log.append([paid('A', 'd-1')])
  const [{ count }] = await db.query<{ count: number }>(`SELECT count(pg_terminate_backend(pid))::int AS count FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()`) as [{ count: number }]
  t.ok(count >= 1, `${count} sessions terminated`)
  const [event] = await log.append([paid('B', 'd-2')])
  t.equal(event!.position, 2)
})
