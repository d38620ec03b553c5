import t from 'tap'
import { runPool, seededRandom, shuffle, testSeed } from '../faults/helpers.js'
import { adminGet, callbackParams, createEndpoint, eventually, outboxRows, sendCallback, startOutboundApp, type OutboxRow } from './harness.js'
import { startReceiver, type Receiver } from './receiver.js'

const orders = 40

/** The index of the request that delivered a message (answered 2xx), or -1. */
function deliveredAt (receiver: Receiver, messageId: string): number {
  return receiver.delivered.find(request => request.id === messageId)?.index ?? -1
}

t.test('per-order FIFO under shuffled input and random failed attempts: each order\'s messages arrive in the order they were written, each once', async t => {
  const seed = testSeed()
  t.comment(`fifo seed ${seed} (PAYNOTIFY_TEST_SEED=${seed} reproduces it)`)
  const random = seededRandom(seed)
  // Each message's first and second attempts fail at random (500, 503 or 429); a third never does, so none is dead-lettered.
  const failures = [{ status: 500 }, { status: 503 }, { status: 429 }]
  const receiver = await startReceiver(t, (request, r) => r.attemptsOf(request.id).length <= 2 && random() < 0.4 ? failures[Math.floor(random() * 3)]! : { status: 200 })
  const setup = await startOutboundApp(t)
  const { app } = setup
  await createEndpoint(app, { url: receiver.url }, receiver)

  const callbacks: Array<Record<string, string>> = []
  for (let k = 0; k < orders; k++) {
    const orderId = `fifo-${k}`
    const paid = 1_000 + Math.floor(random() * 90_000)
    callbacks.push(callbackParams(orderId, 'pending', paid), callbackParams(orderId, 'paid', paid))
    if (random() < 0.5) callbacks.push(callbackParams(orderId, 'refund', 1 + Math.floor(random() * (paid - 1))))
    if (random() < 0.2) callbacks.push(callbackParams(orderId, 'paid', paid, { notify_id: `${orderId}-paid-again` }))
  }
  await runPool(shuffle(callbacks, random), 8, async params => { await sendCallback(app, params) })

  const written = outboxRows(setup)
  // At least two per order whatever the arrival order: its first change (order.updated) and the paid
  // one (order.paid, with its order.updated when the payment came first); a pending after paid changes nothing.
  t.ok(written.length >= orders * 2, `${written.length} messages for ${callbacks.length} callbacks`)
  t.equal(new Set(written.map(row => row.order_id)).size, orders, 'every order wrote messages')
  await receiver.until(r => written.every(row => deliveredAt(r, row.message_id) >= 0))
  t.same(receiver.refused, [], 'every attempt verified')
  t.ok(receiver.requests.length > written.length, `${receiver.requests.length - written.length} attempts failed and were retried`)

  const byOrder = new Map<string, OutboxRow[]>()
  for (const row of written) byOrder.set(row.order_id, [...(byOrder.get(row.order_id) ?? []), row])
  let outOfOrder = 0
  let overtaken = 0
  let versionsBack = 0
  for (const [orderId, rows] of byOrder) {
    const arrived = receiver.delivered.filter(request => request.message!.data.order_id === orderId)
    if (JSON.stringify(arrived.map(request => request.id)) !== JSON.stringify(rows.map(row => row.message_id))) outOfOrder++
    arrived.forEach((request, i) => { if (i > 0 && request.message!.data.version < arrived[i - 1]!.message!.data.version) versionsBack++ })
    // No attempt of a message (failed or not) before the order's previous message was delivered.
    for (let i = 1; i < rows.length; i++) {
      const firstAttempt = receiver.attemptsOf(rows[i]!.message_id)[0]!.index
      if (firstAttempt < deliveredAt(receiver, rows[i - 1]!.message_id)) overtaken++
    }
  }
  t.equal(outOfOrder, 0, `each of ${byOrder.size} orders received its messages once each, in outbox order`)
  t.equal(overtaken, 0, 'no message was attempted before the order\'s previous one was delivered')
  t.equal(versionsBack, 0, 'so version never goes back')
  let stale = 0
  for (const orderId of byOrder.keys()) {
    const shown = await adminGet(app, `/admin/orders/${orderId}`)
    const last = receiver.delivered.filter(request => request.message!.data.order_id === orderId).at(-1)!.message!.data
    if (last.status !== shown.status || last.paid_amount !== shown.paidAmount || last.refunded_amount !== shown.refundedAmount || JSON.stringify(last.anomalies) !== JSON.stringify(shown.anomalies)) stale++
  }
  t.equal(stale, 0, 'each order\'s last message tells its view as the admin API shows it')
  t.same(setup.errors, [])
})

t.test('one order whose messages keep failing does not hold up the others', async t => {
  const receiver = await startReceiver(t, (request, r) => {
    if (request.message!.data.order_id !== 'stuck') return { status: 200 }
    // First a 500 (retried on the schedule), then a 503 that asks for an hour.
    return r.attemptsOf(request.id).length === 1 ? { status: 500 } : { status: 503, headers: { 'retry-after': '3600' } }
  })
  const setup = await startOutboundApp(t)
  const { app } = setup
  const endpoint = await createEndpoint(app, { url: receiver.url }, receiver)
  await sendCallback(app, callbackParams('stuck', 'pending', 5_000))
  await sendCallback(app, callbackParams('stuck', 'paid', 5_000))
  const stuck = outboxRows(setup, 'stuck')
  await receiver.until(r => r.attemptsOf(stuck[0]!.message_id).some(request => request.answer === 503))

  for (let k = 0; k < 20; k++) await sendCallback(app, callbackParams(`flowing-${k}`, 'paid', 1_000 + k))
  const others = outboxRows(setup).filter(row => row.order_id !== 'stuck')
  await receiver.until(r => others.every(row => deliveredAt(r, row.message_id) >= 0))
  t.pass(`the other orders' ${others.length} messages were delivered while one order's first message waits`)

  t.same(receiver.requests.filter(request => request.message!.data.order_id === 'stuck').map(request => request.id), [stuck[0]!.message_id, stuck[0]!.message_id], 'the stuck order: two attempts of its first message, none of its later ones')
  const waiting = await eventually(async () => {
    const message = await adminGet(app, `/admin/messages/${stuck[0]!.message_id}`)
    return message.deliveries[0].attempts >= 2 ? message : undefined
  })
  t.match(waiting.deliveries, [{ endpointId: endpoint.id, state: 'failed', attempts: 2, lastStatus: 503 }])
  t.ok(Date.parse(waiting.deliveries[0].nextAttemptAt) >= Date.now() + 3_500_000, 'its next attempt is the hour the Retry-After asked for')
  for (const later of stuck.slice(1)) t.match(await adminGet(app, `/admin/messages/${later.message_id}`), { state: 'pending', deliveries: [{ attempts: 0 }] }, `${later.type} waits behind it`)
})
