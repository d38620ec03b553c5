import { randomBytes } from 'node:crypto'
import t from 'tap'
import { Webhook } from 'standardwebhooks'
import { ConfigError, loadConfig } from '../../src/config.js'
import { createGatewayRegistry } from '../../src/gateways/registry.js'
import { createStandardWebhooksAdapter } from '../../src/gateways/standard-webhooks.js'
import { adminAuth, buildTestApp, eventCount, order, testSecrets, type TestApp } from '../helpers.js'

// The Standard Webhooks reference library is the independent signer (sign) and verifier (verify).
const secret = `whsec_${randomBytes(32).toString('base64')}`
const otherSecret = `whsec_${randomBytes(32).toString('base64')}`
const env = { PAYNOTIFY_STANDARD_SECRET: secret }

// The reference library reads the real clock, so the app does too; edges are checked ±100 s away from the window.
const nowDate = (offsetSeconds = 0): Date => new Date(Date.now() + offsetSeconds * 1000)

let seq = 0
function payload (type: string, data: Record<string, unknown>): string {
  return JSON.stringify({ type, timestamp: '2026-11-27T10:00:00.000Z', data: { amount: 8888, currency: 'CNY', transaction_id: `tx_${data.order_id as string}`, ...data } })
}

interface Signed { headers: Record<string, string>, body: string }

function signed (body: string, options: { id?: string, date?: Date, secret?: string } = {}): Signed {
  const id = options.id ?? `msg_${++seq}`
  const date = options.date ?? nowDate()
  const signature = new Webhook(options.secret ?? secret).sign(id, date, body)
  return { body, headers: { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(date.getTime() / 1000)), 'webhook-signature': signature } }
}

async function post (app: TestApp['app'], body: string, headers: Record<string, string | string[]>) {
  return await app.inject({ method: 'POST', url: '/notify/standard', headers: { 'content-type': 'application/json', ...headers }, payload: body })
}

function libraryVerdict (body: string, headers: Record<string, string>): 'accepted' | 'refused' {
  try {
    new Webhook(secret).verify(body, headers)
    return 'accepted'
  } catch {
    return 'refused'
  }
}

async function deliver (tt: Pick<typeof t, 'equal'>, test: TestApp, body: string): Promise<void> {
  const s = signed(body)
  const res = await post(test.app, s.body, s.headers)
  tt.equal(res.statusCode, 204, res.body)
}

t.test('a gateway with no secret configured answers 404', async t => {
  const test = await buildTestApp(t)
  const s = signed(payload('payment.succeeded', { order_id: 'N1' }))
  t.equal((await post(test.app, s.body, s.headers)).statusCode, 404)
  t.equal(eventCount(test), 0)
})

t.test('a valid webhook is acked 204 and folds to paid; a retry is acked and deduplicated', async t => {
  const test = await buildTestApp(t, { env })
  const s = signed(payload('payment.succeeded', { order_id: 'A1' }), { id: 'msg_A1' })
  t.equal(libraryVerdict(s.body, s.headers), 'accepted')
  const res = await post(test.app, s.body, s.headers)
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  t.match(await order(test.app, 'A1'), { status: 'paid', paidAmount: 8888, currency: 'CNY', gateway: 'standard', gatewayTradeNo: 'tx_A1', duplicateCount: 0 })

  // A retry keeps webhook-id and is signed again with the attempt's timestamp.
  const retry = signed(s.body, { id: 'msg_A1', date: nowDate(-30) })
  t.equal((await post(test.app, retry.body, retry.headers)).statusCode, 204)
  t.match(await order(test.app, 'A1'), { status: 'paid', paidAmount: 8888, duplicateCount: 1 })
  const timeline = (await test.app.inject({ url: '/admin/orders/A1/events', headers: adminAuth })).json()
  t.equal(timeline.events.length, 2)
  t.match(timeline.events[1], { outcome: 'duplicate', duplicateReason: 'delivery', duplicateOf: timeline.events[0].position })
  t.same(Object.keys(timeline.events[0].metadata.raw.headers).sort(), ['webhook-id', 'webhook-signature', 'webhook-timestamp'])
  t.match(timeline.events[0].metadata, { deliveryId: 'msg_A1', raw: { body: s.body } })
})

t.test('refused with 401 and nothing appended; the reference library refuses the same', async t => {
  const test = await buildTestApp(t, { env })
  const body = payload('payment.succeeded', { order_id: 'R1' })
  const good = signed(body)
  const without = (name: string): Record<string, string> => Object.fromEntries(Object.entries(good.headers).filter(([key]) => key !== name))
  const wrongSig = signed(body, { secret: otherSecret }).headers['webhook-signature']!
  const cases: Array<{ name: string, body: string, headers: Record<string, string> }> = [
    { name: 'tampered body', body: body.replace('8888', '1'), headers: good.headers },
    { name: 'wrong secret', body, headers: signed(body, { secret: otherSecret }).headers },
    { name: 'stale timestamp (400 s old)', body, headers: signed(body, { date: nowDate(-400) }).headers },
    { name: 'future timestamp (400 s ahead)', body, headers: signed(body, { date: nowDate(400) }).headers },
    { name: 'webhook-id changed', body, headers: { ...good.headers, 'webhook-id': 'msg_other' } },
    { name: 'webhook-timestamp changed', body, headers: { ...good.headers, 'webhook-timestamp': String(Number(good.headers['webhook-timestamp']) - 1) } },
    { name: 'missing webhook-id', body, headers: without('webhook-id') },
    { name: 'missing webhook-timestamp', body, headers: without('webhook-timestamp') },
    { name: 'missing webhook-signature', body, headers: without('webhook-signature') },
    { name: 'only a wrong v1', body, headers: { ...good.headers, 'webhook-signature': wrongSig } },
    { name: 'right signature under another scheme', body, headers: { ...good.headers, 'webhook-signature': good.headers['webhook-signature']!.replace('v1,', 'v2,') } }
  ]
  for (const c of cases) {
    const res = await post(test.app, c.body, c.headers)
    t.equal(res.statusCode, 401, c.name)
    t.equal(res.json().error.code, 'bad_signature', c.name)
    t.equal(libraryVerdict(c.body, c.headers), 'refused', `standardwebhooks refuses: ${c.name}`)
  }
  // Repeated headers arrive joined by ", " and are refused rather than guessed at.
  for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
    const res = await post(test.app, body, { ...good.headers, [name]: [good.headers[name]!, good.headers[name]!] })
    t.equal(res.statusCode, 401, `repeated ${name}`)
  }
  t.equal(eventCount(test), 0, 'nothing was appended')
  t.equal(await order(test.app, 'R1'), null)
})

t.test('any matching v1 in the list is accepted (secret rotation); v1a entries are skipped', async t => {
  const test = await buildTestApp(t, { env })
  const s = signed(payload('payment.succeeded', { order_id: 'K1' }))
  const wrong = signed(s.body, { id: s.headers['webhook-id'], secret: otherSecret }).headers['webhook-signature']!
  const list = `${wrong} v1a,${randomBytes(64).toString('base64')} ${s.headers['webhook-signature']!}`
  const headers = { ...s.headers, 'webhook-signature': list }
  t.equal(libraryVerdict(s.body, headers), 'accepted')
  t.equal((await post(test.app, s.body, headers)).statusCode, 204)
  t.match(await order(test.app, 'K1'), { status: 'paid' })
})

t.test('every payment type gives the right order state; amounts are integer minor units', async t => {
  const test = await buildTestApp(t, { env })
  await deliver(t, test, payload('payment.pending', { order_id: 'P1' }))
  t.match(await order(test.app, 'P1'), { status: 'pending' })
  await deliver(t, test, payload('payment.failed', { order_id: 'F1' }))
  t.match(await order(test.app, 'F1'), { status: 'failed', paidAmount: 0 })
  await deliver(t, test, payload('payment.closed', { order_id: 'C1' }))
  t.match(await order(test.app, 'C1'), { status: 'closed' })

  await deliver(t, test, payload('payment.succeeded', { order_id: 'U1' }))
  await deliver(t, test, payload('payment.failed', { order_id: 'U1' }))
  t.match(await order(test.app, 'U1'), { status: 'paid', paidAmount: 8888 }, 'a late failure never downgrades paid')

  // Two partial refunds with their own ids, one reported twice: 1000 + 2000 refunded.
  await deliver(t, test, payload('payment.succeeded', { order_id: 'RF1' }))
  await deliver(t, test, payload('payment.refunded', { order_id: 'RF1', amount: 1000, refund_id: 'rf_1' }))
  await deliver(t, test, payload('payment.refunded', { order_id: 'RF1', amount: 1000, refund_id: 'rf_1' }))
  await deliver(t, test, payload('payment.refunded', { order_id: 'RF1', amount: 2000, refund_id: 'rf_2' }))
  t.match(await order(test.app, 'RF1'), { status: 'partially_refunded', paidAmount: 8888, refundedAmount: 3000, duplicateCount: 1 })
  await deliver(t, test, payload('payment.refunded', { order_id: 'RF1', amount: 5888, refund_id: 'rf_3' }))
  t.match(await order(test.app, 'RF1'), { status: 'refunded', refundedAmount: 8888, anomalies: [] })

  await deliver(t, test, payload('payment.succeeded', { order_id: 'JPY1', amount: 5000, currency: 'JPY' }))
  t.match(await order(test.app, 'JPY1'), { paidAmount: 5000, currency: 'JPY' }, 'JPY is not scaled')
  await deliver(t, test, payload('payment.succeeded', { order_id: 'usd1', amount: 1999, currency: 'usd' }))
  t.match(await order(test.app, 'usd1'), { paidAmount: 1999, currency: 'USD' })

  const before = eventCount(test)
  await deliver(t, test, payload('subscription.renewed', { order_id: 'X1' }))
  t.equal(eventCount(test), before, 'another event type is acked and not stored')
})

t.test('a signed payload with a malformed field is a 400 naming it, with nothing appended', async t => {
  const test = await buildTestApp(t, { env })
  const cases: Array<[string, string]> = [
    [payload('payment.succeeded', { order_id: 'M1', amount: '88.88' }), 'data.amount'],
    [payload('payment.succeeded', { order_id: 'M1', amount: 88.5 }), 'data.amount'],
    [payload('payment.succeeded', { order_id: 'M1', amount: -1 }), 'data.amount'],
    [payload('payment.succeeded', { order_id: 'M1', currency: 'XYZ1' }), 'data.currency'],
    [payload('payment.succeeded', { order_id: 'M 1' }), 'data.order_id'],
    [payload('payment.succeeded', { order_id: 'M1', transaction_id: null }), 'data.transaction_id'],
    [JSON.stringify({ type: 'payment.succeeded' }), 'data'],
    [JSON.stringify({ data: {} }), 'type'],
    ['{"type":', 'body']
  ]
  for (const [body, field] of cases) {
    const s = signed(body)
    const res = await post(test.app, s.body, s.headers)
    t.equal(res.statusCode, 400, body)
    t.match(res.json().error, { code: 'malformed', message: new RegExp(`^${field.replace('.', '\\.')}: `) }, body)
  }
  t.equal(eventCount(test), 0)
})

t.test('the secret must be whsec_ base64 of at least 24 bytes; the registry enables standard only with it', async t => {
  for (const bad of ['whsec_' + randomBytes(16).toString('base64'), 'whsec_not base64!', 'whsec_', randomBytes(32).toString('base64')]) {
    let error: unknown
    try {
      createStandardWebhooksAdapter({ secret: bad })
    } catch (e) {
      error = e
    }
    t.ok(error instanceof ConfigError, 'a configuration error')
    t.match((error as Error).message, /PAYNOTIFY_STANDARD_SECRET/)
  }
  t.notOk(createGatewayRegistry(loadConfig({}), testSecrets).has('standard'))
  t.ok(createGatewayRegistry(loadConfig(env), testSecrets).has('standard'))
})
