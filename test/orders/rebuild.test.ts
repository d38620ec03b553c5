import { join } from 'node:path'
import { Writable } from 'node:stream'
import SQLite from 'better-sqlite3'
import fc from 'fast-check'
import t from 'tap'
import { rebuildDatabase } from '../../src/cli/rebuild.js'
import type { NewEvent } from '../../src/event-log/event-log.js'
import { streamIdOf, type EventMetadata } from '../../src/orders/events.js'
import { evolve, foldingStateJson, foldInto, foldOrder, initialOrderState, startFolding, type ViewContext } from '../../src/orders/order-fold.js'
import { precedes } from '../../src/projection/projection-diff.js'
import { foldedRowValues, orderRowValues } from '../../src/projection/projector.js'
import { rebuildProjections } from '../../src/projection/rebuild.js'
import { splitOrderRanges } from '../../src/projection/rebuild-workers.js'
import { verifyProjection } from '../../src/projection/verify-projection.js'
import { openStore } from '../../src/store.js'
import { tempDir } from '../helpers.js'
import { checkProperty, deliveriesArb, linkedReports, record, recordReports, reportsArb } from './arbitraries.js'

const sink = (): Writable => new Writable({ write (_chunk, _encoding, done) { done() } })

t.test('law: the in-place fold gives evolve\'s outcomes, state JSON and order row', async t => {
  const property = fc.property(deliveriesArb('order-1'), reportsArb(), fc.boolean(), (deliveries, reports, ordersRegistered) => {
    const context: ViewContext = { ordersRegistered }
    const events = record(deliveries, 'order-1', 3)
    const recorded = recordReports(reports, 3 + events.length)
    let state = initialOrderState('order-1')
    const folding = startFolding('order-1')
    for (const event of events) {
      const evolved = evolve(state, event)
      state = evolved.state
      if (JSON.stringify(foldInto(folding, event)) !== JSON.stringify(evolved.outcome)) return false
    }
    const linked = linkedReports(Object.values(state.facts), recorded)
    return JSON.stringify(state) === foldingStateJson(folding) &&
      JSON.stringify(foldOrder('order-1', events)) === foldingStateJson(folding) &&
      JSON.stringify(orderRowValues(state, context)) === JSON.stringify(foldedRowValues(folding, context)) &&
      JSON.stringify(orderRowValues(state, context, linked)) === JSON.stringify(foldedRowValues(folding, context, linked)) &&
      foldingStateJson(folding) === JSON.stringify(state)
  })
  await checkProperty(t, 'in-place fold law', property, Number(process.env.PAYNOTIFY_FC_RUNS ?? 500))
})

t.test('order ids compare as SQLite sorts them (UTF-8 bytes), astral characters included', async t => {
  const db = new SQLite(':memory:')
  t.teardown(() => { db.close() })
  const property = fc.property(fc.uniqueArray(fc.string({ unit: 'grapheme', maxLength: 6 }), { minLength: 2, maxLength: 12 }), ids => {
    db.exec('DROP TABLE IF EXISTS ids; CREATE TABLE ids (id TEXT PRIMARY KEY)')
    const insert = db.prepare('INSERT INTO ids VALUES (?)')
    for (const id of ids) insert.run(id)
    const sorted = db.prepare('SELECT id FROM ids ORDER BY id').pluck().all() as string[]
    return sorted.every((id, i) => i === 0 || (precedes(sorted[i - 1]!, id) && !precedes(id, sorted[i - 1]!))) &&
      sorted.every(id => !precedes(id, id))
  })
  await checkProperty(t, 'SQLite order', property, 300)
  t.notOk(precedes(Buffer.from('a') as never, 'z'), 'a blob sorts after every text')
  t.ok(precedes('\uffff', '\u{10000}'), 'U+FFFF before U+10000, as in UTF-8 (not in UTF-16 units)')
})

/**
 * A log over `orders` order ids with every kind of event the fold knows,
 * repeats, conflicting reports, registrations for some orders, and metadata
 * that SQLite's JSON extraction cannot give exactly (a number, a lone
 * surrogate, U+FFFD, a missing delivery id), written through the real
 * EventLog and live projector.
 */
async function seedLog (path: string, orders: number): Promise<void> {
  const store = await openStore(path, { synchronous: 'NORMAL' })
  try {
    const odd: Array<Partial<EventMetadata>> = [
      { deliveryId: 42 as unknown as string },
      { deliveryId: 'lone \ud800 surrogate' },
      { deliveryId: 'replacement \ufffd character' },
      { deliveryId: undefined },
      { gateway: 'ünïcode', deliveryId: 'astral \u{1f4b3}' }
    ]
    const samples = fc.sample(fc.tuple(...Array.from({ length: orders }, (_, i) => deliveriesArb(`R${String(i).padStart(3, '0')}`, 5))), { seed: 42, numRuns: 1 })[0]!
    // Unattributed reports too: some join orders (their transaction ids), some join none.
    const reports = fc.sample(reportsArb(6), { seed: 43, numRuns: 4 }).flatMap((sample, i) => sample.map(report => ({ ...report, deliveryId: `s${i}-${report.deliveryId}` })))
    const events: NewEvent[] = [...samples, reports].flatMap((deliveries, i) => deliveries.map((delivery, k) => ({
      ...delivery.event,
      streamId: streamIdOf(delivery.event),
      metadata: { gateway: delivery.gateway, deliveryId: delivery.deliveryId, receivedAt: '2026-11-27T00:00:00.000Z', requestId: `q${i}-${k}`, ...(k === 0 ? odd[i % odd.length] : {}) }
    }) as NewEvent))
    // Interleaved as a gateway would deliver them, in batches of varied size.
    const shuffled = fc.sample(fc.shuffledSubarray(events, { minLength: events.length, maxLength: events.length }), { seed: 7, numRuns: 1 })[0]!
    for (let i = 0; i < shuffled.length; i += 1 + (i % 5)) await store.eventLog.append(shuffled.slice(i, i + 1 + (i % 5)))
  } finally {
    await store.close()
  }
}

function rows (path: string): { orders: unknown[], projections: unknown[], indexes: unknown[] } {
  const db = new SQLite(path, { readonly: true })
  try {
    return {
      orders: db.prepare('SELECT * FROM orders ORDER BY order_id').all(),
      projections: db.prepare('SELECT * FROM projections ORDER BY name').all(),
      indexes: db.prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'orders' ORDER BY name").all()
    }
  } finally {
    db.close()
  }
}

function change (path: string, sql: string): void {
  const db = new SQLite(path)
  try {
    db.exec(sql)
  } finally {
    db.close()
  }
}

t.test('rebuild on worker threads and on this one gives the live projection, whatever the table held', async t => {
  const dir = tempDir(t)
  const source = join(dir, 'source.db')
  await seedLog(source, 60)
  const live = rows(source)
  t.equal(live.orders.length, 60, 'orders')
  const sourceDb = new SQLite(source, { readonly: true })
  const events = sourceDb.prepare('SELECT count(*) FROM events').pluck().get() as number
  const reports = sourceDb.prepare(`SELECT count(*) AS reports, sum(EXISTS (SELECT 1 FROM events AS o WHERE o.type <> 'UnattributedReportReceived'
    AND json_extract(o.data, '$.transactionId') = json_extract(u.data, '$.transactionId') AND json_extract(o.data, '$.gateway') = 'stripe')) AS joining
    FROM events AS u WHERE u.type = 'UnattributedReportReceived'`).get() as { reports: number, joining: number }
  t.ok(reports.joining > 0 && reports.joining < reports.reports, `${reports.reports} unattributed reports, ${reports.joining} of them join orders`)
  sourceDb.close()
  t.equal(live.indexes.length, 4, 'the primary key and three secondary indexes (status, gateway, the partial needs-review index)')
  const damages: Array<[string, string]> = [
    ['intact', ''],
    ['emptied (indexes dropped and built again)', 'DELETE FROM orders'],
    ['damaged', `DELETE FROM orders WHERE order_id LIKE 'R01%';
      UPDATE orders SET status = 'failed', state = '{}' WHERE order_id LIKE 'R02%';
      INSERT INTO orders SELECT 'R0005-extra', status, needs_review, anomalies, expected_amount, expected_currency, paid_amount, refunded_amount,
        currency, gateway, gateway_trade_no, duplicate_count, version, last_position, first_seen_at, updated_at, state FROM orders WHERE order_id = 'R004';
      INSERT INTO orders SELECT 'ZZZ', status, needs_review, anomalies, expected_amount, expected_currency, paid_amount, refunded_amount,
        currency, gateway, gateway_trade_no, duplicate_count, version, last_position, first_seen_at, updated_at, state FROM orders WHERE order_id = 'R004';
      INSERT INTO orders SELECT NULL, status, needs_review, anomalies, expected_amount, expected_currency, paid_amount, refunded_amount,
        currency, gateway, gateway_trade_no, duplicate_count, version, last_position, first_seen_at, updated_at, state FROM orders WHERE order_id = 'R004';
      UPDATE projections SET last_position = 3, context = '{}'`]
  ]
  let copies = 0
  for (const workers of [0, 2]) {
    for (const [name, sql] of damages) {
      const path = join(dir, `copy-${++copies}.db`)
      change(source, `VACUUM INTO '${path}'`)
      if (sql !== '') change(path, sql)
      const result = await rebuildDatabase(path, sink(), { workers })
      t.same(rows(path), live, `${workers} workers, ${name}: every row, checkpoint and index`)
      t.match(result, { events, orders: 60, lastPosition: events })
      if (name === 'intact') t.match(result, { written: 0, deleted: 0 }, 'nothing written when nothing differs')
      if (name === 'damaged') t.ok(result.written > 0 && result.deleted === 3, `${workers} workers: wrote ${result.written}, deleted ${result.deleted}`)
      const db = new SQLite(path, { readonly: true })
      const tail = db.prepare('SELECT max(position) FROM events').pluck().get() as number
      t.match(verifyProjection(db, tail), { ok: true, orders: 60 }, 'verify agrees')
      db.close()
    }
  }
})

t.test('a rebuild that fails leaves the old projection (one transaction)', async t => {
  const dir = tempDir(t)
  const path = join(dir, 'log.db')
  await seedLog(path, 10)
  change(path, "UPDATE orders SET status = 'damaged' WHERE order_id = 'R003'; DELETE FROM orders WHERE order_id = 'R004'")
  const before = rows(path)
  // A data row the fold cannot read (an unknown event type) stops the rebuild part way.
  change(path, 'DROP TRIGGER events_no_update; UPDATE events SET type = \'PaymentVanished\' WHERE position = (SELECT max(position) FROM events WHERE stream_id = \'R008\')')
  await t.rejects(rebuildDatabase(path, sink(), { workers: 2 }), /unknown event type PaymentVanished/)
  t.same(rows(path), before, 'worker threads: nothing written')
  const db = new SQLite(path)
  t.throws(() => rebuildProjections(db), /unknown event type PaymentVanished/)
  db.close()
  t.same(rows(path), before, 'this thread: nothing written')
})

t.test('order id ranges cover every id once, at order boundaries', async t => {
  const dir = tempDir(t)
  const path = join(dir, 'log.db')
  await seedLog(path, 40)
  const db = new SQLite(path, { readonly: true })
  t.teardown(() => { db.close() })
  const ids = db.prepare('SELECT DISTINCT stream_id FROM events ORDER BY stream_id').pluck().all() as string[]
  for (const parts of [1, 2, 8, 100]) {
    const ranges = splitOrderRanges(db, parts, 16)
    t.equal(ranges[0]!.from, undefined, `${parts}: open start`)
    t.equal(ranges[ranges.length - 1]!.to, undefined, `${parts}: open end`)
    t.ok(ranges.length <= Math.max(1, parts), `${parts}: ${ranges.length} ranges`)
    for (let i = 1; i < ranges.length; i++) t.equal(ranges[i]!.from, ranges[i - 1]!.to, `${parts}: range ${i} starts where ${i - 1} ends`)
    const covered = ids.map(id => ranges.filter(r => (r.from === undefined || !precedes(id, r.from)) && (r.to === undefined || precedes(id, r.to))).length)
    t.ok(covered.every(n => n === 1), `${parts}: each id in exactly one range`)
  }
  const empty = new SQLite(':memory:')
  empty.exec('CREATE TABLE events (position INTEGER PRIMARY KEY, stream_id TEXT)')
  t.same(splitOrderRanges(empty, 4), [{ from: undefined, to: undefined }], 'an empty log is one range')
  empty.close()
})
