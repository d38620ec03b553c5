import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { loadConfig } from '../../src/config.js'
import { maxStoredDeliveries } from '../../src/event-log/deliveries.js'
import { signGenericParams } from '../../src/gateways/generic.js'
import type { ServiceStore } from '../../src/store.js'
import { adminAuth, buildTestApp, formHeaders, signedForm, testEachWriter, testSecrets } from '../helpers.js'

const now = new Date('2026-05-01T12:00:00.000Z')
const nowSeconds = Math.floor(now.getTime() / 1000)
const clock = { deps: { now: () => now } }

const countEvents = (store: ServiceStore): number => (store.sqlite.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n

async function postForm (app: FastifyInstance, payload: string, headers: Record<string, string> = formHeaders): Promise<LightMyRequestResponse> {
  return await app.inject({ method: 'POST', url: '/notify/generic', headers, payload })
}

/** A signed JSON body: the same signing string as the form, over the values as strings. */
function signedJson (params: Record<string, string | number>): string {
  const asStrings = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, String(v)]))
  return JSON.stringify({ ...params, sign: signGenericParams(asStrings, testSecrets.genericSecret) })
}

interface Refusal { statusCode: number, code: string, message?: RegExp }

/** Asserts the refusal's status and JSON error, and that nothing was appended for it. */
async function expectRefused (t: Test, store: ServiceStore, send: () => Promise<LightMyRequestResponse>, want: Refusal, name: string): Promise<void> {
  const before = countEvents(store)
  const res = await send()
  t.equal(res.statusCode, want.statusCode, `${name}: status ${want.statusCode}`)
  t.match(res.headers['content-type'], /^application\/json/, `${name}: JSON error body`)
  const body = res.json() as { error: { code: string, message: string } }
  t.equal(body.error.code, want.code, `${name}: code ${want.code}`)
  if (want.message !== undefined) t.match(body.error.message, want.message, `${name}: message names the problem`)
  t.equal(countEvents(store), before, `${name}: no row added`)
}

testEachWriter(t, '200 success for a signed form callback, only once it is in the log', async (t, writer) => {
  const { app, store } = await buildTestApp(t, { ...clock, writer })
  const payload = signedForm({ order_id: 'A-1', amount: '88.88', status: '1' })
  const res = await postForm(app, payload)
  t.equal(res.statusCode, 200)
  t.equal(res.body, 'success')
  t.match(res.headers['content-type'], /^text\/plain/)
  t.equal(countEvents(store), 1)
  const row = store.sqlite.prepare('SELECT * FROM events').get() as { type: string, stream_id: string, data: string, metadata: string }
  t.equal(row.type, 'PaymentSucceeded')
  t.equal(row.stream_id, 'A-1')
  t.match(JSON.parse(row.data), { orderId: 'A-1', amount: 8888, currency: 'CNY', gateway: 'generic', gatewayStatus: '1' })
  const metadata = JSON.parse(row.metadata)
  t.match(metadata, { gateway: 'generic', deliveryId: /^sha256:[0-9a-f]{64}$/, receivedAt: now.toISOString(), requestId: String })
  t.same(metadata.raw, { body: payload, encoding: 'utf8', contentType: 'application/x-www-form-urlencoded', headers: {} }, 'the raw request is kept byte for byte')
  const order = await app.inject({ url: '/admin/orders/A-1', headers: adminAuth })
  t.match(order.json(), { status: 'paid', paidAmount: 8888, currency: 'CNY', gateway: 'generic', duplicateCount: 0 })
})

testEachWriter(t, '200 success for JSON bodies, with string or number values', async (t, writer) => {
  const { app, store } = await buildTestApp(t, { ...clock, writer })
  const strings = await postForm(app, signedJson({ order_id: 'J-1', amount: '100', status: 'paid', notify_id: 'n-1', trade_no: 'T-9' }), { 'content-type': 'application/json' })
  t.equal(strings.statusCode, 200)
  t.equal(strings.body, 'success')
  t.match(strings.headers['content-type'], /^text\/plain/)
  const numbers = await postForm(app, signedJson({ order_id: 'J-2', amount: 5, status: 1, timestamp: nowSeconds }), { 'content-type': 'application/json; charset=utf-8' })
  t.equal(numbers.statusCode, 200)
  t.equal(countEvents(store), 2)
  const j1 = (await app.inject({ url: '/admin/orders/J-1', headers: adminAuth })).json()
  t.match(j1, { status: 'paid', paidAmount: 10000, gatewayTradeNo: 'T-9' })
  const j2 = (await app.inject({ url: '/admin/orders/J-2', headers: adminAuth })).json()
  t.match(j2, { status: 'paid', paidAmount: 500 })
})

testEachWriter(t, 'every status name and code the seed uses', async (t, writer) => {
  const { app } = await buildTestApp(t, { ...clock, writer })
  const cases: Array<[string, string]> = [
    ['0', 'pending'], ['pending', 'pending'], ['1', 'paid'], ['paid', 'paid'], ['success', 'paid'],
    ['2', 'failed'], ['failed', 'failed'], ['4', 'closed'], ['closed', 'closed']
  ]
  for (const [status, expected] of cases) {
    const orderId = `S-${status}`
    t.equal((await postForm(app, signedForm({ order_id: orderId, amount: '1', status }))).statusCode, 200)
    t.equal((await app.inject({ url: `/admin/orders/${orderId}`, headers: adminAuth })).json().status, expected, `status ${status}`)
  }
  for (const status of ['3', 'refunded']) {
    const orderId = `R-${status}`
    await postForm(app, signedForm({ order_id: orderId, amount: '1', status: '1' }))
    t.equal((await postForm(app, signedForm({ order_id: orderId, amount: '1', status }))).statusCode, 200)
    t.match((await app.inject({ url: `/admin/orders/${orderId}`, headers: adminAuth })).json(), { status: 'refunded', refundedAmount: 100 }, `status ${status}`)
  }
})

testEachWriter(t, 'a repeated delivery is acked like the original and counted as a duplicate', async (t, writer) => {
  const { app, store } = await buildTestApp(t, { ...clock, writer })
  const payload = signedForm({ order_id: 'R-1', amount: '10', status: '1', notify_id: 'abc' })
  for (let i = 0; i < 3; i++) {
    const res = await postForm(app, payload)
    t.equal(res.statusCode, 200)
    t.equal(res.body, 'success')
  }
  t.equal(countEvents(store), 3, 'every authenticated delivery is kept')
  t.match((await app.inject({ url: '/admin/orders/R-1', headers: adminAuth })).json(), { status: 'paid', paidAmount: 1000, duplicateCount: 2 })
})

t.test('401 for a bad, missing or stale signature', async t => {
  const { app, store } = await buildTestApp(t, clock)
  const params = { order_id: 'SIG-1', amount: '10', status: '1' }
  const refuse = async (payload: string, message: RegExp, name: string): Promise<void> =>
    await expectRefused(t, store, async () => await postForm(app, payload), { statusCode: 401, code: 'bad_signature', message }, name)

  await refuse(signedForm(params, 'another-secret-0123456789'), /sign does not match/, 'wrong secret')
  await refuse(new URLSearchParams(params).toString(), /sign is missing/, 'no sign')
  await refuse(new URLSearchParams({ ...params, sign: '' }).toString(), /sign is missing/, 'empty sign')
  await refuse(new URLSearchParams({ ...params, sign: 'zz' }).toString(), /64 hex/, 'sign not hex')
  const tampered = signedForm(params).replace('amount=10', 'amount=1000')
  await refuse(tampered, /sign does not match/, 'amount changed after signing')
  const extra = signedForm(params) + '&trade_no=T1'
  await refuse(extra, /sign does not match/, 'a field added after signing')
  await refuse(signedJson(params), /sign is missing/, 'a JSON body sent as a form has no sign field')

  // ±300 s around the service clock, both directions; seconds or milliseconds.
  for (const [offset, name] of [[301, 'from the future'], [-301, 'stale'], [-86400, 'a day old']] as const) {
    await refuse(signedForm({ ...params, timestamp: String(nowSeconds + offset) }), /outside the 300 s window/, `timestamp ${name} (${offset} s)`)
  }
  await refuse(signedForm({ ...params, timestamp: String((nowSeconds - 301) * 1000) }), /outside the 300 s window/, 'stale timestamp in milliseconds')
  await refuse(signedForm({ ...params, timestamp: 'yesterday' }), /timestamp must be Unix seconds/, 'timestamp not a number')
  t.equal(countEvents(store), 0)

  for (const offset of [300, -300, 0]) {
    const res = await postForm(app, signedForm({ ...params, timestamp: String(nowSeconds + offset), notify_id: `ok${offset}` }))
    t.equal(res.statusCode, 200, `timestamp ${offset} s is within the window`)
  }
  t.equal((await postForm(app, signedForm({ ...params, timestamp: String(nowSeconds * 1000 - 299_000), notify_id: 'ms' }))).statusCode, 200, 'milliseconds within the window')
  t.equal(countEvents(store), 4)
})

t.test('400 for malformed fields, naming the field', async t => {
  const { app, store } = await buildTestApp(t, clock)
  const base = { order_id: 'M-1', amount: '10.00', status: '1' }
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['order_id missing', { amount: '1', status: '1' }, /^order_id: is required/],
    ['order_id with a space', { ...base, order_id: 'a b' }, /^order_id: must be 1-64 characters/],
    ['order_id with a slash', { ...base, order_id: '../x' }, /^order_id: /],
    ['order_id non-ASCII', { ...base, order_id: '订单1' }, /^order_id: /],
    ['order_id of 65 characters', { ...base, order_id: 'x'.repeat(65) }, /^order_id: /],
    ['amount missing', { order_id: 'M-1', status: '1' }, /^amount: is required/],
    ['amount with 3 decimals in CNY', { ...base, amount: '88.888' }, /^amount: CNY allows at most 2 decimal places/],
    ['amount with decimals in JPY', { ...base, amount: '1.5', currency: 'JPY' }, /^amount: JPY allows at most 0 decimal places/],
    ['amount with 4 decimals in KWD', { ...base, amount: '1.2345', currency: 'KWD' }, /^amount: KWD allows at most 3/],
    ['negative amount', { ...base, amount: '-1' }, /^amount: must be a non-negative decimal/],
    ['amount with an exponent', { ...base, amount: '1e3' }, /^amount: /],
    ['amount with an upper-case exponent', { ...base, amount: '1E3' }, /^amount: /],
    ['amount NaN', { ...base, amount: 'NaN' }, /^amount: /],
    ['amount Infinity', { ...base, amount: 'Infinity' }, /^amount: /],
    ['amount in hex', { ...base, amount: '0x10' }, /^amount: /],
    ['amount with a leading zero', { ...base, amount: '010' }, /^amount: /],
    ['amount of 20 digits', { ...base, amount: '9'.repeat(20) }, /^amount: /],
    ['amount past the safe integer range', { ...base, amount: '999999999999999.99' }, /^amount: is too large/],
    ['amount with a thousands separator', { ...base, amount: '1,000' }, /^amount: /],
    ['status missing', { order_id: 'M-1', amount: '1' }, /^status: is required/],
    ['unknown status', { ...base, status: '9' }, /^status: must be one of/],
    ['unknown status name', { ...base, status: 'PAID' }, /^status: must be one of/],
    ['status of an inherited property name', { ...base, status: 'constructor' }, /^status: must be one of/],
    ['currency not ISO 4217', { ...base, currency: 'XYZ' }, /^currency: /],
    ['currency lower case', { ...base, currency: 'cny' }, /^currency: /],
    ['notify_id with a space', { ...base, notify_id: 'a b' }, /^notify_id: /],
    ['trade_no too long', { ...base, trade_no: 'T'.repeat(129) }, /^trade_no: /]
  ]
  for (const [name, params, message] of cases) {
    await expectRefused(t, store, async () => await postForm(app, signedForm(params)), { statusCode: 400, code: 'malformed', message }, name)
  }
  await expectRefused(t, store, async () => await postForm(app, signedForm(base) + '&amount=1'), { statusCode: 400, code: 'malformed', message: /^amount: is repeated/ }, 'repeated field')
  await expectRefused(t, store, async () => await postForm(app, 'order_id=%E0%A4%A&sign=00'), { statusCode: 400, code: 'malformed', message: /percent-encoding/ }, 'bad percent-encoding')
  const json = { 'content-type': 'application/json' }
  await expectRefused(t, store, async () => await postForm(app, '{"order_id":', json), { statusCode: 400, code: 'malformed', message: /^body: is not valid JSON/ }, 'broken JSON')
  await expectRefused(t, store, async () => await postForm(app, '[1,2]', json), { statusCode: 400, code: 'malformed', message: /^body: must be a JSON object/ }, 'JSON array')
  await expectRefused(t, store, async () => await postForm(app, JSON.stringify({ ...base, amount: { v: 1 } }), json), { statusCode: 400, code: 'malformed', message: /^amount: must be a string or a number/ }, 'nested JSON value')
  await expectRefused(t, store, async () => await postForm(app, signedJson({ ...base, amount: 1e21 }), json), { statusCode: 400, code: 'malformed', message: /^amount: / }, 'a JSON number printed with an exponent')
  await expectRefused(t, store, async () => await app.inject({ method: 'POST', url: '/notify/generic', headers: formHeaders, payload: Buffer.from([0x6f, 0x3d, 0xff, 0xfe]) }),
    { statusCode: 400, code: 'malformed' }, 'not UTF-8')
  t.equal(countEvents(store), 0)
})

t.test('404 for an unknown gateway, 415 for other content types', async t => {
  const { app, store } = await buildTestApp(t, clock)
  const payload = signedForm({ order_id: 'C-1', amount: '1', status: '1' })
  await expectRefused(t, store, async () => await app.inject({ method: 'POST', url: '/notify/nope', headers: formHeaders, payload }),
    { statusCode: 404, code: 'unknown_gateway', message: /nope/ }, 'unknown gateway')
  await expectRefused(t, store, async () => await app.inject({ method: 'POST', url: '/notify/Not-A-Name!', headers: formHeaders, payload }),
    { statusCode: 404, code: 'unknown_gateway', message: /^no gateway is configured$/ }, 'a name no gateway can have is not echoed')
  await expectRefused(t, store, async () => await app.inject({ method: 'POST', url: '/notify/__proto__', headers: formHeaders, payload }),
    { statusCode: 404, code: 'unknown_gateway' }, '__proto__')
  for (const contentType of ['text/plain', 'application/xml', 'multipart/form-data; boundary=x', 'application/octet-stream']) {
    await expectRefused(t, store, async () => await postForm(app, payload, { 'content-type': contentType }),
      { statusCode: 415, code: 'unsupported_media_type' }, contentType)
  }
  await expectRefused(t, store, async () => await app.inject({ method: 'POST', url: '/notify/generic', payload, headers: { 'content-type': '' } }),
    { statusCode: 415, code: 'unsupported_media_type' }, 'empty content-type')
  await expectRefused(t, store, async () => await app.inject({ method: 'POST', url: '/notify/generic', payload: Buffer.from(payload) }),
    { statusCode: 415, code: 'unsupported_media_type' }, 'missing content-type')
  await expectRefused(t, store, async () => await app.inject({ method: 'POST', url: '/notify/generic' }),
    { statusCode: 415, code: 'unsupported_media_type' }, 'no body at all')
})

t.test('413 over PAYNOTIFY_BODY_LIMIT', async t => {
  const { app, store } = await buildTestApp(t, { ...clock, env: { PAYNOTIFY_BODY_LIMIT: '2048' } })
  const params = { order_id: 'B-1', amount: '1', status: '1' }
  const big = signedForm({ ...params, note: 'x'.repeat(3000) })
  t.ok(Buffer.byteLength(big) > 2048)
  await expectRefused(t, store, async () => await postForm(app, big), { statusCode: 413, code: 'body_too_large' }, 'form over the limit')
  await expectRefused(t, store, async () => await postForm(app, signedJson({ ...params, note: 'x'.repeat(3000) }), { 'content-type': 'application/json' }),
    { statusCode: 413, code: 'body_too_large' }, 'JSON over the limit')
  const fits = signedForm({ ...params, note: 'x'.repeat(1500) })
  t.ok(Buffer.byteLength(fits) <= 2048)
  t.equal((await postForm(app, fits)).statusCode, 200, 'a body under the limit is accepted')
})

t.test('each gateway takes at most its own body limit (generic 8 KiB), and never more than PAYNOTIFY_BODY_LIMIT', async t => {
  const { app, store } = await buildTestApp(t, clock)
  const params = { order_id: 'B-2', amount: '1', status: '1' }
  const over = signedForm({ ...params, note: 'x'.repeat(8192) })
  await expectRefused(t, store, async () => await postForm(app, over), { statusCode: 413, code: 'body_too_large' }, 'a generic body over 8 KiB, under the 64 KiB default')
  await expectRefused(t, store, async () => await postForm(app, signedJson({ ...params, note: 'x'.repeat(8192) }), { 'content-type': 'application/json' }),
    { statusCode: 413, code: 'body_too_large' }, 'the same as JSON')
  const fits = signedForm({ ...params, note: 'x'.repeat(7000) })
  t.ok(Buffer.byteLength(fits) <= 8192)
  t.equal((await postForm(app, fits)).statusCode, 200, 'a generic body under 8 KiB is accepted')
  // An unknown gateway is a 404 before its body is read, whatever its size or type.
  await expectRefused(t, store, async () => await app.inject({ method: 'POST', url: '/notify/nope', headers: { 'content-type': 'text/plain' }, payload: 'x'.repeat(100_000) }),
    { statusCode: 404, code: 'unknown_gateway' }, 'a large body to an unknown gateway')
  const openapi = (await app.inject({ url: '/openapi.json' })).json() as { paths: Record<string, unknown> }
  t.same(Object.keys(openapi.paths).filter(path => path.startsWith('/notify/')), ['/notify/{gateway}'], 'one documented notify route')
})

t.test('a value holding & and name= cannot move fields into or out of the signed set (issue 10 §2)', async t => {
  const { app, store } = await buildTestApp(t, clock)
  const stale = String(nowSeconds - 3600)
  // The captured callback: signed with subject=Order and a timestamp one hour old.
  const sign = signGenericParams({ order_id: 'AMB-1', amount: '10.00', status: '1', subject: 'Order', timestamp: stale }, testSecrets.genericSecret)
  await expectRefused(t, store, async () => await postForm(app, new URLSearchParams({ order_id: 'AMB-1', amount: '10.00', status: '1', subject: 'Order', timestamp: stale, sign }).toString()),
    { statusCode: 401, code: 'bad_signature', message: /outside the 300 s window/ }, 'as captured: stale')
  // The same sign, the timestamp moved into subject's value: the signing string is unchanged.
  const smuggled = new URLSearchParams({ order_id: 'AMB-1', amount: '10.00', status: '1', subject: `Order&timestamp=${stale}`, sign }).toString()
  t.match(smuggled, /subject=Order%26timestamp%3D\d+/)
  await expectRefused(t, store, async () => await postForm(app, smuggled), { statusCode: 400, code: 'malformed', message: /^subject: must not contain & followed by a name and =/ }, 'timestamp hidden in subject')
  t.equal((await app.inject({ url: '/admin/orders/AMB-1', headers: adminAuth })).statusCode, 404, 'the order was not paid')

  // A new delivery id: notify_time moved into notify_id.
  const signed = { order_id: 'AMB-2', amount: '10.00', status: '1', notify_id: 'n-1', notify_time: '20260501' }
  t.equal((await postForm(app, signedForm(signed))).statusCode, 200, 'the genuine callback')
  const notifySign = signGenericParams(signed, testSecrets.genericSecret)
  const renamed = new URLSearchParams({ order_id: 'AMB-2', amount: '10.00', status: '1', notify_id: 'n-1&notify_time=20260501', sign: notifySign }).toString()
  await expectRefused(t, store, async () => await postForm(app, renamed), { statusCode: 400, code: 'malformed', message: /^notify_id: / }, 'notify_time hidden in notify_id')
  // The same moves in a JSON body.
  await expectRefused(t, store, async () => await postForm(app, JSON.stringify({ order_id: 'AMB-2', amount: '10.00', status: '1', notify_id: 'n-1&notify_time=20260501', sign: notifySign }), { 'content-type': 'application/json' }),
    { statusCode: 400, code: 'malformed', message: /^notify_id: / }, 'the same in JSON')
  await expectRefused(t, store, async () => await postForm(app, JSON.stringify({ 'order_id&x': '1', sign: notifySign }), { 'content-type': 'application/json' }),
    { statusCode: 400, code: 'malformed', message: /^order_id&x: is not a name a signature can cover/ }, 'a name holding &')

  // Text with & or = in it is still accepted: only `&name=` is ambiguous.
  t.equal((await postForm(app, signedForm({ order_id: 'AMB-3', amount: '1', status: '1', subject: 'Tom & Jerry', note: 'a=b' }))).statusCode, 200)
  // An empty parameter is an absent one: it changes nothing and signs alike.
  const withEmpty = new URLSearchParams({ order_id: 'AMB-4', amount: '1', status: '1', currency: '', sign: signGenericParams({ order_id: 'AMB-4', amount: '1', status: '1' }, testSecrets.genericSecret) }).toString()
  t.equal((await postForm(app, withEmpty)).statusCode, 200)
  t.match((await app.inject({ url: '/admin/orders/AMB-4', headers: adminAuth })).json(), { status: 'paid', currency: 'CNY' })
})

t.test('a JSON body with a repeated key is refused, however the signature was made', async t => {
  const { app, store } = await buildTestApp(t, clock)
  const json = { 'content-type': 'application/json' }
  const sign = signGenericParams({ order_id: 'DUP-1', amount: '10.00', status: '1' }, testSecrets.genericSecret)
  const body = `{"order_id":"DUP-1","amount":"999.00","amount":"10.00","status":"1","sign":"${sign}"}`
  await expectRefused(t, store, async () => await postForm(app, body, json), { statusCode: 400, code: 'malformed', message: /^amount: is repeated/ }, 'two amounts')
  await expectRefused(t, store, async () => await postForm(app, body.replace('"amount":"10.00"', '"\\u0061mount":"10.00"'), json),
    { statusCode: 400, code: 'malformed', message: /^amount: is repeated/ }, 'the second spelled with an escape')
  t.equal((await postForm(app, body.replace('"amount":"999.00",', ''), json)).statusCode, 200, 'the same body without the repeat')
})

t.test('x-paynotify-replay-of is refused unless the service takes replays, and is a safe integer', async t => {
  t.equal(loadConfig({}).acceptReplays, false, 'replays are off by default')
  t.equal(loadConfig({ PAYNOTIFY_ACCEPT_REPLAYS: '1' }).acceptReplays, true)
  t.throws(() => loadConfig({ PAYNOTIFY_ACCEPT_REPLAYS: 'yes' }), /PAYNOTIFY_ACCEPT_REPLAYS must be one of 0, 1, false, true/)

  const { app, store } = await buildTestApp(t, clock)
  const replayed = async (): Promise<LightMyRequestResponse> => await postForm(app, signedForm({ order_id: 'RP-1', amount: '1', status: '1' }), { ...formHeaders, 'x-paynotify-replay-of': '3' })
  await expectRefused(t, store, replayed, { statusCode: 403, code: 'replays_not_accepted', message: /PAYNOTIFY_ACCEPT_REPLAYS=1/ }, 'a replay label on a service that takes none')

  const target = await buildTestApp(t, { ...clock, env: { PAYNOTIFY_ACCEPT_REPLAYS: '1' } })
  const post = async (orderId: string, position: string): Promise<LightMyRequestResponse> =>
    await target.app.inject({ method: 'POST', url: '/notify/generic', headers: { ...formHeaders, 'x-paynotify-replay-of': position }, payload: signedForm({ order_id: orderId, amount: '1', status: '1' }) })
  for (const position of ['9999999999999999', '9007199254740992', '0', '-1', '1.5', '1e3', '']) {
    await expectRefused(t, target.store, async () => await post('RP-2', position), { statusCode: 400, code: 'malformed', message: /^x-paynotify-replay-of: must be a log position/ }, `replay-of ${JSON.stringify(position)}`)
  }
  for (const [orderId, position] of [['RP-3', '3'], ['RP-4', '9007199254740991']] as const) {
    t.equal((await post(orderId, position)).statusCode, 200, `replay-of ${position}`)
    const row = target.store.sqlite.prepare('SELECT metadata FROM events WHERE stream_id = ?').get(orderId) as { metadata: string }
    t.equal(JSON.parse(row.metadata).replayOf, Number(position), 'kept exactly')
  }
})

t.test('503 when the store cannot commit (database full), and nothing is acked or kept', async t => {
  const { app, store } = await buildTestApp(t, clock)
  t.equal((await postForm(app, signedForm({ order_id: 'F-0', amount: '1', status: '1' }))).statusCode, 200)
  // No page may be added from now on: the callbacks fill what free space is left, then the store is full.
  const pages = store.sqlite.pragma('page_count', { simple: true }) as number
  store.sqlite.pragma(`max_page_count = ${pages}`)
  let accepted = 1
  let full: LightMyRequestResponse | undefined
  let failing = ''
  for (let i = 1; i <= 400 && full === undefined; i++) {
    const payload = signedForm({ order_id: `F-${i}`, amount: '1', status: '1', note: 'x'.repeat(500) })
    const before = countEvents(store)
    const res = await postForm(app, payload)
    if (res.statusCode === 200) {
      accepted++
      t.equal(countEvents(store), before + 1)
    } else {
      full = res
      failing = payload
      t.equal(countEvents(store), before, 'the refused callback left no row')
    }
  }
  if (full === undefined) throw new Error('the database never filled up')
  t.equal(full.statusCode, 503)
  t.same(full.json(), { error: { code: 'store_unavailable', message: 'the event store could not commit; retry later' } })
  t.not(full.body, 'success')
  t.equal(countEvents(store), accepted, 'exactly the acked callbacks are in the log')
  const orders = (store.sqlite.prepare('SELECT count(*) AS n FROM orders').get() as { n: number }).n
  t.equal(orders, accepted, 'the projection rolled back with the log')

  const again = await postForm(app, failing)
  t.equal(again.statusCode, 503, 'still full: the gateway is told to retry')
  t.equal(countEvents(store), accepted)

  // Space again (an operator freed the disk): the gateway's retry succeeds.
  store.sqlite.pragma('max_page_count = 1073741823')
  const retry = await postForm(app, failing)
  t.equal(retry.statusCode, 200)
  t.equal(retry.body, 'success')
  t.equal(countEvents(store), accepted + 1)
  const ready = await app.inject({ url: '/readyz' })
  t.equal(ready.statusCode, 200)
})

testEachWriter(t, '100 concurrent identical deliveries: 100 acks, the first 32 stored, one fact, the rest counted, few transactions', async (t, writer) => {
  const { app, store } = await buildTestApp(t, { ...clock, writer })
  const payload = signedForm({ order_id: 'G-1', amount: '100', status: '1', trade_no: 'T-1' })
  const batchesBefore = store.eventLog.batches
  const responses = await Promise.all(Array.from({ length: 100 }, async () => await postForm(app, payload)))
  const batches = store.eventLog.batches - batchesBefore
  t.same(responses.map(r => `${r.statusCode} ${r.body}`), Array(100).fill('200 success'))
  t.equal(countEvents(store), maxStoredDeliveries)
  t.ok(batches <= 20, `committed in ${batches} transaction(s), far fewer than 100`)
  const order = (await app.inject({ url: '/admin/orders/G-1', headers: adminAuth })).json()
  t.match(order, { status: 'paid', paidAmount: 10000, duplicateCount: maxStoredDeliveries - 1, anomalies: [], gatewayTradeNo: 'T-1', version: maxStoredDeliveries })
  const timeline = (await app.inject({ url: '/admin/orders/G-1/events', headers: adminAuth })).json() as { events: Array<{ position: number, outcome: string, duplicateOf?: number }>, unstoredRepeats: number }
  const applied = timeline.events.filter(e => e.outcome === 'applied')
  t.equal(applied.length, 1, 'one applied fact')
  t.ok(timeline.events.filter(e => e.outcome === 'duplicate').every(e => e.duplicateOf === applied[0]!.position))
  t.equal(timeline.unstoredRepeats, 100 - maxStoredDeliveries, 'the repeats beyond the cap are counted')
})
