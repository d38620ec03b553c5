import { randomBytes } from 'node:crypto'
import t from 'tap'
import Stripe from 'stripe'
import { loadConfig } from '../../src/config.js'
import { createGatewayRegistry } from '../../src/gateways/registry.js'
import { adminAuth, buildTestApp, eventCount, order, testSecrets, type TestApp } from '../helpers.js'

// Stripe's own library is the independent signer (generateTestHeaderString) and verifier (constructEvent).
const stripe = new Stripe('sk_test_paynotify_unused')
const secret = `whsec_${randomBytes(24).toString('base64')}`
const otherSecret = `whsec_${randomBytes(24).toString('base64')}`
const env = { PAYNOTIFY_STRIPE_WEBHOOK_SECRET: secret }

// A fixed service clock makes the 300 s window exact at its edges.
const nowSeconds = 1_800_000_000
const fixedNow = (): Date => new Date(nowSeconds * 1000)

let eventSeq = 0
function stripeEvent (type: string, object: Record<string, unknown>, id = `evt_test_${++eventSeq}`): string {
  return JSON.stringify({ id, object: 'event', api_version: '2025-10-29.clover', created: nowSeconds - 5, livemode: false, type, data: { object } })
}

function paymentIntent (id: string, orderId: string | null, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    object: 'payment_intent',
    amount: 2000,
    amount_received: 2000,
    currency: 'usd',
    status: 'succeeded',
    metadata: orderId === null ? {} : { order_id: orderId },
    ...fields
  }
}

function sign (payload: string, options: { secret?: string, timestamp?: number } = {}): string {
  return stripe.webhooks.generateTestHeaderString({ payload, secret: options.secret ?? secret, timestamp: options.timestamp ?? nowSeconds })
}

async function post (app: TestApp['app'], payload: string, signature?: string | string[]) {
  const headers: Record<string, string | string[]> = { 'content-type': 'application/json; charset=utf-8' }
  if (signature !== undefined) headers['stripe-signature'] = signature
  return await app.inject({ method: 'POST', url: '/notify/stripe', headers, payload })
}

/** Posts a signed event and checks Stripe's ack. */
async function deliver (tt: Pick<typeof t, 'equal' | 'same'>, test: TestApp, payload: string): Promise<void> {
  const res = await post(test.app, payload, sign(payload))
  tt.equal(res.statusCode, 200, res.body)
  tt.same(res.json(), { received: true })
}

t.test('a gateway with no secret configured answers 404', async t => {
  const test = await buildTestApp(t)
  const payload = stripeEvent('payment_intent.succeeded', paymentIntent('pi_404', 'S404'))
  const res = await post(test.app, payload, sign(payload))
  t.equal(res.statusCode, 404)
  t.equal(eventCount(test), 0)
})

t.test('a valid event is acked {"received":true}, recorded and folds to paid; a retry is acked and deduplicated', async t => {
  const test = await buildTestApp(t, { env, deps: { now: fixedNow } })
  const payload = stripeEvent('payment_intent.succeeded', paymentIntent('pi_S1', 'S1'), 'evt_S1')
  const header = sign(payload)
  t.equal(stripe.webhooks.constructEvent(payload, header, secret, 300, undefined, nowSeconds * 1000).id, 'evt_S1', 'Stripe accepts it')
  const res = await post(test.app, payload, header)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
  t.equal(res.body, '{"received":true}')
  const paid = await order(test.app, 'S1')
  t.match(paid, { status: 'paid', paidAmount: 2000, currency: 'USD', gateway: 'stripe', gatewayTradeNo: 'pi_S1', duplicateCount: 0 })

  // Stripe re-signs each retry with a new timestamp; the event id stays the same.
  const retry = await post(test.app, payload, sign(payload, { timestamp: nowSeconds - 60 }))
  t.equal(retry.statusCode, 200)
  t.equal(retry.body, '{"received":true}')
  t.match(await order(test.app, 'S1'), { status: 'paid', paidAmount: 2000, duplicateCount: 1 })
  const timeline = (await test.app.inject({ url: '/admin/orders/S1/events', headers: adminAuth })).json()
  t.equal(timeline.events.length, 2, 'every delivery is kept')
  t.match(timeline.events[1], { outcome: 'duplicate', duplicateReason: 'delivery', duplicateOf: timeline.events[0].position })
  t.match(timeline.events[0].metadata, { gateway: 'stripe', deliveryId: 'evt_S1', raw: { body: payload, headers: { 'stripe-signature': header } } })
})

t.test('refused with 401 and nothing appended: tampered, wrong secret, stale, future, missing, repeated, v0 only', async t => {
  const test = await buildTestApp(t, { env, deps: { now: fixedNow } })
  const payload = stripeEvent('payment_intent.succeeded', paymentIntent('pi_R1', 'R1'))
  const good = sign(payload)
  const v1 = good.split(',v1=')[1]!
  const cases: Array<{ name: string, body: string, header?: string | string[], stripeRefuses: boolean }> = [
    { name: 'tampered body', body: payload.replace('"amount_received":2000', '"amount_received":1'), header: good, stripeRefuses: true },
    { name: 'wrong secret', body: payload, header: sign(payload, { secret: otherSecret }), stripeRefuses: true },
    { name: 'stale timestamp (301 s old)', body: payload, header: sign(payload, { timestamp: nowSeconds - 301 }), stripeRefuses: true },
    // Stripe's library has no upper bound; we also refuse a timestamp from the future (a pre-signed replay).
    { name: 'future timestamp (301 s ahead)', body: payload, header: sign(payload, { timestamp: nowSeconds + 301 }), stripeRefuses: false },
    { name: 'missing header', body: payload, stripeRefuses: true },
    { name: 'empty header', body: payload, header: '', stripeRefuses: true },
    { name: 'repeated header', body: payload, header: [good, good], stripeRefuses: true },
    { name: 'two timestamps', body: payload, header: `t=${nowSeconds},${good}`, stripeRefuses: false },
    { name: 'v0 only', body: payload, header: `t=${nowSeconds},v0=${v1}`, stripeRefuses: true },
    { name: 'no timestamp', body: payload, header: `v1=${v1}`, stripeRefuses: true },
    { name: 'signature of another timestamp', body: payload, header: `t=${nowSeconds - 1},v1=${v1}`, stripeRefuses: true }
  ]
  for (const c of cases) {
    const res = await post(test.app, c.body, c.header)
    t.equal(res.statusCode, 401, c.name)
    t.equal(res.json().error.code, 'bad_signature', c.name)
    if (typeof c.header !== 'object') {
      const verdict = (() => {
        try {
          stripe.webhooks.constructEvent(c.body, c.header ?? '', secret, 300, undefined, nowSeconds * 1000)
          return 'accepted'
        } catch {
          return 'refused'
        }
      })()
      t.equal(verdict, c.stripeRefuses ? 'refused' : 'accepted', `stripe's constructEvent on: ${c.name}`)
    }
  }
  t.equal(eventCount(test), 0, 'nothing was appended')
  t.equal(await order(test.app, 'R1'), null)
})

t.test('the window is 300 s both ways; any matching v1 is accepted, v0 and unknown schemes ignored', async t => {
  const test = await buildTestApp(t, { env, deps: { now: fixedNow } })
  for (const [i, timestamp] of [nowSeconds - 300, nowSeconds + 300].entries()) {
    const payload = stripeEvent('payment_intent.succeeded', paymentIntent(`pi_W${i}`, `W${i}`))
    const res = await post(test.app, payload, sign(payload, { timestamp }))
    t.equal(res.statusCode, 200, `t = now ${timestamp - nowSeconds} s`)
  }
  // Secret rotation: Stripe sends one v1 per active secret.
  const payload = stripeEvent('payment_intent.succeeded', paymentIntent('pi_W2', 'W2'))
  const wrong = sign(payload, { secret: otherSecret }).split(',v1=')[1]!
  const right = sign(payload).split(',v1=')[1]!
  const header = `t=${nowSeconds},v1=${wrong},v0=${right},v9=x,v1=${right}`
  t.equal(stripe.webhooks.constructEvent(payload, header, secret, 300, undefined, nowSeconds * 1000).type, 'payment_intent.succeeded')
  const res = await post(test.app, payload, header)
  t.equal(res.statusCode, 200)
  t.match(await order(test.app, 'W2'), { status: 'paid' })
})

t.test('every mapped event type gives the right order state', async t => {
  const test = await buildTestApp(t, { env, deps: { now: fixedNow } })
  const deliverAll = async (events: string[]): Promise<void> => {
    for (const payload of events) await deliver(t, test, payload)
  }

  await deliverAll([stripeEvent('payment_intent.processing', paymentIntent('pi_P', 'P', { status: 'processing', amount_received: 0 }))])
  t.match(await order(test.app, 'P'), { status: 'pending', paidAmount: 0 })

  await deliverAll([stripeEvent('payment_intent.payment_failed', paymentIntent('pi_F', 'F', { status: 'requires_payment_method', amount_received: 0 }))])
  t.match(await order(test.app, 'F'), { status: 'failed', paidAmount: 0 })

  await deliverAll([stripeEvent('payment_intent.canceled', paymentIntent('pi_C', 'C', { status: 'canceled', amount_received: 0 }))])
  t.match(await order(test.app, 'C'), { status: 'closed' })

  // A late payment_failed never downgrades paid.
  await deliverAll([
    stripeEvent('payment_intent.succeeded', paymentIntent('pi_L', 'L')),
    stripeEvent('payment_intent.payment_failed', paymentIntent('pi_L', 'L', { status: 'requires_payment_method' }))
  ])
  t.match(await order(test.app, 'L'), { status: 'paid', paidAmount: 2000 })

  // charge.refunded carries the cumulative amount_refunded: 500, then 2000 in all.
  const charge = (amountRefunded: number): Record<string, unknown> => ({
    id: 'ch_R', object: 'charge', amount: 2000, amount_refunded: amountRefunded, currency: 'usd', payment_intent: 'pi_CR', refunded: amountRefunded === 2000, metadata: { order_id: 'CR' }
  })
  await deliverAll([stripeEvent('payment_intent.succeeded', paymentIntent('pi_CR', 'CR')), stripeEvent('charge.refunded', charge(500))])
  t.match(await order(test.app, 'CR'), { status: 'partially_refunded', paidAmount: 2000, refundedAmount: 500 })
  await deliverAll([stripeEvent('charge.refunded', charge(2000))])
  t.match(await order(test.app, 'CR'), { status: 'refunded', refundedAmount: 2000, anomalies: [] })

  // refund.* events: one fact per refund id; pending is not stored; failed is a RefundFailed.
  const refund = (id: string, status: string, amount = 700): Record<string, unknown> => ({
    id, object: 'refund', amount, currency: 'usd', status, payment_intent: 'pi_RF', charge: 'ch_RF', metadata: { order_id: 'RF' }
  })
  await deliverAll([stripeEvent('payment_intent.succeeded', paymentIntent('pi_RF', 'RF'))])
  const before = eventCount(test)
  await deliverAll([stripeEvent('refund.created', refund('re_1', 'pending'))])
  t.equal(eventCount(test), before, 'a pending refund is acked, not stored')
  await deliverAll([stripeEvent('refund.updated', refund('re_1', 'succeeded')), stripeEvent('refund.created', refund('re_2', 'succeeded', 300))])
  await deliverAll([stripeEvent('refund.updated', refund('re_2', 'succeeded', 300))])
  t.match(await order(test.app, 'RF'), { status: 'partially_refunded', refundedAmount: 1000, duplicateCount: 1 })
  await deliverAll([stripeEvent('refund.failed', refund('re_3', 'failed', 200))])
  t.match(await order(test.app, 'RF'), { status: 'partially_refunded', refundedAmount: 1000, anomalies: ['refund_failed'] })
  const timeline = (await test.app.inject({ url: '/admin/orders/RF/events', headers: adminAuth })).json()
  t.same(timeline.events.map((e: { type: string, data: { refundId: string | null } }) => `${e.type}:${e.data.refundId}`),
    ['PaymentSucceeded:null', 'PaymentRefunded:re_1', 'PaymentRefunded:re_2', 'PaymentRefunded:re_2', 'RefundFailed:re_3'])
})

t.test('checkout.session.completed and payment_intent.succeeded are one applied fact, in either order', async t => {
  const test = await buildTestApp(t, { env, deps: { now: fixedNow } })
  const session = (orderId: string, pi: string): Record<string, unknown> => ({
    id: `cs_test_${orderId}`, object: 'checkout.session', amount_total: 2000, currency: 'usd', payment_status: 'paid', payment_intent: pi, metadata: { order_id: orderId }
  })
  for (const [orderId, first] of [['T1', 'session'], ['T2', 'intent']] as const) {
    const pi = `pi_${orderId}`
    const events = [stripeEvent('checkout.session.completed', session(orderId, pi)), stripeEvent('payment_intent.succeeded', paymentIntent(pi, orderId))]
    if (first === 'intent') events.reverse()
    for (const payload of events) await deliver(t, test, payload)
    t.match(await order(test.app, orderId), { status: 'paid', paidAmount: 2000, anomalies: [], duplicateCount: 1, gatewayTradeNo: pi }, `${first} first`)
    const timeline = (await test.app.inject({ url: `/admin/orders/${orderId}/events`, headers: adminAuth })).json()
    t.same(timeline.events.map((e: { outcome: string }) => e.outcome), ['applied', 'duplicate'])
    t.equal(timeline.events[1].duplicateReason, 'fact')
  }

  // A delayed payment method: completed (unpaid) is pending, async_payment_succeeded pays.
  const unpaid = { ...session('T3', 'pi_T3'), payment_status: 'unpaid' }
  await deliver(t, test, stripeEvent('checkout.session.completed', unpaid))
  t.match(await order(test.app, 'T3'), { status: 'pending' })
  await deliver(t, test, stripeEvent('checkout.session.async_payment_succeeded', { ...unpaid, payment_status: 'paid' }))
  t.match(await order(test.app, 'T3'), { status: 'paid', paidAmount: 2000 })

  // Checkout's client_reference_id names the order when the session metadata does not.
  await deliver(t, test, stripeEvent('checkout.session.completed', { ...session('T4', 'pi_T4'), metadata: {}, client_reference_id: 'T4' }))
  t.match(await order(test.app, 'T4'), { status: 'paid' })
})

t.test('amounts are Stripe minor units: zero-decimal currencies are not scaled, currency is upper-cased', async t => {
  const test = await buildTestApp(t, { env, deps: { now: fixedNow } })
  await deliver(t, test, stripeEvent('payment_intent.succeeded', paymentIntent('pi_JPY', 'JPY1', { amount: 5000, amount_received: 5000, currency: 'jpy' })))
  t.match(await order(test.app, 'JPY1'), { status: 'paid', paidAmount: 5000, currency: 'JPY' })
  await deliver(t, test, stripeEvent('payment_intent.succeeded', paymentIntent('pi_KRW', 'KRW1', { amount: 15000, amount_received: 15000, currency: 'krw' })))
  t.match(await order(test.app, 'KRW1'), { paidAmount: 15000, currency: 'KRW' })
  await deliver(t, test, stripeEvent('payment_intent.succeeded', paymentIntent('pi_KWD', 'KWD1', { amount: 1230, amount_received: 1230, currency: 'kwd' })))
  t.match(await order(test.app, 'KWD1'), { paidAmount: 1230, currency: 'KWD' })
  // ISK is two-decimal in Stripe's API (100 = 1 króna) but zero-decimal in ISO 4217.
  await deliver(t, test, stripeEvent('payment_intent.succeeded', paymentIntent('pi_ISK', 'ISK1', { amount: 150000, amount_received: 150000, currency: 'isk' })))
  t.match(await order(test.app, 'ISK1'), { paidAmount: 1500, currency: 'ISK' })

  // A registered JPY order matches the unscaled Stripe amount exactly (no amount_mismatch).
  const placed = await test.app.inject({
    method: 'POST',
    url: '/orders',
    headers: { authorization: `Bearer ${testSecrets.merchantToken}`, 'content-type': 'application/json' },
    payload: { order_id: 'JPY2', amount: '5000', currency: 'JPY' }
  })
  t.equal(placed.statusCode, 201, placed.body)
  await deliver(t, test, stripeEvent('payment_intent.succeeded', paymentIntent('pi_JPY2', 'JPY2', { amount: 5000, amount_received: 5000, currency: 'jpy' })))
  t.match(await order(test.app, 'JPY2'), { status: 'paid', paidAmount: 5000, expectedAmount: 5000, anomalies: [] })
})

t.test('a verified event naming no order is acked, logged at warn and kept as an unattributed report; other types are acked, not stored', async t => {
  const lines: string[] = []
  const logger = { level: 'warn', stream: { write: (line: string) => { lines.push(line) } } }
  const test = await buildTestApp(t, { env, deps: { now: fixedNow, logger } })

  const payload = stripeEvent('payment_intent.succeeded', paymentIntent('pi_NOORDER', null), 'evt_NOORDER')
  await deliver(t, test, payload)
  const badId = stripeEvent('payment_intent.succeeded', paymentIntent('pi_BADID', 'no spaces allowed'), 'evt_BADID')
  await deliver(t, test, badId)
  await deliver(t, test, stripeEvent('customer.created', { id: 'cus_1', object: 'customer', metadata: { order_id: 'X' } }))
  const stored = test.store.sqlite.prepare('SELECT stream_id, type, data FROM events ORDER BY position').all() as Array<{ stream_id: string, type: string, data: string }>
  t.same(stored.map(row => [row.stream_id, row.type, JSON.parse(row.data).reason]), [
    ['~unattributed:stripe', 'UnattributedReportReceived', 'no metadata.order_id'],
    ['~unattributed:stripe', 'UnattributedReportReceived', 'metadata.order_id is not a valid order id']
  ], 'both kept; the unmapped type is not')
  t.match(JSON.parse(stored[0]!.data), { reportedType: 'PaymentSucceeded', amount: 2000, currency: 'USD', gateway: 'stripe', transactionId: 'pi_NOORDER', gatewayStatus: 'payment_intent.succeeded' })
  t.equal(await order(test.app, 'no spaces allowed'), null)

  const warnings = lines.map(line => JSON.parse(line) as Record<string, unknown>).filter(entry => entry.gateway === 'stripe')
  t.match(warnings, [
    { level: 40, eventId: 'evt_NOORDER', eventType: 'payment_intent.succeeded', objectId: 'pi_NOORDER', transactionId: 'pi_NOORDER', reason: 'no metadata.order_id', msg: 'stripe event names no order: recorded as unattributed' },
    { level: 40, eventId: 'evt_BADID', reason: 'metadata.order_id is not a valid order id' }
  ])
  t.equal(warnings.length, 2, 'unmapped event types are not warned about')
  t.notOk(lines.some(line => line.includes(secret) || line.includes('amount_received')), 'no secret and no body in the log')
})

t.test('the order id key is configurable', async t => {
  const test = await buildTestApp(t, { env: { ...env, PAYNOTIFY_STRIPE_ORDER_ID_KEY: 'merchant_ref' }, deps: { now: fixedNow } })
  await deliver(t, test, stripeEvent('payment_intent.succeeded', paymentIntent('pi_K', null, { metadata: { merchant_ref: 'K1', order_id: 'other' } })))
  t.match(await order(test.app, 'K1'), { status: 'paid' })
  t.equal(await order(test.app, 'other'), null)
})

t.test('a signed event that is not a Stripe event object is a 400 with nothing appended', async t => {
  const test = await buildTestApp(t, { env, deps: { now: fixedNow } })
  const bodies = [
    '{not json',
    '[]',
    JSON.stringify({ id: 'evt_x', type: 'payment_intent.succeeded' }),
    stripeEvent('payment_intent.succeeded', paymentIntent('pi_x', 'X1', { amount_received: 20.5 })),
    stripeEvent('payment_intent.succeeded', paymentIntent('pi_x', 'X1', { currency: 'zzz' })),
    stripeEvent('payment_intent.succeeded', { ...paymentIntent('pi_x', 'X1'), object: 'charge' })
  ]
  for (const body of bodies) {
    const res = await post(test.app, body, sign(body))
    t.equal(res.statusCode, 400, body)
    t.equal(res.json().error.code, 'malformed')
  }
  const form = await test.app.inject({ method: 'POST', url: '/notify/stripe', headers: { 'content-type': 'application/x-www-form-urlencoded', 'stripe-signature': sign('a=1') }, payload: 'a=1' })
  t.equal(form.statusCode, 415)
  t.equal(eventCount(test), 0)
})

t.test('the registry enables stripe only with its secret', async t => {
  t.notOk(createGatewayRegistry(loadConfig({}), testSecrets).has('stripe'))
  t.ok(createGatewayRegistry(loadConfig(env), testSecrets).has('stripe'))
  t.throws(() => loadConfig({ PAYNOTIFY_STRIPE_WEBHOOK_SECRET: 'not-a-whsec' }), /PAYNOTIFY_STRIPE_WEBHOOK_SECRET/)
})
