import t from 'tap'
import { webhookIdPattern } from '../../src/projection/outbox.js'
import { adminAuth, merchantAuth, testEachWriter } from '../helpers.js'
import { callbackParams, createEndpoint, outboxRows, sendCallback, startOutboundApp } from './harness.js'
import { startReceiver, type ReceivedRequest } from './receiver.js'

const dataKeys = ['anomalies', 'currency', 'needs_review', 'order_id', 'paid_amount', 'position', 'previous_status', 'refunded_amount', 'status', 'version']

const typesOf = (requests: readonly ReceivedRequest[]): Array<string | undefined> => requests.map(request => request.message?.type)

testEachWriter(t, 'a paid order sends order.updated and order.paid, signed; a repeat sends nothing; an endpoint listing order.paid gets only that', async (t, writer) => {
  const all = await startReceiver(t)
  const paidOnly = await startReceiver(t)
  const setup = await startOutboundApp(t, { writer })
  const { app, store } = setup
  await createEndpoint(app, { url: `${all.url}/all` }, all)
  const onlyPaid = await createEndpoint(app, { url: `${paidOnly.url}/paid`, events: ['order.paid'] }, paidOnly)

  await sendCallback(app, callbackParams('m-1', 'pending', 8888))
  await sendCallback(app, callbackParams('m-1', 'paid', 8888))
  await all.until(r => r.delivered.length === 3)
  // Repeats: the same callback again (its notify_id is a repeat delivery), and a second report of the same payment.
  await sendCallback(app, callbackParams('m-1', 'paid', 8888))
  await sendCallback(app, callbackParams('m-1', 'paid', 8888, { notify_id: 'm-1-paid-reported-again' }))
  // Then a change: an order's messages arrive in order (FIFO), so whatever the repeats had sent would come before its.
  await sendCallback(app, callbackParams('m-1', 'refund', 1111))
  await all.until(r => r.delivered.some(request => request.message?.type === 'order.partially_refunded'))

  t.same(typesOf(all.requests), ['order.updated', 'order.updated', 'order.paid', 'order.updated', 'order.partially_refunded'], 'one message set per change of the view, none for the repeats')
  t.same(outboxRows(setup).map(row => row.type), typesOf(all.requests), 'and the outbox holds no other')
  t.same(all.refused, [], 'standardwebhooks verified every request')
  const [pending, updatedPaid, paid, updatedRefund, refunded] = all.requests.map(request => request.message!)
  for (const message of [pending, updatedPaid, paid, updatedRefund, refunded]) {
    t.same(Object.keys(message!).sort(), ['data', 'timestamp', 'type'])
    t.same(Object.keys(message!.data).sort(), dataKeys)
    t.match(message!.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  }
  t.match(pending!.data, { order_id: 'm-1', status: 'pending', previous_status: null, paid_amount: 0, refunded_amount: 0, anomalies: [], needs_review: false }, 'the first change: previous_status null')
  t.match(paid!, { type: 'order.paid', data: { order_id: 'm-1', status: 'paid', previous_status: 'pending', paid_amount: 8888, refunded_amount: 0, currency: 'CNY', anomalies: [], needs_review: false } }, 'amounts in minor units')
  t.same(updatedPaid!.data, paid!.data, 'order.updated and order.paid of one change carry the same data')
  t.match(refunded!.data, { status: 'partially_refunded', previous_status: 'paid', paid_amount: 8888, refunded_amount: 1111 })
  t.ok(pending!.data.version < paid!.data.version && paid!.data.version < refunded!.data.version, `version increases per change (${pending!.data.version}, ${paid!.data.version}, ${refunded!.data.version})`)
  const eventAt = store.sqlite.prepare('SELECT stream_id, type, recorded_at FROM events WHERE position = ?')
  t.match(eventAt.get(pending!.data.position), { stream_id: 'm-1', type: 'PaymentPending', recorded_at: pending!.timestamp }, 'position: the event that caused it; timestamp: when it was recorded')
  t.match(eventAt.get(paid!.data.position), { stream_id: 'm-1', type: 'PaymentSucceeded', recorded_at: paid!.timestamp })
  t.match(eventAt.get(refunded!.data.position), { stream_id: 'm-1', type: 'PaymentRefunded' })

  const ids = all.requests.map(request => request.id)
  t.equal(new Set(ids).size, 5, 'a webhook-id per message')
  for (const id of ids) t.match(id, webhookIdPattern)
  for (const request of all.requests) {
    t.match(request.headers, { 'content-type': 'application/json' })
    t.equal(request.path, '/all', 'posted to the endpoint\'s path')
  }

  await paidOnly.until(r => r.delivered.length === 1)
  t.same(typesOf(paidOnly.requests), ['order.paid'], 'the endpoint listing order.paid got order.paid')
  t.equal(paidOnly.requests[0]!.id, all.requests[2]!.id, 'the same message, by the same webhook-id, to both endpoints')
  const deliveries = store.sqlite.prepare('SELECT o.type FROM outbound_deliveries AS d JOIN outbox AS o ON o.seq = d.message_seq WHERE d.endpoint_id = ?').pluck().all(onlyPaid.id)
  t.same(deliveries, ['order.paid'], 'and nothing else is or will be due to it')
  t.same(setup.errors, [])
})

t.test('a registered order: its registration is its first change; a payment of the wrong amount sends order.needs_review', async t => {
  const receiver = await startReceiver(t)
  const setup = await startOutboundApp(t)
  const { app } = setup
  await createEndpoint(app, { url: receiver.url }, receiver)
  const placed = await app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload: { order_id: 'reg-1', amount: '100.00', currency: 'CNY' } })
  t.equal(placed.statusCode, 201)
  await receiver.until(r => r.delivered.length === 1)
  t.match(receiver.requests[0]!.message, { type: 'order.updated', data: { order_id: 'reg-1', status: 'awaiting_payment', previous_status: null, paid_amount: 0 } })

  await sendCallback(app, callbackParams('reg-1', 'paid', 9_000))
  await receiver.until(r => r.delivered.length === 4)
  t.same(typesOf(receiver.requests.slice(1)), ['order.updated', 'order.paid', 'order.needs_review'])
  t.match(receiver.requests[3]!.message!.data, { status: 'paid', previous_status: 'awaiting_payment', paid_amount: 9_000, anomalies: ['amount_mismatch'], needs_review: true })
  t.same(receiver.refused, [])
})

t.test('version increases with every change an order\'s messages report, also a change another order\'s registration makes', async t => {
  const receiver = await startReceiver(t)
  const setup = await startOutboundApp(t)
  const { app } = setup
  await createEndpoint(app, { url: receiver.url, events: ['order.updated'] }, receiver)
  await sendCallback(app, callbackParams('unregistered-1', 'paid', 5_000))
  await receiver.until(r => r.delivered.length === 1)
  // The first registered order makes every order seen without one an unknown_order: a change of this order's view.
  const placed = await app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload: { order_id: 'registered-1', amount: '10.00', currency: 'CNY' } })
  t.equal(placed.statusCode, 201)
  await receiver.until(r => r.delivered.filter(request => request.message!.data.order_id === 'unregistered-1').length === 2)
  const [before, after] = receiver.delivered.filter(request => request.message!.data.order_id === 'unregistered-1').map(request => request.message!.data)
  t.same([before!.anomalies, after!.anomalies], [[], ['unknown_order']], 'two different views of the order were sent')
  t.ok(after!.version > before!.version, `so the later one carries the higher version (sent ${before!.version}, then ${after!.version}): a consumer that drops a version it has seen would drop this change`)
})

t.test('an order\'s last message tells its view as it stands, also when its callback and the first registration commit together', async t => {
  const receiver = await startReceiver(t)
  const setup = await startOutboundApp(t)
  const { app } = setup
  await createEndpoint(app, { url: receiver.url, events: ['order.updated'] }, receiver)
  // Sent together, they are appended in one batch: the callback first, then the registration that changes every unregistered order's view.
  const [, placed] = await Promise.all([
    sendCallback(app, callbackParams('batched-1', 'paid', 5_000)),
    app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload: { order_id: 'registered-2', amount: '10.00', currency: 'CNY' } })
  ])
  t.equal(placed.statusCode, 201)
  const batches = setup.store.sqlite.prepare("SELECT count(DISTINCT recorded_at) FROM events WHERE stream_id IN ('batched-1', 'registered-2')").pluck().get()
  t.comment(`appended in ${batches === 1 ? 'one batch' : `${String(batches)} batches`}`)
  const shown = (await app.inject({ url: '/admin/orders/batched-1', headers: adminAuth })).json()
  t.same(shown.anomalies, ['unknown_order'], 'the order is an unknown order now')
  // Its messages, whatever they are, are in the outbox by now (written with the commit): wait for all of them.
  const written = outboxRows(setup, 'batched-1').filter(row => row.type === 'order.updated')
  await receiver.until(r => written.every(row => r.delivered.some(request => request.id === row.message_id)))
  const last = receiver.delivered.filter(request => request.message!.data.order_id === 'batched-1').at(-1)!.message!.data
  t.match(last, { status: shown.status, paid_amount: shown.paidAmount, anomalies: shown.anomalies, needs_review: shown.needsReview }, 'and the last message a consumer got says so')
})
