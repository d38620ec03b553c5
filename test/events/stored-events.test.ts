import { randomBytes } from 'node:crypto'
import Stripe from 'stripe'
import t from 'tap'
import { exportLines, resolveExportRange } from '../../src/event-log/export.js'
import { genesisHash } from '../../src/event-log/hash.js'
import { iterateRows, rowToEvent } from '../../src/event-log/read.js'
import { eventTypes } from '../../src/orders/events.js'
import { adminAuth, buildTestApp, formHeaders, merchantAuth, signedForm } from '../helpers.js'
import { loadCatalogue } from './catalogue.js'

// The contract: whatever the service stores validates against events/schemas, for every type.
const catalogue = loadCatalogue()
const nowSeconds = 1_800_000_000
const now = (): Date => new Date(nowSeconds * 1000)
const stripeSecret = `whsec_${randomBytes(24).toString('base64')}`
const stripe = new Stripe('sk_test_paynotify_unused')

let stripeSeq = 0
function stripeEvent (type: string, object: Record<string, unknown>): { payload: string, signature: string } {
  const payload = JSON.stringify({ id: `evt_stored_${++stripeSeq}`, object: 'event', created: nowSeconds - 5, livemode: false, type, data: { object } })
  return { payload, signature: stripe.webhooks.generateTestHeaderString({ payload, secret: stripeSecret, timestamp: nowSeconds }) }
}

t.test('every event stored after a mixed run of callbacks validates against its schema', async t => {
  const { app, store } = await buildTestApp(t, { env: { PAYNOTIFY_STRIPE_WEBHOOK_SECRET: stripeSecret, PAYNOTIFY_ACCEPT_REPLAYS: '1', PAYNOTIFY_OUTBOUND_ALLOW_PRIVATE: '1' }, deps: { now }, store: { clock: now }, outbound: true })
  const post = async (request: { url: string, headers: Record<string, string>, payload: string }, status = 200): Promise<void> => {
    const answer = await app.inject({ method: 'POST', ...request })
    t.equal(answer.statusCode, status, `${request.url} ${request.payload.slice(0, 60)}`)
  }
  const generic = async (params: Record<string, string>, headers: Record<string, string> = {}): Promise<void> => {
    await post({ url: '/notify/generic', headers: { ...formHeaders, ...headers }, payload: signedForm({ timestamp: String(nowSeconds), ...params }) })
  }

  // The merchant registers orders, as JSON and as a form.
  await post({ url: '/orders', headers: { ...merchantAuth, 'content-type': 'application/json' }, payload: JSON.stringify({ order_id: 'M-1', amount: '88.88', currency: 'CNY' }) }, 201)
  await post({ url: '/orders', headers: { ...merchantAuth, ...formHeaders }, payload: 'order_id=M-2&amount=1200&currency=JPY' }, 201)

  // Generic callbacks: every status code and name, with and without notify_id/trade_no/refund_no, JSON, a retry, a replay.
  await generic({ order_id: 'M-1', amount: '88.88', status: '0', notify_id: 'g-1', trade_no: 'T-1' })
  await generic({ order_id: 'M-1', amount: '88.88', status: '1', notify_id: 'g-2', trade_no: 'T-1' })
  await generic({ order_id: 'M-1', amount: '88.88', status: '1', notify_id: 'g-2', trade_no: 'T-1' })
  await generic({ order_id: 'M-1', amount: '8.88', status: 'refunded', notify_id: 'g-3', trade_no: 'T-1', refund_no: 'R-1' })
  await generic({ order_id: 'M-1', amount: '1.00', status: '3' })
  await generic({ order_id: 'M-2', amount: '1200', currency: 'JPY', status: 'failed', notify_id: 'g-4' })
  await generic({ order_id: 'M-2', amount: '1200', currency: 'JPY', status: '4', notify_id: 'g-5' })
  await generic({ order_id: 'M-3', amount: '5.00', status: 'pending' })
  await generic({ order_id: 'M-3', amount: '5.00', status: 'success', notify_id: 'g-6', trade_no: 'T-3' }, { 'x-paynotify-replay-of': '3' })
  await generic({ order_id: 'M-3', amount: '5.00', status: 'closed', notify_id: 'g-7' })
  const json = { order_id: 'M-4', amount: '9.99', status: 'paid', notify_id: 'g-8', currency: 'USD', timestamp: String(nowSeconds) }
  const jsonBody = JSON.stringify({ ...json, sign: new URLSearchParams(signedForm(json)).get('sign') })
  await post({ url: '/notify/generic', headers: { 'content-type': 'application/json; charset=utf-8' }, payload: jsonBody })
  // A body large enough to be stored apart, by its hash, and its retry.
  await generic({ order_id: 'M-5', amount: '1.00', status: 'paid', notify_id: 'g-9', subject: 'x'.repeat(5000) })
  await generic({ order_id: 'M-5', amount: '1.00', status: 'paid', notify_id: 'g-9', subject: 'x'.repeat(5000) })

  // Stripe: pending, paid, failed, closed, refunds (cumulative and per refund id) and a failed refund.
  const pi = (id: string, status: string): Record<string, unknown> => ({ id, object: 'payment_intent', amount: 2000, amount_received: status === 'succeeded' ? 2000 : 0, currency: 'usd', status, metadata: { order_id: 'S-1' } })
  const refund = (id: string, status: string): Record<string, unknown> => ({ id, object: 'refund', amount: 700, currency: 'usd', status, payment_intent: 'pi_1', charge: 'ch_1', metadata: { order_id: 'S-1' } })
  for (const { payload, signature } of [
    stripeEvent('payment_intent.processing', pi('pi_1', 'processing')),
    stripeEvent('payment_intent.succeeded', pi('pi_1', 'succeeded')),
    stripeEvent('payment_intent.payment_failed', pi('pi_0', 'requires_payment_method')),
    stripeEvent('payment_intent.canceled', pi('pi_2', 'canceled')),
    stripeEvent('charge.refunded', { id: 'ch_1', object: 'charge', amount: 2000, amount_refunded: 500, currency: 'usd', payment_intent: 'pi_1', metadata: { order_id: 'S-1' } }),
    stripeEvent('refund.updated', refund('re_1', 'succeeded')),
    stripeEvent('refund.failed', refund('re_2', 'failed')),
    stripeEvent('checkout.session.completed', { id: 'cs_1', object: 'checkout.session', amount_total: 2000, currency: 'usd', payment_status: 'paid', payment_intent: 'pi_1', metadata: { order_id: 'S-1' } }),
    // Without order metadata: kept as unattributed reports (one joins S-1 through pi_1).
    stripeEvent('refund.updated', { ...refund('re_3', 'succeeded'), metadata: {} }),
    stripeEvent('charge.refunded', { id: 'ch_9', object: 'charge', amount: 900, amount_refunded: 900, currency: 'usd', payment_intent: 'pi_9', metadata: {} }),
    stripeEvent('payment_intent.succeeded', { ...pi('pi_8', 'succeeded'), metadata: { order_id: 'not an id' } })
  ]) {
    await post({ url: '/notify/stripe', headers: { 'content-type': 'application/json', 'stripe-signature': signature }, payload })
  }

  // Endpoint changes by an admin: created, updated, secret rotated, deleted. (Disabled, the dispatcher's, is test/outbound's.)
  const created = await app.inject({ method: 'POST', url: '/admin/endpoints', headers: adminAuth, payload: { url: 'http://127.0.0.1:9/hook', events: ['order.paid'], description: 'ERP' } })
  t.equal(created.statusCode, 201, 'endpoint created')
  const endpointId = created.json().id as string
  t.equal((await app.inject({ method: 'PATCH', url: `/admin/endpoints/${endpointId}`, headers: adminAuth, payload: { enabled: false } })).statusCode, 200, 'endpoint updated')
  t.equal((await app.inject({ method: 'POST', url: `/admin/endpoints/${endpointId}/rotate-secret`, headers: adminAuth })).statusCode, 200, 'secret rotated')
  t.equal((await app.inject({ method: 'DELETE', url: `/admin/endpoints/${endpointId}`, headers: adminAuth })).statusCode, 204, 'endpoint deleted')

  // An admin's review note on M-3 (paid after closed: closed_after_paid).
  const reviewed = await app.inject({ method: 'POST', url: '/admin/orders/M-3/review-notes', headers: adminAuth, payload: { note: 'customer contacted, order kept' } })
  t.equal(reviewed.statusCode, 201, `review note: ${reviewed.body}`)

  const rows = [...iterateRows(store.sqlite)]
  t.ok(rows.length >= 20, `${rows.length} events stored`)
  t.same(new Set(rows.map(row => row.type)), new Set(eventTypes), 'the run stored every event type')
  t.equal(rows.filter(row => typeof row.raw_body === 'string').length, 2, 'two events with a body stored apart')
  let prevHash = genesisHash
  for (const row of rows) {
    const event = rowToEvent(row)
    t.equal(catalogue.check(`${row.type}.v${row.schema_version}.json`, JSON.parse(row.data)), null, `position ${row.position} ${row.type} data`)
    t.equal(catalogue.check('EventMetadata.v1.json', event.metadata), null, `position ${row.position} metadata`)
    // The same event as an export line: the fields of rowToEvent plus the hash before it.
    t.equal(catalogue.checkLine({ ...event, prevHash }), null, `position ${row.position} as an export line`)
    prevHash = row.hash
  }

  // The same log through the code of `paynotify export`, and through the admin NDJSON stream.
  const exported = [...exportLines(store.sqlite, resolveExportRange(store.sqlite, {}))].map(line => JSON.parse(line) as Record<string, unknown>)
  t.equal(exported.length, rows.length)
  t.same(exported.map(line => catalogue.checkLine(line)).filter(error => error !== null), [], 'every exported line validates')
  t.ok(exported.every(line => typeof line.prevHash === 'string'), 'export writes prevHash on every line')
  const stream = await app.inject({ method: 'GET', url: '/admin/events', headers: { ...adminAuth, accept: 'application/x-ndjson' } })
  const streamed = stream.body.split('\n').filter(line => line !== '').map(line => JSON.parse(line) as Record<string, unknown>)
  t.equal(streamed.length, rows.length)
  t.same(streamed.map(line => catalogue.checkLine(line)).filter(error => error !== null), [], 'every admin-stream line validates')
})
