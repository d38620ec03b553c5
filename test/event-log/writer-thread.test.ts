import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import t from 'tap'
import { maxStoredDeliveries } from '../../src/event-log/deliveries.js'
import type { CommitReport } from '../../src/event-log/event-log.js'
import { rowToEvent, type EventRow } from '../../src/event-log/read.js'
import { verifyChain } from '../../src/event-log/verify-chain.js'
import { WriterThread } from '../../src/event-log/writer-thread.js'
import { migrateToLatest } from '../../src/db/migrate.js'
import { openDatabase } from '../../src/db/database.js'
import { verifyProjection } from '../../src/projection/verify-projection.js'
import { openStore, openThreadedStore, type ServiceStore, type StoreOptions } from '../../src/store.js'
import { tempDir } from '../helpers.js'
import { paid, placed } from './fixtures.js'

interface Teardown { teardown: (fn: () => unknown) => void }

// The service's writer (a worker thread with its own connection) must keep the contract of the
// in-process EventLog: the same cases run against both, judged only through the database.
// The built worker (npm test builds first), as `serve` runs it: a worker started on the .ts
// source compiles it through the TypeScript loader again on every start (seconds each).
const entry = new URL('../../dist/event-log/writer-worker.js', import.meta.url)
const modes = {
  inline: async (path: string, options: StoreOptions) => await openStore(path, options),
  thread: async (path: string, options: StoreOptions) => await openThreadedStore(path, { ...options, entry })
} as const

async function open (t: Teardown, mode: keyof typeof modes, options: StoreOptions = {}): Promise<ServiceStore & { path: string }> {
  const path = join(tempDir(t), 'log.db')
  const store = await modes[mode](path, options)
  t.teardown(async () => { await store.close() })
  return { ...store, path }
}

const count = (s: ServiceStore): number => s.sqlite.prepare('SELECT count(*) FROM events').pluck().get() as number
const projection = (s: ServiceStore): { last_position: number, context: string } | undefined =>
  s.sqlite.prepare("SELECT last_position, context FROM projections WHERE name = 'orders'").get() as { last_position: number, context: string } | undefined

for (const mode of Object.keys(modes) as Array<keyof typeof modes>) {
  t.test(`${mode}: an append resolves with what was committed, visible to another connection`, async t => {
    const s = await open(t, mode)
    const [a] = await s.eventLog.append([paid('A', 'd1')])
    const [b, c] = await s.eventLog.append([placed('B'), paid('A', 'd2')])
    // A separate connection: the rows are committed, not just written on the writer's connection.
    const other = new SQLite(s.path, { readonly: true })
    t.teardown(() => other.close())
    const rows = (other.prepare('SELECT * FROM events ORDER BY position').all() as EventRow[]).map(rowToEvent)
    t.same(rows, [a, b, c].map(e => ({ ...e! })), 'each resolved event equals its stored row')
    t.same([a!.streamVersion, b!.streamVersion, c!.streamVersion], [1, 1, 2])
    t.same(s.eventLog.tail, { position: 3, hash: c!.hash })
    t.match(verifyChain(other), { ok: true, checked: 3 })
    t.match(projection(s), { last_position: 3 }, 'the projection committed with the events')
    t.same(JSON.parse(projection(s)!.context), { ordersRegistered: true })
    t.match(verifyProjection(other, 3), { ok: true })
  })

  t.test(`${mode}: concurrent appends share transactions and all land once`, async t => {
    const s = await open(t, mode)
    const before = s.eventLog.batches
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => s.eventLog.append([paid(`O${i % 20}`, `d${i}`)])))
    const batches = s.eventLog.batches - before
    t.ok(batches >= 1 && batches < 200, `200 appends in ${batches} transactions`)
    t.same(results.map(r => r[0]!.position).sort((x, y) => x - y), Array.from({ length: 200 }, (_, i) => i + 1), 'positions 1..200, each once')
    t.equal(count(s), 200)
    t.match(verifyChain(s.sqlite), { ok: true, checked: 200 })
    t.match(verifyProjection(s.sqlite, 200), { ok: true }, 'the projection equals a fresh fold')
  })

  t.test(`${mode}: a batch never exceeds the limit and an append is never split`, async t => {
    const s = await open(t, mode, { batchMaxSize: 4 })
    const before = s.eventLog.batches
    await Promise.all(Array.from({ length: 12 }, (_, i) => s.eventLog.append([paid('A', `d${i}`)])))
    t.equal(s.eventLog.batches - before, 3, '12 single-event appends made in one turn commit as 3 batches of 4')
    const big = await s.eventLog.append(Array.from({ length: 6 }, (_, i) => paid('B', `big${i}`)))
    t.same(big.map(e => e.position), [13, 14, 15, 16, 17, 18], 'an append larger than the limit commits whole')
  })

  t.test(`${mode}: a failed transaction rejects every caller in it, keeps nothing, and the log resumes`, async t => {
    const s = await open(t, mode)
    await s.eventLog.append([paid('A', 'd0')])
    const tail = s.eventLog.tail
    const orders = s.sqlite.prepare('SELECT * FROM orders ORDER BY order_id').all()
    // Triggers are schema: created on this connection, they fire on the writer's too.
    s.sqlite.exec(`CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.stream_id = 'POISON'
      BEGIN SELECT RAISE(ABORT, 'poisoned'); END`)
    const outcomes = await Promise.allSettled([
      s.eventLog.append([placed('B')]),
      s.eventLog.append([paid('A', 'd1'), paid('C', 'd2')]),
      s.eventLog.append([paid('POISON', 'd3')])
    ])
    t.same(outcomes.map(o => o.status), ['rejected', 'rejected', 'rejected'])
    for (const o of outcomes) t.match((o as PromiseRejectedResult).reason, { statusCode: 503, code: 'store_unavailable', message: /could not commit/ })
    t.equal(count(s), 1, 'no row of the batch was kept')
    t.same(s.eventLog.tail, tail)
    t.same(s.sqlite.prepare('SELECT * FROM orders ORDER BY order_id').all(), orders, 'projection unchanged')
    t.same(JSON.parse(projection(s)!.context), { ordersRegistered: false }, 'the rolled-back OrderPlaced did not register orders')

    s.sqlite.exec('DROP TRIGGER poison')
    const [after] = await s.eventLog.append([paid('E', 'd5')])
    t.equal(after!.position, 2, 'the next batch continues right after the last committed event')
    t.same(JSON.parse(s.sqlite.prepare("SELECT anomalies FROM orders WHERE order_id = 'E'").pluck().get() as string), [],
      'the writer\'s projector forgot the rolled-back registration (no unknown_order)')
    t.match(verifyChain(s.sqlite), { ok: true, checked: 2 })
  })

  t.test(`${mode}: appendWithRepeats counts the deliveries the log already held; observeCommits reports each transaction`, async t => {
    const s = await open(t, mode, { batchMaxSize: 64 })
    const reports: CommitReport[] = []
    const stop = s.eventLog.observeCommits(report => { reports.push(report) })
    t.match(await s.eventLog.appendWithRepeats([paid('A', 'd1')]), { repeats: 0, recorded: [{ position: 1 }] })
    t.match(await s.eventLog.appendWithRepeats([paid('A', 'd1'), paid('A', 'd2')]), { repeats: 1, recorded: [{ position: 2 }, { position: 3 }] }, 'a retry beside a new delivery')
    const together = await Promise.all([s.eventLog.appendWithRepeats([paid('B', 'd3')]), s.eventLog.appendWithRepeats([paid('B', 'd3')])])
    t.same(together.map(result => result.repeats), [0, 1], 'two copies in one transaction: the second repeats the first')
    t.equal(reports.length, 3, 'a report per transaction')
    t.same(reports.map(report => report.events), [1, 2, 2], 'with the events its appends carried')
    t.ok(reports.every(report => Number.isFinite(report.seconds) && report.seconds > 0), 'and how long it took')

    // Repeats beyond maxStoredDeliveries are counted, not stored: still repeats, and still in the batch's size.
    await s.eventLog.append(Array.from({ length: maxStoredDeliveries - 2 }, () => paid('A', 'd1')))
    t.equal(s.sqlite.prepare("SELECT stored FROM deliveries WHERE stream_id = 'A' AND delivery_id = 'd1'").pluck().get(), maxStoredDeliveries)
    const unstored = await s.eventLog.appendWithRepeats([paid('A', 'd1')])
    t.same(unstored, { recorded: [], repeats: 1 })
    t.same(reports.slice(3).map(report => report.events), [maxStoredDeliveries - 2, 1])

    stop()
    await s.eventLog.append([paid('C', 'd4')])
    t.equal(reports.length, 5, 'a stopped listener hears no more')
  })

  t.test(`${mode}: closing writes what was appended, then refuses`, async t => {
    const path = join(tempDir(t), 'closed.db')
    const s = await modes[mode](path, {})
    const pending = Array.from({ length: 50 }, (_, i) => s.eventLog.append([paid(`O${i}`, `d${i}`)]))
    await s.close()
    const committed = (await Promise.all(pending)).map(([event]) => [event!.streamId, event!.position])
    t.same(committed.sort((x, y) => Number(x[1]) - Number(y[1])), Array.from({ length: 50 }, (_, i) => [`O${i}`, i + 1]), 'every append made before close resolved with its own committed position')
    await t.rejects(s.eventLog.append([paid('A', 'd1')]), { statusCode: 503, message: /closed/ })
    const reopened = new SQLite(path, { readonly: true })
    t.teardown(() => reopened.close())
    t.equal(reopened.prepare('SELECT count(*) FROM events').pluck().get(), 50)
  })
}

for (const mode of Object.keys(modes) as Array<keyof typeof modes>) {
  t.test(`${mode}: an event that cannot be encoded fails its own append only`, async t => {
    const s = await open(t, mode)
    const bad = paid('B', 'd2')
    ;(bad.data as unknown as { amount: bigint }).amount = 10n
    const outcomes = await Promise.allSettled([s.eventLog.append([paid('A', 'd1')]), s.eventLog.append([bad]), s.eventLog.append([paid('C', 'd3')])])
    t.same(outcomes.map(o => o.status), ['fulfilled', 'rejected', 'fulfilled'])
    t.same(s.sqlite.prepare('SELECT stream_id FROM events ORDER BY position').pluck().all(), ['A', 'C'], 'the others were stored intact')
    t.match(verifyProjection(s.sqlite, 2), { ok: true })
  })
}

t.test('thread: the writer runs on its own connection', async t => {
  const s = await open(t, 'thread')
  const changes = s.sqlite.prepare('SELECT total_changes()').pluck()
  const before = changes.get()
  await s.eventLog.append([paid('A', 'd1')])
  // The events were written by the writer thread: this thread's connection wrote nothing.
  t.equal(changes.get(), before, 'the HTTP thread\'s connection made no change')
  t.equal(count(s), 1)
})

t.test('thread: a writer that dies fails what is in flight with 503 and reports it once', async t => {
  const path = join(tempDir(t), 'dies.db')
  const database = openDatabase(path)
  await migrateToLatest(database.db)
  await database.close()
  const fatal: Error[] = []
  const writer = await WriterThread.start({ path, synchronous: 'FULL', busyTimeoutMs: 1000, maxBatchSize: 10 },
    { entry: new URL('../fixtures/writer-exits.mjs', import.meta.url), onFatal: error => { fatal.push(error) } })
  t.teardown(async () => { await writer.close() })
  const outcomes = await Promise.allSettled([writer.append([paid('A', 'd1')]), writer.append([paid('B', 'd2')])])
  t.same(outcomes.map(o => o.status), ['rejected', 'rejected'], 'no caller was acked')
  for (const o of outcomes) t.match((o as PromiseRejectedResult).reason, { statusCode: 503, message: /writer stopped/ })
  t.equal(fatal.length, 1)
  t.match(fatal[0]!.message, /exited with code 3/)
  await t.rejects(writer.append([paid('C', 'd3')]), { statusCode: 503, message: /writer stopped/ }, 'later appends are refused at once')
})

t.test('thread: a writer that cannot open the database fails the start', async t => {
  const path = join(tempDir(t), 'missing', 'none.db')
  await t.rejects(WriterThread.start({ path, synchronous: 'FULL', busyTimeoutMs: 1000, maxBatchSize: 10 }, { entry }),
    { statusCode: 503, message: /writer thread did not start/ })
})
