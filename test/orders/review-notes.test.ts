import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { MalformedError } from '../../src/errors.js'
import { rowToEvent, type EventRow } from '../../src/event-log/read.js'
import type { ReviewNoteRecordedData } from '../../src/orders/events.js'
import { Anomaly, evolve, foldOrder, initialOrderState, orderView, type OrderState } from '../../src/orders/order-fold.js'
import { countOrdersNeedingReview } from '../../src/orders/queries.js'
import { maxNoteLength, normalizeNote, notePattern } from '../../src/orders/review-notes.js'
import { loadCatalogue, schemasDir } from '../events/catalogue.js'
import { runCli, isolatedEnv, tableRows } from '../cli/toolkit-helpers.js'
import { adminAuth, buildTestApp, formHeaders, merchantAuth, signedForm, tempDir, testEachWriter } from '../helpers.js'
import { businessView, checkProperty, deliveriesArb, record, type Delivery } from './arbitraries.js'

// Issue 12, review queue: an admin's note resolves the anomalies an order has, takes it out of the
// queue, shows in its timeline, and never changes money state.

const catalogue = loadCatalogue()
const orderId = 'RN-1'

let seq = 0
function paid (amount: number, transactionId: string): Delivery {
  return {
    gateway: 'generic',
    deliveryId: `p${++seq}`,
    event: { type: 'PaymentSucceeded', data: { orderId, amount, currency: 'CNY', gateway: 'generic', transactionId, refundId: null, cumulative: false, gatewayStatus: '1', gatewayTime: null } }
  }
}
const placed = (amount: number): Delivery => ({ gateway: 'merchant', deliveryId: `order:${orderId}:${amount}:CNY`, event: { type: 'OrderPlaced', data: { orderId, amount, currency: 'CNY' } } })
function note (resolves: Anomaly[]): Delivery {
  return { gateway: 'admin', deliveryId: `review:r${++seq}`, event: { type: 'ReviewNoteRecorded', data: { orderId, note: 'refunded by hand', resolves, actor: { requestId: `r${seq}`, address: '127.0.0.1' } } } }
}
const registered = { ordersRegistered: true }
const viewOf = (deliveries: Delivery[]) => orderView(foldOrder(orderId, record(deliveries, orderId)), registered)

t.test('a note resolves the anomalies it names: they stay, the order no longer needs review, money is untouched', async t => {
  const facts = [placed(10000), paid(9000, 'T1')]
  const before = viewOf(facts)
  t.match(before, { status: 'paid', anomalies: ['amount_mismatch'], needsReview: true })
  const after = viewOf([...facts, note(['amount_mismatch'])])
  t.match(after, { status: 'paid', anomalies: ['amount_mismatch'], needsReview: false })
  t.same({ ...businessView(after), needsReview: true }, businessView(before), 'only needsReview changed (and bookkeeping)')
  t.equal(after.version, before.version + 1, 'the note is an event of the order')
})

t.test('an anomaly the note did not name (it appeared later) still needs review; a second note resolves it', async t => {
  const first = note(['amount_mismatch'])
  const facts = [placed(10000), paid(9000, 'T1'), first, paid(9000, 'T2')]
  t.match(viewOf(facts), { anomalies: ['amount_mismatch', 'duplicate_payment'], needsReview: true })
  t.match(viewOf([...facts, note(['amount_mismatch', 'duplicate_payment'])]), { anomalies: ['amount_mismatch', 'duplicate_payment'], needsReview: false })
  t.match(viewOf([...facts, note(['duplicate_payment'])]), { needsReview: false }, 'notes add up: the first resolved amount_mismatch')
  // Whatever order the log holds them in: a note names its anomalies, so it resolves them when they appear.
  t.match(viewOf([first, paid(9000, 'T1'), placed(10000)]), { anomalies: ['amount_mismatch'], needsReview: false })
})

t.test('state: absent until the first note, then the sorted union, and a state stored before notes existed still folds', async t => {
  const facts = record([placed(10000), paid(9000, 'T1')], orderId)
  const plain = foldOrder(orderId, facts)
  t.notOk('resolved' in plain, 'an order without notes keeps the state JSON it had')
  t.notMatch(JSON.stringify(plain), /resolved/)
  const withNotes = foldOrder(orderId, [...facts, ...record([note(['zero_amount_payment', 'amount_mismatch']), note(['duplicate_payment', 'amount_mismatch'])], orderId, 3)])
  t.same(withNotes.resolved, ['amount_mismatch', 'duplicate_payment', 'zero_amount_payment'])
  t.equal(Object.keys(withNotes).at(-1), 'resolved', 'the last key (foldingStateJson writes it there)')
  // A row written before this change: no `resolved` key.
  const stored = JSON.parse(JSON.stringify(plain)) as OrderState
  t.match(orderView(stored, registered), { needsReview: true, anomalies: ['amount_mismatch'] })
  const [later] = record([note(['amount_mismatch'])], orderId, 9)
  t.match(orderView(evolve(stored, later!).state, registered), { needsReview: false })
  t.same(initialOrderState(orderId).resolved, undefined)
})

t.test('law: a note never changes money, and an order needs review exactly when an anomaly no note named is left', async t => {
  const property = fc.property(deliveriesArb(orderId), fc.boolean(), (deliveries, ordersRegistered) => {
    const context = { ordersRegistered }
    const notes = deliveries.filter(d => d.event.type === 'ReviewNoteRecorded')
    const withNotes = orderView(foldOrder(orderId, record(deliveries, orderId)), context)
    const without = orderView(foldOrder(orderId, record(deliveries.filter(d => d.event.type !== 'ReviewNoteRecorded'), orderId)), context)
    const resolved = new Set(notes.flatMap(d => (d.event.data as ReviewNoteRecordedData).resolves))
    // A note's retry (the same delivery again) counts as a repeat, as any delivery's does.
    const money = (view: typeof without): string => JSON.stringify({ ...businessView(view), needsReview: null, duplicateCount: null })
    return money(withNotes) === money(without) &&
      without.needsReview === (without.anomalies.length > 0) &&
      withNotes.needsReview === withNotes.anomalies.some(anomaly => !resolved.has(anomaly))
  })
  await checkProperty(t, 'review note law', property, Number(process.env.PAYNOTIFY_FC_RUNS ?? 500))
})

t.test('the schema has the code\'s rules: the note pattern, the anomaly codes', async t => {
  const schema = JSON.parse(readFileSync(join(schemasDir, 'ReviewNoteRecorded.v1.json'), 'utf8')) as { properties: { note: { pattern: string, maxLength: number }, resolves: { items: { enum: string[] }, maxItems: number } } }
  t.equal(schema.properties.note.pattern, notePattern.source)
  t.equal(schema.properties.note.maxLength, maxNoteLength)
  t.same([...schema.properties.resolves.items.enum].sort(), Object.values(Anomaly).sort())
  t.equal(schema.properties.resolves.maxItems, Object.values(Anomaly).length)
})

t.test('normalizeNote trims, and refuses what the schema refuses', async t => {
  t.equal(normalizeNote('  refunded by hand\n'), 'refunded by hand')
  t.equal(normalizeNote('客户已联系 ✅ <b>ok</b> & "quoted"'), '客户已联系 ✅ <b>ok</b> & "quoted"')
  t.equal(normalizeNote('💳'.repeat(maxNoteLength)), '💳'.repeat(maxNoteLength), '500 characters outside the BMP (1000 UTF-16 units) are 500 characters')
  const refused: Array<[string, string, RegExp]> = [
    ['empty', '', /note: must not be empty/],
    ['only whitespace', ' \t\n\u00a0', /note: must not be empty/],
    ['501 characters', 'x'.repeat(maxNoteLength + 1), /note: must be at most 500 characters/],
    ['a newline inside', 'refunded\nby hand', /note: must not contain control/],
    ['NUL', 'a\u0000b', /note: must not contain control/],
    ['a C1 control', 'a\u0085b', /note: must not contain control/],
    ['a right-to-left override', 'a\u202eb', /note: must not contain control/],
    ['a line separator', 'a\u2028b', /note: must not contain control/],
    ['a lone surrogate', 'a\ud800b', /note: must not contain control/]
  ]
  for (const [what, text, message] of refused) t.throws(() => normalizeNote(text), message, what)
  const data = (text: string) => ({ orderId, note: text, resolves: ['amount_mismatch'], actor: { requestId: 'r', address: '::1' } })
  // Plain and astral characters, whitespace and every kind of forbidden one, around the length limit too.
  const unit = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom('a', 'é', '客', '💳', ' ') },
    { weight: 2, arbitrary: fc.constantFrom('\n', '\t', '\u0000', '\u007f', '\u0085', '\u00a0', '\ufeff', '\u2028', '\u2029', '\u202e', '\u2066', '\ud800', '\udfff', '\u3000') },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) })
  const texts = fc.tuple(fc.oneof(fc.constant(0), fc.integer({ min: maxNoteLength - 8, max: maxNoteLength + 2 })), fc.string({ unit, maxLength: 12 }), fc.string({ unit, maxLength: 4 }))
    .map(([padding, head, tail]) => head + 'x'.repeat(padding) + tail)
  const property = fc.property(texts, text => {
    let normal: string
    try {
      normal = normalizeNote(text)
    } catch (error) {
      // Refused: and the schema refuses the trimmed text too.
      return error instanceof MalformedError && catalogue.check('ReviewNoteRecorded.v1.json', data(text.trim())) !== null
    }
    return normal === text.trim() && notePattern.test(normal) && catalogue.check('ReviewNoteRecorded.v1.json', data(normal)) === null
  })
  await checkProperty(t, 'note rule = schema', property, 2000)
})

async function post (app: FastifyInstance, id: string, payload: unknown, headers: Record<string, string> = adminAuth) {
  return await app.inject({ method: 'POST', url: `/admin/orders/${id}/review-notes`, headers: { ...headers, 'content-type': 'application/json' }, payload: typeof payload === 'string' ? payload : JSON.stringify(payload) })
}

async function callback (app: FastifyInstance, params: Record<string, string>): Promise<void> {
  const res = await app.inject({ method: 'POST', url: '/notify/generic', headers: formHeaders, payload: signedForm(params) })
  if (res.statusCode !== 200) throw new Error(`callback refused: ${res.statusCode} ${res.body}`)
}

/** R-1 paid 9.00 of 10.00 (amount_mismatch), R-2 paid in full. */
async function seed (app: FastifyInstance): Promise<void> {
  for (const id of ['R-1', 'R-2']) {
    const res = await app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload: { order_id: id, amount: '10.00' } })
    if (res.statusCode !== 201) throw new Error(`order refused: ${res.statusCode}`)
  }
  await callback(app, { order_id: 'R-1', amount: '9.00', status: '1', notify_id: 'r1-paid', trade_no: 'T-R1' })
  await callback(app, { order_id: 'R-2', amount: '10.00', status: '1', notify_id: 'r2-paid', trade_no: 'T-R2' })
}

interface OutboxRow { type: string, position: number, payload: string }

t.test('POST /admin/orders/:id/review-notes records the note, takes the order out of the queue, the metric and the outbox follow', async t => {
  const { app, store } = await buildTestApp(t, { outbound: true })
  await seed(app)
  const before = (await app.inject({ url: '/admin/orders/R-1', headers: adminAuth })).json()
  t.match(before, { status: 'paid', anomalies: ['amount_mismatch'], needsReview: true })
  t.equal(await countOrdersNeedingReview(store.db), 1)
  const scrape = async (): Promise<string> => (await app.inject({ url: '/metrics', headers: adminAuth })).body
  t.match(await scrape(), /^paynotify_orders_needing_review 1$/m)

  const res = await post(app, 'R-1', { note: '  customer refunded 1.00 by hand  ' })
  t.equal(res.statusCode, 201, res.body)
  const answer = res.json()
  t.match(answer, { resolves: ['amount_mismatch'], order: { orderId: 'R-1', status: 'paid', anomalies: ['amount_mismatch'], needsReview: false } })
  t.same({ ...answer.order, needsReview: true, version: before.version, lastPosition: before.lastPosition, updatedAt: before.updatedAt }, before, 'money state unchanged')
  t.equal(answer.order.lastPosition, answer.position)

  // The event as stored: in the order's stream, the admin as gateway, no raw request, valid against the catalogue.
  const row = store.sqlite.prepare('SELECT * FROM events WHERE position = ?').get(answer.position) as EventRow
  const event = rowToEvent(row)
  t.match(event, { type: 'ReviewNoteRecorded', streamId: 'R-1', schemaVersion: 1, recordedAt: answer.recordedAt })
  t.same(event.data, { orderId: 'R-1', note: 'customer refunded 1.00 by hand', resolves: ['amount_mismatch'], actor: { requestId: event.metadata.requestId, address: '127.0.0.1' } })
  t.same(Object.keys(event.metadata).sort(), ['deliveryId', 'gateway', 'receivedAt', 'requestId'], 'no raw request')
  t.match(event.metadata, { gateway: 'admin', deliveryId: `review:${event.metadata.requestId}` })
  t.equal(catalogue.checkLine({ ...event }), null, 'as an export line')

  // Out of the queue, the count and the metric.
  const queue = (await app.inject({ url: '/admin/orders?needsReview=true', headers: adminAuth })).json()
  t.same(queue.orders.map((o: { orderId: string }) => o.orderId), [], 'the review queue is empty')
  t.equal(await countOrdersNeedingReview(store.db), 0)
  t.match(await scrape(), /^paynotify_orders_needing_review 0$/m)

  // In the timeline, last, applied.
  const timeline = (await app.inject({ url: '/admin/orders/R-1/events', headers: adminAuth })).json()
  t.match(timeline.events.at(-1), { position: answer.position, type: 'ReviewNoteRecorded', outcome: 'applied', data: { note: 'customer refunded 1.00 by hand' } })
  t.same((await app.inject({ url: '/admin/events?type=ReviewNoteRecorded', headers: adminAuth })).json().events.map((e: { position: number }) => e.position), [answer.position])

  // The outbox: one order.updated with needs_review false, and no order.needs_review.
  const messages = store.sqlite.prepare('SELECT type, position, payload FROM outbox WHERE position = ?').all(answer.position) as OutboxRow[]
  t.same(messages.map(m => m.type), ['order.updated'])
  t.match(JSON.parse(messages[0]!.payload).data, { order_id: 'R-1', status: 'paid', previous_status: 'paid', anomalies: ['amount_mismatch'], needs_review: false })

  // Nothing left to review: 409, nothing stored.
  const count = (): number => store.sqlite.prepare('SELECT count(*) FROM events').pluck().get() as number
  const events = count()
  const again = await post(app, 'R-1', { note: 'again' })
  t.equal(again.statusCode, 409)
  t.same(again.json(), { error: { code: 'nothing_to_review', message: 'order R-1 has no anomaly left to review' } })
  t.equal((await post(app, 'R-2', { note: 'all fine' })).statusCode, 409, 'an order that never needed review')
  t.equal(count(), events)

  // A new anomaly brings it back (order.needs_review), and a second note resolves both.
  await callback(app, { order_id: 'R-1', amount: '9.00', status: '1', notify_id: 'r1-paid-again', trade_no: 'T-R1b' })
  t.match((await app.inject({ url: '/admin/orders/R-1', headers: adminAuth })).json(), { anomalies: ['amount_mismatch', 'duplicate_payment'], needsReview: true })
  t.ok((store.sqlite.prepare('SELECT type FROM outbox WHERE order_id = ?').pluck().all('R-1') as string[]).includes('order.needs_review'))
  const second = await post(app, 'R-1', { note: 'second charge refunded' })
  t.equal(second.statusCode, 201)
  t.match(second.json(), { resolves: ['amount_mismatch', 'duplicate_payment'], order: { needsReview: false } })
})

t.test('refusals: no token, unknown order, bad notes and bodies store nothing', async t => {
  const { app, store } = await buildTestApp(t)
  await seed(app)
  const count = (): number => store.sqlite.prepare('SELECT count(*) FROM events').pluck().get() as number
  const events = count()
  const cases: Array<[string, () => ReturnType<typeof post>, number, RegExp]> = [
    ['no token', async () => await post(app, 'R-1', { note: 'x' }, {}), 401, /unauthorized/],
    ['the merchant token', async () => await post(app, 'R-1', { note: 'x' }, merchantAuth), 401, /unauthorized/],
    ['an unknown order', async () => await post(app, 'NOPE', { note: 'x' }), 404, /order_not_found/],
    ['a malformed order id', async () => await post(app, 'a%20b', { note: 'x' }), 400, /malformed/],
    ['an empty note', async () => await post(app, 'R-1', { note: '' }), 400, /note: must not be empty/],
    ['a blank note', async () => await post(app, 'R-1', { note: '   ' }), 400, /note: must not be empty/],
    ['an over-long note', async () => await post(app, 'R-1', { note: 'x'.repeat(maxNoteLength + 1) }), 400, /note: must be at most 500 characters/],
    ['a control character', async () => await post(app, 'R-1', { note: 'a\u001bb' }), 400, /note: must not contain control/],
    ['no note', async () => await post(app, 'R-1', {}), 400, /malformed/],
    ['an unknown field', async () => await post(app, 'R-1', { note: 'x', amount: 1 }), 400, /malformed/],
    ['a repeated key', async () => await post(app, 'R-1', '{"note":"x","note":"y"}'), 400, /note: is repeated/],
    ['a query parameter', async () => await app.inject({ method: 'POST', url: '/admin/orders/R-1/review-notes?force=1', headers: { ...adminAuth, 'content-type': 'application/json' }, payload: '{"note":"x"}' }), 400, /malformed/],
    ['a body over 8 KiB', async () => await post(app, 'R-1', { note: 'x'.repeat(9000) }), 413, /./]
  ]
  for (const [what, send, status, body] of cases) {
    const res = await send()
    t.equal(res.statusCode, status, `${what}: ${res.body}`)
    t.match(res.body, body, what)
  }
  t.equal(count(), events, 'nothing stored')
  t.match((await app.inject({ url: '/admin/orders/R-1', headers: adminAuth })).json(), { needsReview: true })
})

t.test('two notes at once on one order: one is recorded, the other is told nothing is left', async t => {
  const { app } = await buildTestApp(t)
  await seed(app)
  const answers = await Promise.all([post(app, 'R-1', { note: 'first' }), post(app, 'R-1', { note: 'second' })])
  t.same(answers.map(a => a.statusCode).sort(), [201, 409])
})

testEachWriter(t, 'a note answers with the view after it, whichever writer commits it', async (t, writer) => {
  const { app } = await buildTestApp(t, { writer })
  await seed(app)
  const res = await post(app, 'R-1', { note: 'checked with the gateway' })
  t.equal(res.statusCode, 201, res.body)
  t.match(res.json(), { order: { needsReview: false, anomalies: ['amount_mismatch'] } })
  t.match((await app.inject({ url: '/admin/orders/R-1', headers: adminAuth })).json(), { needsReview: false, lastPosition: res.json().position })
})

t.test('export → import → verify → rebuild carry notes: same events, same order rows', async t => {
  const source = await buildTestApp(t)
  await seed(source.app)
  t.equal((await post(source.app, 'R-1', { note: 'refunded by hand' })).statusCode, 201)
  const dir = tempDir(t)
  const env = isolatedEnv(t)
  const file = join(dir, 'log.ndjson')
  const exported = await runCli(['export', '--db', source.dbPath, '--out', file], env)
  t.equal(exported.code, 0, exported.stderr)
  t.match(readFileSync(file, 'utf8'), /"type":"ReviewNoteRecorded"/)
  const verifiedFile = await runCli(['verify', file], env)
  t.equal(verifiedFile.code, 0, verifiedFile.stdout + verifiedFile.stderr)
  const target = join(dir, 'target.db')
  const imported = await runCli(['import', file, '--db', target], env)
  t.equal(imported.code, 0, imported.stderr)
  const orders = tableRows(source.dbPath, 'orders', 'order_id') as Array<{ order_id: string, needs_review: number, state: string }>
  t.match(orders.find(o => o.order_id === 'R-1'), { needs_review: 0, state: /"resolved":\["amount_mismatch"\]\}$/ })
  t.same(tableRows(target, 'events', 'position'), tableRows(source.dbPath, 'events', 'position'), 'every event identical')
  t.same(tableRows(target, 'orders', 'order_id'), orders, 'order rows identical')
  const verified = await runCli(['verify', '--db', target], env)
  t.equal(verified.code, 0, verified.stdout + verified.stderr)
  const rebuilt = await runCli(['rebuild', '--db', target], env)
  t.equal(rebuilt.code, 0, rebuilt.stderr)
  t.same(tableRows(target, 'orders', 'order_id'), orders, 'a rebuild gives the same rows')
})
