import t from 'tap'
import type { ServiceStore } from '../../src/store.js'
import { adminAuth, buildTestApp, formHeaders, merchantAuth, signedForm, testEachWriter, testSecrets } from '../helpers.js'

const countEvents = (store: ServiceStore): number => (store.sqlite.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n

t.test('401 without the merchant token, with a wrong one, or with the admin token', async t => {
  const { app, store } = await buildTestApp(t)
  const payload = { order_id: 'M-1', amount: '10' }
  const cases: Array<[string, Record<string, string>]> = [
    ['no header', {}],
    ['wrong token', { authorization: 'Bearer merchant-test-token-0123456788' }],
    ['admin token', adminAuth],
    ['token without Bearer', { authorization: testSecrets.merchantToken }],
    ['Basic scheme', { authorization: `Basic ${testSecrets.merchantToken}` }],
    ['token with a suffix', { authorization: `Bearer ${testSecrets.merchantToken}x` }],
    ['token prefix', { authorization: `Bearer ${testSecrets.merchantToken.slice(0, -1)}` }]
  ]
  for (const [name, headers] of cases) {
    const res = await app.inject({ method: 'POST', url: '/orders', headers, payload })
    t.equal(res.statusCode, 401, name)
    t.equal(res.json().error.code, 'unauthorized', name)
    t.equal(res.headers['www-authenticate'], 'Bearer realm="merchant"', name)
  }
  t.equal(countEvents(store), 0)
})

testEachWriter(t, '201 registers an order awaiting payment, 200 for the same again, 409 for another amount', async (t, writer) => {
  const { app, store } = await buildTestApp(t, { writer })
  const created = await app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload: { order_id: 'M-1', amount: '88.88' } })
  t.equal(created.statusCode, 201)
  t.match(created.json(), { orderId: 'M-1', status: 'awaiting_payment', expectedAmount: 8888, expectedCurrency: 'CNY', paidAmount: 0, anomalies: [], needsReview: false })
  const row = store.sqlite.prepare('SELECT type, stream_id, data, metadata FROM events').get() as { type: string, data: string, metadata: string }
  t.equal(row.type, 'OrderPlaced')
  t.same(JSON.parse(row.data), { orderId: 'M-1', amount: 8888, currency: 'CNY' })
  t.match(JSON.parse(row.metadata), { gateway: 'merchant' })

  const again = await app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload: { order_id: 'M-1', amount: '88.88', currency: 'CNY' } })
  t.equal(again.statusCode, 200)
  t.match(again.json(), { orderId: 'M-1', expectedAmount: 8888 })
  t.equal(countEvents(store), 1, 'the same registration appends nothing')

  for (const [name, payload] of [['another amount', { order_id: 'M-1', amount: '88.80' }], ['another currency', { order_id: 'M-1', amount: '88.88', currency: 'USD' }]] as const) {
    const conflict = await app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload })
    t.equal(conflict.statusCode, 409, name)
    t.equal(conflict.json().error.code, 'order_conflict', name)
  }
  t.equal(countEvents(store), 1)
  t.match((await app.inject({ url: '/admin/orders/M-1', headers: adminAuth })).json(), { expectedAmount: 8888, expectedCurrency: 'CNY' })
})

testEachWriter(t, 'concurrent registrations of one order: one 201, the same again 200, another amount 409', async (t, writer) => {
  const { app, store } = await buildTestApp(t, { writer })
  const amounts = ['20', '10', '20', '10', '20']
  const responses = await Promise.all(amounts.map(async amount =>
    await app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload: { order_id: 'RACE', amount } })))
  const winner = responses.find(r => r.statusCode === 201)
  t.equal(responses.filter(r => r.statusCode === 201).length, 1, 'exactly one registration is created')
  const expected = winner!.json().expectedAmount as number
  for (const [i, res] of responses.entries()) {
    const same = Number(amounts[i]) * 100 === expected
    if (res !== winner) t.equal(res.statusCode, same ? 200 : 409, `amount ${amounts[i]} after ${expected / 100} was registered`)
  }
  t.equal(countEvents(store), 1, 'one OrderPlaced in the log')
  t.match((await app.inject({ url: '/admin/orders/RACE', headers: adminAuth })).json(), { expectedAmount: expected, duplicateCount: 0 })
})

t.test('form bodies as well as JSON, and the currency exponent applies', async t => {
  const { app } = await buildTestApp(t)
  const form = await app.inject({ method: 'POST', url: '/orders', headers: { ...merchantAuth, ...formHeaders }, payload: 'order_id=F-1&amount=1000&currency=JPY' })
  t.equal(form.statusCode, 201)
  t.match(form.json(), { orderId: 'F-1', expectedAmount: 1000, expectedCurrency: 'JPY' })
  const json = await app.inject({ method: 'POST', url: '/orders', headers: { ...merchantAuth, 'content-type': 'application/json' }, payload: JSON.stringify({ order_id: 'J-1', amount: '1.234', currency: 'KWD' }) })
  t.equal(json.statusCode, 201)
  t.match(json.json(), { expectedAmount: 1234, expectedCurrency: 'KWD' })
})

t.test('400 for a malformed registration, naming the field; nothing appended', async t => {
  const { app, store } = await buildTestApp(t)
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['missing order_id', { amount: '1' }, /^order_id: is required$/],
    ['bad order_id', { order_id: 'a b', amount: '1' }, /^order_id: must match pattern/],
    ['long order_id', { order_id: 'x'.repeat(65), amount: '1' }, /^order_id: /],
    ['missing amount', { order_id: 'X' }, /^amount: is required$/],
    ['too many decimals', { order_id: 'X', amount: '1.001' }, /^amount: CNY allows at most 2/],
    ['negative amount', { order_id: 'X', amount: '-5' }, /^amount: /],
    ['exponent', { order_id: 'X', amount: '1e2' }, /^amount: /],
    ['unknown currency', { order_id: 'X', amount: '1', currency: 'ABC' }, /^currency: /]
  ]
  for (const [name, payload, message] of cases) {
    const res = await app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload })
    t.equal(res.statusCode, 400, name)
    t.equal(res.json().error.code, 'malformed', name)
    t.match(res.json().error.message, message, name)
  }
  const text = await app.inject({ method: 'POST', url: '/orders', headers: { ...merchantAuth, 'content-type': 'text/plain' }, payload: 'order_id=X' })
  t.equal(text.statusCode, 400)
  t.equal(text.json().error.message, 'body: must be object')
  const xml = await app.inject({ method: 'POST', url: '/orders', headers: { ...merchantAuth, 'content-type': 'application/xml' }, payload: '<order/>' })
  t.equal(xml.statusCode, 415)
  t.equal(countEvents(store), 0)
})

t.test('a JSON number as amount is refused (400): amounts are decimal strings in major units', async t => {
  const { app, store } = await buildTestApp(t)
  for (const amount of [8888, 88.88, 0]) {
    const res = await app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload: { order_id: 'N-1', amount } })
    t.equal(res.statusCode, 400, `amount ${amount}`)
    t.same(res.json().error, { code: 'malformed', message: 'amount: must be a decimal string in major units such as "88.88" (a JSON number is refused: 8888 would be read as 8888.00, not 88.88)' })
  }
  t.equal(countEvents(store), 0, 'nothing registered')
  const string = await app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload: { order_id: 'N-1', amount: '88.88' } })
  t.equal(string.statusCode, 201)
  t.equal(string.json().expectedAmount, 8888, '"88.88" is 8888 minor units')
})

t.test('an unknown field is refused (400 naming it), so a misspelt currency is not replaced by the default', async t => {
  const { app, store } = await buildTestApp(t)
  const json = await app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload: { order_id: 'U-1', amount: '10.00', currncy: 'USD' } })
  t.equal(json.statusCode, 400)
  t.same(json.json().error, { code: 'malformed', message: 'currncy: unknown field' })
  const form = await app.inject({ method: 'POST', url: '/orders', headers: { ...merchantAuth, ...formHeaders }, payload: 'order_id=U-1&amount=10.00&amount_minor=1000' })
  t.equal(form.statusCode, 400)
  t.same(form.json().error, { code: 'malformed', message: 'amount_minor: unknown field' })
  const long = await app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload: { order_id: 'U-1', amount: '10.00', ['\u0007'.repeat(2) + 'x'.repeat(200)]: 1 } })
  t.equal(long.statusCode, 400)
  t.same(long.json().error.message, `??${'x'.repeat(62)}: unknown field`, 'the name is shown short and printable')
  t.equal(countEvents(store), 0)
})

testEachWriter(t, 'callbacks are checked against the registered order', async (t, writer) => {
  const { app } = await buildTestApp(t, { writer })
  const register = async (orderId: string, amount: string): Promise<void> => {
    t.equal((await app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload: { order_id: orderId, amount } })).statusCode, 201)
  }
  const pay = async (orderId: string, amount: string, currency = 'CNY'): Promise<void> => {
    const res = await app.inject({ method: 'POST', url: '/notify/generic', headers: formHeaders, payload: signedForm({ order_id: orderId, amount, status: '1', currency }) })
    t.equal(res.body, 'success')
  }
  const view = async (orderId: string) => (await app.inject({ url: `/admin/orders/${orderId}`, headers: adminAuth })).json()

  await pay('early', '5')
  await register('ok', '100')
  await pay('ok', '100')
  t.match(await view('ok'), { status: 'paid', anomalies: [], needsReview: false })
  await register('short', '100')
  await pay('short', '1')
  t.match(await view('short'), { status: 'paid', anomalies: ['amount_mismatch'], needsReview: true, expectedAmount: 10000, paidAmount: 100 })
  await register('usd', '100')
  await pay('usd', '100', 'USD')
  t.match(await view('usd'), { anomalies: ['currency_mismatch'] })
  await pay('stranger', '1')
  t.match(await view('stranger'), { anomalies: ['unknown_order'] })
  t.match(await view('early'), { anomalies: ['unknown_order'] }, 'paid before registrations began, re-derived')

  // Registering an order the gateway already reported clears unknown_order.
  t.equal((await app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload: { order_id: 'stranger', amount: '1' } })).statusCode, 201)
  t.match(await view('stranger'), { status: 'paid', anomalies: [], expectedAmount: 100 })
})
