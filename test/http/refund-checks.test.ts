import { randomBytes } from 'node:crypto'
import Stripe from 'stripe'
import t from 'tap'
import { adminAuth, buildTestApp, eventCount, formHeaders, order, signedForm, type TestApp } from '../helpers.js'

// Issue 10 §3, over HTTP with real signed callbacks: refunds are checked like payments.
const stripe = new Stripe('sk_test_paynotify_unused')
const secret = `whsec_${randomBytes(24).toString('base64')}`
const env = { PAYNOTIFY_STRIPE_WEBHOOK_SECRET: secret }
const nowSeconds = 1_800_000_000
const now = (): Date => new Date(nowSeconds * 1000)

let eventSeq = 0
/** A signed Stripe event; `created` is the gateway's own time of it. */
function stripeEvent (type: string, object: Record<string, unknown>, created = nowSeconds - 100): { payload: string, signature: string } {
  const payload = JSON.stringify({ id: `evt_rc_${++eventSeq}`, object: 'event', created, livemode: false, type, data: { object } })
  return { payload, signature: stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp: nowSeconds }) }
}

async function sendStripe (tt: Pick<typeof t, 'equal'>, test: TestApp, event: { payload: string, signature: string }): Promise<void> {
  const res = await test.app.inject({ method: 'POST', url: '/notify/stripe', headers: { 'content-type': 'application/json', 'stripe-signature': event.signature }, payload: event.payload })
  tt.equal(res.statusCode, 200, res.body)
}

async function sendGeneric (tt: Pick<typeof t, 'equal'>, test: TestApp, params: Record<string, string>): Promise<void> {
  const res = await test.app.inject({ method: 'POST', url: '/notify/generic', headers: formHeaders, payload: signedForm(params) })
  tt.equal(res.statusCode, 200, res.body)
}

const paymentIntent = (id: string, orderId: string | null, amount = 2000, currency = 'usd'): Record<string, unknown> =>
  ({ id, object: 'payment_intent', amount, amount_received: amount, currency, status: 'succeeded', metadata: orderId === null ? {} : { order_id: orderId } })
const refund = (id: string, pi: string, status: string, amount = 2000): Record<string, unknown> =>
  ({ id, object: 'refund', amount, currency: 'usd', status, payment_intent: pi, charge: `ch_${pi}`, metadata: {} })
const charge = (pi: string, amountRefunded: number): Record<string, unknown> =>
  ({ id: `ch_${pi}`, object: 'charge', amount: 2000, amount_refunded: amountRefunded, currency: 'usd', payment_intent: pi, refunded: amountRefunded === 2000, metadata: {} })

async function unattributed (test: TestApp, query = ''): Promise<{ events: Array<{ position: number, type: string, data: Record<string, unknown>, orders: string[] }>, nextCursor: number | null }> {
  const res = await test.app.inject({ url: `/admin/unattributed${query}`, headers: adminAuth })
  if (res.statusCode !== 200) throw new Error(`GET /admin/unattributed answered ${res.statusCode} ${res.body}`)
  return res.json()
}

t.test('X1: a 20.00 USD Stripe payment and a generic "20.00" refund with no currency (CNY) is not refunded and is flagged', async t => {
  const test = await buildTestApp(t, { env, deps: { now } })
  await sendStripe(t, test, stripeEvent('payment_intent.succeeded', paymentIntent('pi_X1', 'X1')))
  await sendGeneric(t, test, { order_id: 'X1', amount: '20.00', status: 'refunded' })
  const view = await order(test.app, 'X1')
  t.match(view, { status: 'paid', paidAmount: 2000, refundedAmount: 0, currency: 'USD', needsReview: true })
  t.same(view.anomalies, ['gateway_mismatch', 'refund_currency_mismatch'])
})

t.test('X2: 20.00 CNY paid and a 2000 JPY refund is not refunded and is flagged, in either order', async t => {
  const test = await buildTestApp(t)
  for (const [orderId, first] of [['X2a', 'payment'], ['X2b', 'refund']]) {
    const paid = { order_id: orderId!, amount: '20.00', currency: 'CNY', status: '1', trade_no: `T-${orderId}` }
    const refunded = { order_id: orderId!, amount: '2000', currency: 'JPY', status: '3', trade_no: `T-${orderId}` }
    for (const params of first === 'payment' ? [paid, refunded] : [refunded, paid]) await sendGeneric(t, test, params)
    const view = await order(test.app, orderId!)
    t.match(view, { status: 'paid', paidAmount: 2000, refundedAmount: 0, currency: 'CNY', needsReview: true }, `${first} first`)
    t.same(view.anomalies, ['refund_currency_mismatch'], `${first} first`)
  }
})

t.test('R1: one 50.00 refund reported with and without trade_no counts once and is flagged duplicate_refund', async t => {
  const test = await buildTestApp(t)
  await sendGeneric(t, test, { order_id: 'R1', amount: '100.00', status: '1', trade_no: 'T-R1', notify_id: 'r1-1' })
  await sendGeneric(t, test, { order_id: 'R1', amount: '50.00', status: '3', trade_no: 'T-R1', notify_id: 'r1-2' })
  await sendGeneric(t, test, { order_id: 'R1', amount: '50.00', status: '3', notify_id: 'r1-3' })
  const view = await order(test.app, 'R1')
  t.match(view, { status: 'partially_refunded', paidAmount: 10000, refundedAmount: 5000, needsReview: true })
  t.same(view.anomalies, ['duplicate_refund'])
  // The same with a refund_no on one report only.
  await sendGeneric(t, test, { order_id: 'R1b', amount: '100.00', status: '1', trade_no: 'T-R1b' })
  await sendGeneric(t, test, { order_id: 'R1b', amount: '50.00', status: '3', notify_id: 'r1b-2' })
  await sendGeneric(t, test, { order_id: 'R1b', amount: '50.00', status: '3', trade_no: 'T-R1b', refund_no: 'RF-1', notify_id: 'r1b-3' })
  t.match(await order(test.app, 'R1b'), { status: 'partially_refunded', refundedAmount: 5000, anomalies: ['duplicate_refund'] })
})

t.test('a refund or a payment from a gateway other than the one that took the payment is flagged and not counted', async t => {
  const test = await buildTestApp(t, { env, deps: { now } })
  await sendStripe(t, test, stripeEvent('payment_intent.succeeded', paymentIntent('pi_G1', 'G1')))
  await sendGeneric(t, test, { order_id: 'G1', amount: '20.00', currency: 'USD', status: 'refunded' })
  t.match(await order(test.app, 'G1'), { status: 'paid', refundedAmount: 0, anomalies: ['gateway_mismatch'] })

  await sendGeneric(t, test, { order_id: 'G2', amount: '20.00', currency: 'USD', status: 'paid', trade_no: 'T-G2' })
  await sendStripe(t, test, stripeEvent('payment_intent.succeeded', paymentIntent('pi_G2', 'G2')))
  t.match(await order(test.app, 'G2'), { status: 'paid', anomalies: ['duplicate_payment', 'gateway_mismatch'] })
})

t.test('a Stripe refund without order metadata is attributed through its PaymentIntent, before or after the payment', async t => {
  const test = await buildTestApp(t, { env, deps: { now } })
  // After the payment: refund.updated names no order, its payment_intent does.
  await sendStripe(t, test, stripeEvent('payment_intent.succeeded', paymentIntent('pi_A1', 'A1')))
  await sendStripe(t, test, stripeEvent('refund.updated', refund('re_A1', 'pi_A1', 'succeeded', 500)))
  t.match(await order(test.app, 'A1'), { status: 'partially_refunded', paidAmount: 2000, refundedAmount: 500, anomalies: [] })
  await sendStripe(t, test, stripeEvent('charge.refunded', charge('pi_A1', 2000)))
  t.match(await order(test.app, 'A1'), { status: 'refunded', refundedAmount: 2000, anomalies: [] })

  // Before the payment: the refunds are held unattributed and join the order when its payment arrives.
  const before = eventCount(test)
  await sendStripe(t, test, stripeEvent('charge.refunded', charge('pi_A2', 2000)))
  await sendStripe(t, test, stripeEvent('refund.updated', refund('re_A2', 'pi_A2', 'succeeded')))
  t.equal(eventCount(test), before + 2, 'both kept in the log')
  t.equal(await order(test.app, 'A2'), null, 'no order is named yet')
  let listed = await unattributed(test, '?attributed=false')
  t.same(listed.events.map(e => [e.data.reportedType, e.data.transactionId, e.orders]), [['PaymentRefunded', 'pi_A2', []], ['PaymentRefunded', 'pi_A2', []]])
  await sendStripe(t, test, stripeEvent('payment_intent.succeeded', paymentIntent('pi_A2', 'A2')))
  t.match(await order(test.app, 'A2'), { status: 'refunded', paidAmount: 2000, refundedAmount: 2000, anomalies: [] })
  listed = await unattributed(test)
  t.same(listed.events.map(e => e.orders), [['A1'], ['A1'], ['A2'], ['A2']], 'every report listed with the order it joined')
  t.same((await unattributed(test, '?attributed=false')).events, [])
})

t.test('a verified Stripe event that names no known order is kept, listed for admins, and never dropped', async t => {
  const lines: string[] = []
  const logger = { level: 'warn', stream: { write: (line: string) => { lines.push(line) } } }
  const test = await buildTestApp(t, { env, deps: { now, logger } })
  await sendStripe(t, test, stripeEvent('refund.failed', refund('re_U1', 'pi_U1', 'failed')))
  await sendStripe(t, test, stripeEvent('payment_intent.succeeded', paymentIntent('pi_U2', null, 999)))
  t.equal(eventCount(test), 2)
  const listed = await unattributed(test)
  t.match(listed.events, [
    { type: 'UnattributedReportReceived', streamId: '~unattributed:stripe', data: { reportedType: 'RefundFailed', amount: 2000, currency: 'USD', transactionId: 'pi_U1', refundId: 're_U1', reason: 'no metadata.order_id' }, orders: [] },
    { data: { reportedType: 'PaymentSucceeded', amount: 999, transactionId: 'pi_U2' }, orders: [] }
  ])
  t.equal(listed.nextCursor, null)
  const page = await unattributed(test, '?limit=1')
  t.equal(page.events.length, 1)
  t.equal(page.nextCursor, listed.events[0]!.position)
  t.same((await unattributed(test, `?after=${page.nextCursor!}`)).events.map(e => e.position), [listed.events[1]!.position])
  t.equal((await test.app.inject({ url: '/admin/unattributed' })).statusCode, 401, 'admin token required')
  t.equal((await test.app.inject({ url: '/admin/unattributed?attributed=maybe', headers: adminAuth })).statusCode, 400)
  const warnings = lines.map(line => JSON.parse(line) as Record<string, unknown>).filter(entry => entry.gateway === 'stripe')
  t.equal(warnings.length, 2, 'each is logged at warn')
  t.notOk(lines.some(line => line.includes(secret)), 'no secret in the log')
})

t.test('a refund reported succeeded and later failed stops counting and is flagged, whatever the arrival order', async t => {
  const test = await buildTestApp(t, { env, deps: { now } })
  for (const [orderId, first] of [['F1', 'succeeded'], ['F2', 'failed']]) {
    const pi = `pi_${orderId!}`
    const succeeded = stripeEvent('refund.updated', { ...refund(`re_${orderId!}`, pi, 'succeeded'), metadata: { order_id: orderId } }, nowSeconds - 90)
    const failed = stripeEvent('refund.failed', { ...refund(`re_${orderId!}`, pi, 'failed'), metadata: { order_id: orderId } }, nowSeconds - 30)
    await sendStripe(t, test, stripeEvent('payment_intent.succeeded', paymentIntent(pi, orderId!)))
    for (const event of first === 'succeeded' ? [succeeded, failed] : [failed, succeeded]) await sendStripe(t, test, event)
    t.match(await order(test.app, orderId!), { status: 'paid', refundedAmount: 0, anomalies: ['refund_failed'] }, `${first} first`)
  }
  // With the charge's running total too (charge.refunded before the failure): the failed refund comes off it.
  await sendStripe(t, test, stripeEvent('payment_intent.succeeded', paymentIntent('pi_F3', 'F3')))
  await sendStripe(t, test, stripeEvent('charge.refunded', { ...charge('pi_F3', 2000), metadata: { order_id: 'F3' } }, nowSeconds - 95))
  await sendStripe(t, test, stripeEvent('refund.updated', refund('re_F3', 'pi_F3', 'succeeded'), nowSeconds - 90))
  t.match(await order(test.app, 'F3'), { status: 'refunded', refundedAmount: 2000 })
  await sendStripe(t, test, stripeEvent('refund.failed', refund('re_F3', 'pi_F3', 'failed'), nowSeconds - 30))
  t.match(await order(test.app, 'F3'), { status: 'paid', refundedAmount: 0, anomalies: ['refund_failed'] })
})

t.test('a signed zero-amount payment is kept and flagged, never paid', async t => {
  const test = await buildTestApp(t, { env, deps: { now } })
  await sendGeneric(t, test, { order_id: 'Z1', amount: '0.00', status: '1', trade_no: 'T-Z1' })
  t.equal(eventCount(test), 1)
  const view = await order(test.app, 'Z1')
  t.match(view, { paidAmount: 0, needsReview: true, anomalies: ['zero_amount_payment'] })
  t.not(view.status, 'paid')
  await sendStripe(t, test, stripeEvent('payment_intent.succeeded', paymentIntent('pi_Z2', 'Z2', 0)))
  t.match(await order(test.app, 'Z2'), { status: 'awaiting_payment', anomalies: ['zero_amount_payment'] })
})
