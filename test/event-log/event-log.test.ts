import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import t from 'tap'
import { genesisHash } from '../../src/event-log/hash.js'
import { verifyChain } from '../../src/event-log/verify-chain.js'
import { openStore, type Store, type StoreOptions } from '../../src/store.js'
import { tempDir } from '../helpers.js'
import { paid, placed } from './fixtures.js'

interface Teardown { teardown: (fn: () => unknown) => void }

async function store (t: Teardown, options: StoreOptions = {}): Promise<Store & { path: string }> {
  const path = join(tempDir(t), 'log.db')
  const opened = await openStore(path, options)
  t.teardown(async () => { await opened.close() })
  return { ...opened, path }
}

const count = (s: Store): number => (s.sqlite.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n

t.test('append assigns positions, stream versions, time and a hash chain', async t => {
  const s = await store(t, { clock: () => new Date('2026-03-04T05:06:07.000Z') })
  t.same(s.eventLog.tail, { position: 0, hash: genesisHash })
  const [a] = await s.eventLog.append([paid('A', 'd1')])
  const [b, c] = await s.eventLog.append([paid('B', 'd2'), paid('A', 'd3')])
  t.match(a, { position: 1, streamId: 'A', streamVersion: 1, schemaVersion: 1, recordedAt: '2026-03-04T05:06:07.000Z', hash: /^[0-9a-f]{64}$/ })
  t.match(b, { position: 2, streamId: 'B', streamVersion: 1 })
  t.match(c, { position: 3, streamId: 'A', streamVersion: 2 })
  t.same(s.eventLog.tail, { position: 3, hash: c!.hash })
  t.match(verifyChain(s.sqlite), { ok: true, checked: 3, lastPosition: 3, lastHash: c!.hash })
  // The projector ran in the same transaction and recorded its checkpoint.
  t.equal(s.projector.lastPosition(), 3)
  t.equal((s.sqlite.prepare("SELECT version FROM orders WHERE order_id = 'A'").get() as { version: number }).version, 2)
})

t.test('a reopened log continues the chain where it stopped', async t => {
  const path = join(tempDir(t), 'reopen.db')
  const first = await openStore(path)
  await first.eventLog.append([paid('A', 'd1'), paid('A', 'd2')])
  const tail = first.eventLog.tail
  await first.close()
  const second = await openStore(path)
  t.teardown(async () => { await second.close() })
  t.same(second.eventLog.tail, tail)
  const [next] = await second.eventLog.append([paid('A', 'd3')])
  t.match(next, { position: 3, streamVersion: 3 })
  t.match(verifyChain(second.sqlite), { ok: true, checked: 3 })
})

t.test('group commit: concurrent appends share transactions, each caller gets its own events', async t => {
  const s = await store(t)
  const before = s.eventLog.batches
  const results = await Promise.all(Array.from({ length: 100 }, (_, i) => s.eventLog.append([paid(`O${i % 10}`, `d${i}`)])))
  const batches = s.eventLog.batches - before
  t.ok(batches < 10, `100 concurrent appends committed in ${batches} transaction(s)`)
  t.equal(count(s), 100)
  t.same(results.map(r => r.length), Array(100).fill(1))
  t.same(results.map(r => r[0]!.metadata.deliveryId), Array.from({ length: 100 }, (_, i) => `d${i}`), 'each caller resolved with its own event')
  t.same(new Set(results.map(r => r[0]!.position)).size, 100)
  t.match(verifyChain(s.sqlite), { ok: true, checked: 100 })
})

t.test('maxBatchSize bounds a transaction; a request larger than the bound still commits whole', async t => {
  const s = await store(t, { batchMaxSize: 4 })
  const before = s.eventLog.batches
  await Promise.all(Array.from({ length: 12 }, (_, i) => s.eventLog.append([paid('A', `d${i}`)])))
  t.equal(s.eventLog.batches - before, 3, '12 single-event appends in batches of 4')
  const big = await s.eventLog.append(Array.from({ length: 6 }, (_, i) => paid('B', `big${i}`)))
  t.equal(big.length, 6)
  t.equal(count(s), 18)
})

t.test('a failed batch rejects every caller in it and leaves nothing behind', async t => {
  const s = await store(t)
  await s.eventLog.append([paid('A', 'd0')])
  const tail = s.eventLog.tail
  const orders = s.sqlite.prepare('SELECT * FROM orders ORDER BY order_id').all()
  // A real constraint failure inside the transaction, after other callers' rows were already inserted.
  s.sqlite.exec(`CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.stream_id = 'POISON'
    BEGIN SELECT RAISE(ABORT, 'poisoned'); END`)
  const batch = [
    s.eventLog.append([placed('B')]),
    s.eventLog.append([paid('A', 'd1'), paid('C', 'd2')]),
    s.eventLog.append([paid('POISON', 'd3')]),
    s.eventLog.append([paid('D', 'd4')])
  ]
  const outcomes = await Promise.allSettled(batch)
  t.same(outcomes.map(o => o.status), ['rejected', 'rejected', 'rejected', 'rejected'])
  for (const o of outcomes) t.match((o as PromiseRejectedResult).reason, { statusCode: 503, code: 'store_unavailable' })
  t.equal(count(s), 1, 'no row of the batch was kept')
  t.same(s.eventLog.tail, tail)
  t.same(s.sqlite.prepare('SELECT * FROM orders ORDER BY order_id').all(), orders, 'projection unchanged')
  t.equal(s.projector.lastPosition(), 1)
  t.same(s.projector.context, { ordersRegistered: false }, 'the rolled-back OrderPlaced did not register orders')

  s.sqlite.exec('DROP TRIGGER poison')
  const [after] = await s.eventLog.append([paid('E', 'd5')])
  t.equal(after!.position, 2, 'the next batch continues right after the last committed event')
  t.same(JSON.parse((s.sqlite.prepare("SELECT anomalies FROM orders WHERE order_id = 'E'").get() as { anomalies: string }).anomalies), [])
  t.match(verifyChain(s.sqlite), { ok: true, checked: 2 })
})

t.test('a write by another connection makes the batch fail, then the log resumes after it', async t => {
  const s = await store(t)
  await s.eventLog.append([paid('A', 'd0')])
  const other = new SQLite(s.path)
  t.teardown(() => other.close())
  // Copy the last row to position 2 under another stream: the log's next position is taken.
  other.exec("INSERT INTO events SELECT 2, 'X', 1, type, schema_version, data, metadata, recorded_at, hash FROM events WHERE position = 1")
  await t.rejects(s.eventLog.append([paid('A', 'd1')]), { statusCode: 503, message: /could not commit/ })
  const [next] = await s.eventLog.append([paid('A', 'd1')])
  t.equal(next!.position, 3, 'the tail was re-read from the database')
})

t.test('a closed log refuses appends', async t => {
  const path = join(tempDir(t), 'closed.db')
  const s = await openStore(path)
  const pending = s.eventLog.append([paid('A', 'd0')])
  await s.close()
  t.match(await pending, [{ streamId: 'A', position: 1 }], 'queued work is written before closing')
  await t.rejects(s.eventLog.append([paid('A', 'd1')]), { statusCode: 503, message: /closed/ })
})

t.test('the connection runs WAL with synchronous FULL by default, NORMAL when asked', async t => {
  const full = await store(t)
  t.equal(full.sqlite.pragma('journal_mode', { simple: true }), 'wal')
  t.equal(full.sqlite.pragma('synchronous', { simple: true }), 2)
  const normal = await store(t, { synchronous: 'NORMAL' })
  t.equal(normal.sqlite.pragma('synchronous', { simple: true }), 1)
})
