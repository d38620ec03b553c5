import { spawn } from 'node:child_process'
import { once } from 'node:events'
import SQLite from 'better-sqlite3'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { buildTestApp, formHeaders, signedForm, type TestApp } from '../helpers.js'
import { auditLog, countEvents, repoRoot, type TapTest } from './helpers.js'

// Issue 5 §3: the store fails under a batch; every caller of that batch gets 503, nothing is
// written, the service stays up, and the next callbacks succeed once the fault is gone.

const busyTimeoutMs = 100

async function postAll (app: FastifyInstance, bodies: string[]): Promise<Array<{ status: number, body: string }>> {
  // Started together, so they queue into the same group-committed batch.
  const responses = await Promise.all(bodies.map(async payload => await app.inject({ method: 'POST', url: '/notify/generic', headers: formHeaders, payload })))
  return responses.map(r => ({ status: r.statusCode, body: r.body }))
}

function callbacks (prefix: string, count: number, extra: Record<string, string> = {}): string[] {
  return Array.from({ length: count }, (_, i) => signedForm({ order_id: `${prefix}-${i}`, amount: '10.00', status: '1', notify_id: `${prefix}-n${i}`, ...extra }))
}

interface Snapshot { events: number, orders: number, projectedTo: number }

function snapshot (store: TestApp['store']): Snapshot {
  return {
    events: (store.sqlite.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n,
    orders: (store.sqlite.prepare('SELECT count(*) AS n FROM orders').get() as { n: number }).n,
    projectedTo: store.projector.lastPosition()
  }
}

/** The shared checks of every fault: the failed batch left nothing behind and the service still answers. */
async function assertNothingWritten (t: TapTest, testApp: TestApp, before: Snapshot, results: Array<{ status: number }>): Promise<void> {
  t.same(results.map(r => r.status), results.map(() => 503), 'every caller of the failed batch gets 503')
  t.same(snapshot(testApp.store), before, 'no event, order row or projection checkpoint written')
  t.equal((await testApp.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'the service is still up')
}

/** After the fault clears, the same callbacks (the gateway's retries) succeed and the store is consistent. */
async function assertRecovers (t: TapTest, testApp: TestApp, bodies: string[], before: Snapshot): Promise<void> {
  const results = await postAll(testApp.app, bodies)
  t.same(results.map(r => `${r.status} ${r.body}`), bodies.map(() => '200 success'), 'the retried callbacks are acked once the fault clears')
  t.equal(snapshot(testApp.store).events, before.events + bodies.length, 'each retried callback appended once')
  const audit = auditLog(testApp.dbPath)
  t.ok(audit.chainOk, 'chain intact', { break: audit.chainBreak })
  t.same(audit.projectionMismatches, [], 'projection equals a fresh fold')
  t.equal(audit.projectedTo, audit.lastPosition, 'projection checkpoint at the end of the log')
}

t.test('database full (max_page_count): 503 to the whole batch, recovers when space returns', async t => {
  const testApp = await buildTestApp(t, { store: { busyTimeoutMs } })
  const { app, store } = testApp
  t.equal((await postAll(app, callbacks('full-warmup', 1)))[0]!.status, 200)
  const before = snapshot(store)
  const pages = store.sqlite.pragma('page_count', { simple: true }) as number
  store.sqlite.pragma(`max_page_count = ${pages}`)
  // Each callback carries 6 KiB, so every event needs pages the file may no longer grow by.
  const bodies = callbacks('full', 10, { attach: 'x'.repeat(6 * 1024) })
  const batchesBefore = store.eventLog.batches
  await assertNothingWritten(t, testApp, before, await postAll(app, bodies))
  t.ok(store.eventLog.batches > batchesBefore, 'the store was really asked to commit')
  store.sqlite.pragma('max_page_count = 1073741823')
  await assertRecovers(t, testApp, bodies, before)
})

t.test('database locked by another process past the busy timeout: 503, recovers when the lock is released', async t => {
  const testApp = await buildTestApp(t, { store: { busyTimeoutMs } })
  const { app, store, dbPath } = testApp
  t.equal((await postAll(app, callbacks('lock-warmup', 1)))[0]!.status, 200)
  const before = snapshot(store)
  // Another process takes the write lock and holds it until its stdin closes.
  const locker = spawn(process.execPath, ['--input-type=module', '-e', `
    import SQLite from 'better-sqlite3'
    const db = new SQLite(${JSON.stringify(dbPath)})
    db.exec('BEGIN IMMEDIATE')
    process.stdout.write('locked\\n')
    process.stdin.resume()
    process.stdin.on('end', () => { db.exec('ROLLBACK'); db.close(); process.exit(0) })
  `], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'inherit'], env: { PATH: process.env.PATH } })
  t.teardown(() => { locker.kill('SIGKILL') })
  await once(locker.stdout, 'data')

  const bodies = callbacks('locked', 10)
  await assertNothingWritten(t, testApp, before, await postAll(app, bodies))
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 503, 'readyz says the store takes no writes')
  locker.stdin.end()
  t.equal((await once(locker, 'exit'))[0], 0, 'the other process released its lock')
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200, 'readyz recovers')
  await assertRecovers(t, testApp, bodies, before)
})

for (const target of ['events', 'orders'] as const) {
  t.test(`a write failing in the middle of a batch (trigger on ${target}): the whole batch fails, nothing partial`, async t => {
    const testApp = await buildTestApp(t, { store: { busyTimeoutMs } })
    const { app, store, dbPath } = testApp
    t.equal((await postAll(app, callbacks(`mid-${target}-warmup`, 1)))[0]!.status, 200)
    const before = snapshot(store)
    // A second connection makes one order's write fail: on the events insert, or later, in the projector's upsert.
    const saboteur = new SQLite(dbPath)
    t.teardown(() => { saboteur.close() })
    const column = target === 'events' ? 'stream_id' : 'order_id'
    saboteur.exec(`CREATE TRIGGER injected_fault BEFORE INSERT ON ${target} WHEN NEW.${column} = 'poison-0'
      BEGIN SELECT RAISE(ABORT, 'injected write fault'); END`)

    const bodies = [...callbacks(`good-a-${target}`, 5), ...callbacks('poison', 1), ...callbacks(`good-b-${target}`, 5)]
    const batchesBefore = store.eventLog.batches
    const results = await postAll(app, bodies)
    t.equal(store.eventLog.batches - batchesBefore, 1, 'precondition: the eleven callbacks were one batch')
    await assertNothingWritten(t, testApp, before, results)

    // While the fault lasts, a batch without the failing order still commits.
    const lone = callbacks(`alone-${target}`, 1)
    t.same((await postAll(app, lone)).map(r => r.status), [200], 'a later batch without the failing write succeeds')
    const afterLone = snapshot(store)

    saboteur.exec('DROP TRIGGER injected_fault')
    await assertRecovers(t, testApp, bodies, afterLone)
    t.equal(countEvents(dbPath), before.events + 1 + bodies.length)
  })
}
