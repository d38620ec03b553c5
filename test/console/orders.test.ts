import tap, { type Test } from 'tap'
import type { NewEvent } from '../../src/event-log/event-log.js'
import { csvCell, maxExportRows } from '../../src/console/order-export.js'
import { anomalyExplanations, formatMoney, formatTime } from '../../src/console/format.js'
import { Anomaly } from '../../src/orders/order-fold.js'
import { adminAuth, buildTestApp } from '../helpers.js'
import { getPage, signIn } from './console-helpers.js'
import { listedOrders, notify, register, TestClock, textOf } from './order-fixtures.js'

tap.test('money with the currency\'s exponent, times in UTC, a sentence for every anomaly', async t => {
  t.equal(formatMoney(8888, 'CNY'), '88.88 CNY')
  t.equal(formatMoney(500, 'JPY'), '500 JPY')
  t.equal(formatMoney(1234, 'KWD'), '1.234 KWD')
  t.equal(formatMoney(5, 'USD'), '0.05 USD')
  t.equal(formatMoney(42, null), '42 (minor units)')
  t.equal(formatTime('2026-06-01T10:00:00.123Z'), '2026-06-01 10:00:00 UTC')
  t.equal(formatTime(null), '—')
  const codes = Object.values(Anomaly)
  t.same(Object.keys(anomalyExplanations).sort(), [...codes].sort(), 'every anomaly code has its sentence, and nothing else')
  for (const code of codes) t.match(anomalyExplanations[code], /^[A-Z][^:]{20,}: (check|compare|retry) .{20,}\.$/, `${code}: what it means, then what to check`)
  t.equal(new Set(Object.values(anomalyExplanations)).size, codes.length, 'no two anomalies share a sentence')
})

tap.test('a CSV cell a spreadsheet would run as a formula is prefixed with \'', async t => {
  for (const formula of ['=1+2', '+1', '-1', '@SUM(A1)', '\tx', '\rx']) t.equal(csvCell(formula).replace(/^"/, '').slice(0, 2), `'${formula[0]!}`, JSON.stringify(formula))
  t.equal(csvCell('plain'), 'plain')
  t.equal(csvCell('a,"b"'), '"a,""b"""')
  t.equal(csvCell('=a,b'), '"\'=a,b"')
  t.equal(csvCell(null), '')
  t.equal(csvCell(12), '12')
})

/**
 * Four orders with known facts and times, plus `padding` registered orders
 * P0000… (for paging): A1 paid, A2 paid more than registered, A3 in JPY with
 * a formula for a transaction id, B1 pending.
 */
async function seed (t: Test, padding = 0): Promise<Awaited<ReturnType<typeof buildTestApp>> & { cookie: string }> {
  const clock = new TestClock()
  const built = await buildTestApp(t, { store: { clock: clock.now } })
  const { app, store } = built
  clock.set('2026-06-01T01:00:00.000Z')
  await register(app, 'A1', '88.88')
  await notify(app, { order_id: 'A1', amount: '88.88', status: '1', trade_no: 'T-A1', notify_id: 'dlv-A1' })
  clock.set('2026-06-02T01:00:00.000Z')
  await register(app, 'A2', '10.00')
  await notify(app, { order_id: 'A2', amount: '12.00', status: '1', trade_no: 'T-A2', notify_id: 'dlv-A2' })
  clock.set('2026-06-03T01:00:00.000Z')
  await register(app, 'A3', '500', 'JPY')
  await notify(app, { order_id: 'A3', amount: '500', currency: 'JPY', status: '1', trade_no: '=1+2', notify_id: '@SUM(A1)' })
  clock.set('2026-06-04T01:00:00.000Z')
  await register(app, 'B1', '1.00')
  await notify(app, { order_id: 'B1', amount: '1.00', status: '0', notify_id: 'dlv-B1' })
  // A late repeat of A1's payment: its last event moves, its first does not.
  clock.set('2026-06-10T01:00:00.000Z')
  await notify(app, { order_id: 'A1', amount: '88.88', status: '1', trade_no: 'T-A1', notify_id: 'dlv-A1' })
  clock.set('2026-06-05T00:00:00.000Z')
  for (let from = 0; from < padding; from += 1000) {
    const count = Math.min(1000, padding - from)
    await store.eventLog.append(Array.from({ length: count }, (_, i): NewEvent => {
      const orderId = `P${String(from + i).padStart(5, '0')}`
      return { streamId: orderId, type: 'OrderPlaced', data: { orderId, amount: 100, currency: 'CNY' }, metadata: { gateway: 'merchant', deliveryId: `order:${orderId}`, receivedAt: '2026-06-05T00:00:00.000Z', requestId: `r-${orderId}` } }
    }))
  }
  return { ...built, cookie: await signIn(app) }
}

tap.test('the orders list: each filter and the search give exactly the matching orders', async t => {
  const { app, cookie } = await seed(t, 3)
  const list = async (query: string): Promise<string[]> => {
    const res = await getPage(app, cookie, `/console/orders${query}`)
    t.equal(res.statusCode, 200, query)
    return listedOrders(res.body)
  }
  t.same(await list(''), ['A1', 'A2', 'A3', 'B1', 'P00000', 'P00001', 'P00002'])
  t.same(await list('?status=paid'), ['A1', 'A2', 'A3'])
  t.same(await list('?status=pending'), ['B1'])
  t.same(await list('?anomaly=amount_mismatch'), ['A2'])
  t.same(await list('?review=yes'), ['A2'])
  t.same(await list('?review=no&status=paid'), ['A1', 'A3'])
  t.same(await list('?gateway=generic'), ['A1', 'A2', 'A3', 'B1'])
  t.same(await list('?gateway=stripe'), [])
  t.same(await list('?currency=jpy'), ['A3'], 'a currency in lower case is read as its code')
  t.same(await list('?from=2026-06-02T00:00&to=2026-06-04T00:00'), ['A2', 'A3'], 'last event in [from, to), datetime-local read as UTC')
  t.same(await list('?from=2026-06-09T00:00'), ['A1'], 'A1\'s last event is its late repeat')
  t.same(await list('?time=first_seen&from=2026-06-09T00:00'), [], 'by first event, A1 is old')
  t.same(await list('?time=first_seen&from=2026-06-01T00:00:00Z&to=2026-06-01T02:00:00Z'), ['A1'], 'a full ISO time is taken as it is')
  t.same(await list('?q=A2'), ['A2'], 'an order id')
  t.same(await list('?q=T-A1'), ['A1'], 'a gateway transaction id')
  t.same(await list('?q=%3D1%2B2'), ['A3'], 'a transaction id that looks like a formula')
  t.same(await list('?q=dlv-B1'), ['B1'], 'a delivery id (B1 has no transaction id)')
  t.same(await list('?q=%20dlv-A2%20'), ['A2'], 'the search is trimmed')
  t.same(await list('?q=dlv-B1&status=paid'), [], 'a search is filtered too')
  t.same(await list('?q=nothing-like-it'), [])

  const page = await getPage(app, cookie, '/console/orders?status=paid')
  const text = textOf(page.body)
  t.match(text, /A1 paid 88\.88 CNY 0\.00 CNY 88\.88 CNY generic none 2026-06-10 01:00:00 UTC/, 'a row: status, paid, refunded, expected, gateway, anomalies, last event')
  t.match(text, /A3 paid 500 JPY 0 JPY 500 JPY/, 'JPY has no minor digits')
  t.match(page.body, /<option value="paid" selected>/, 'the form keeps the filter')
  t.match(page.body, /href="\/console\/export\/orders\?status&#61;paid&#38;format&#61;csv"/, 'the export links carry the filters')

  for (const [query, field] of [['?status=lost', 'status'], ['?anomaly=x', 'anomaly'], ['?currency=EURO', 'currency'], ['?from=yesterday', 'from'], ['?review=maybe', 'review'], ['?gateway=paypal', 'gateway']]) {
    const res = await getPage(app, cookie, `/console/orders${query!}`)
    t.equal(res.statusCode, 400, query!)
    t.match(textOf(res.body), new RegExp(`${field!}: must be`), `${query!}: the page names the field`)
  }
})

tap.test('the orders list pages by order id with a cursor; every page keeps the filters', async t => {
  const { app, cookie } = await seed(t, 120)
  const walk = async (start: string): Promise<string[][]> => {
    const pages: string[][] = []
    let url: string | undefined = start
    while (url !== undefined && pages.length < 10) {
      const res = await getPage(app, cookie, url)
      t.equal(res.statusCode, 200, url)
      pages.push(listedOrders(res.body))
      const next = /<a href="([^"]+)" rel="next">Next page<\/a>/.exec(res.body)?.[1]
      url = next?.replaceAll('&#61;', '=').replaceAll('&#38;', '&')
    }
    return pages
  }
  const all = await walk('/console/orders')
  t.same(all.map(page => page.length), [50, 50, 24])
  const ids = all.flat()
  t.same(ids, ['A1', 'A2', 'A3', 'B1', ...Array.from({ length: 120 }, (_, i) => `P${String(i).padStart(5, '0')}`)], 'every order once, in order id order')
  const unpaid = await walk('/console/orders?status=awaiting_payment')
  t.same(unpaid.map(page => page.length), [50, 50, 20], 'the cursor keeps the filter')
  t.notOk(unpaid.flat().some(id => id.startsWith('A') || id === 'B1'))
  const second = await getPage(app, cookie, '/console/orders?cursor=B1')
  t.same(listedOrders(second.body).slice(0, 2), ['P00000', 'P00001'], 'a page starts after its cursor')
  t.match(second.body, /<a href="\/console\/orders">First page<\/a>/)
})

tap.test('export: the filtered list as CSV (formulas defused) or NDJSON, as an attachment', async t => {
  const { app, cookie } = await seed(t)
  const csv = await getPage(app, cookie, '/console/export/orders?format=csv&status=paid')
  t.equal(csv.statusCode, 200)
  t.equal(csv.headers['content-type'], 'text/csv; charset=utf-8')
  t.equal(csv.headers['content-disposition'], 'attachment; filename="orders.csv"')
  t.equal(csv.headers['x-paynotify-export-cap'], String(maxExportRows))
  t.equal(csv.headers['x-paynotify-export-truncated'], 'false')
  const lines = csv.body.split('\r\n')
  t.equal(lines[0], 'orderId,status,needsReview,anomalies,expectedAmount,expectedCurrency,paidAmount,refundedAmount,currency,gateway,gatewayTradeNo,duplicateCount,version,lastPosition,firstSeenAt,updatedAt')
  t.same(lines.slice(1, -1).map(line => line.split(',')[0]), ['A1', 'A2', 'A3'])
  t.equal(lines.at(-1), '', 'ends with a line end')
  const a2 = lines[2]!.split(',')
  t.same([a2[1], a2[2], a2[3], a2[4], a2[6], a2[8], a2[10]], ['paid', 'true', 'amount_mismatch', '1000', '1200', 'CNY', 'T-A2'], 'amounts in minor units')
  t.equal(lines[3]!.split(',')[10], "'=1+2", 'a transaction id starting with = is prefixed')

  const ndjson = await getPage(app, cookie, '/console/export/orders?format=ndjson&review=yes')
  t.equal(ndjson.headers['content-type'], 'application/x-ndjson; charset=utf-8')
  t.equal(ndjson.headers['content-disposition'], 'attachment; filename="orders.ndjson"')
  const orders = ndjson.body.trimEnd().split('\n').map(line => JSON.parse(line) as { orderId: string })
  t.same(orders, [(await app.inject({ url: '/admin/orders/A2', headers: adminAuth })).json()], 'each line is the order as the admin API shows it')

  const searched = await getPage(app, cookie, '/console/export/orders?format=csv&q=dlv-B1')
  t.same(searched.body.split('\r\n').slice(1, -1).map(line => line.split(',')[0]), ['B1'], 'the search applies to the export')
  t.equal((await getPage(app, cookie, '/console/export/orders?format=xml')).statusCode, 400)
  t.equal((await app.inject({ url: '/console/export/orders?format=csv' })).statusCode, 303, 'signed out: no export')
})

tap.test(`export stops at ${maxExportRows} orders and says so in the file name`, async t => {
  const { app, cookie } = await seed(t, maxExportRows)
  const csv = await getPage(app, cookie, '/console/export/orders?format=csv')
  t.equal(csv.headers['content-disposition'], `attachment; filename="orders-first-${maxExportRows}.csv"`)
  t.equal(csv.headers['x-paynotify-export-truncated'], 'true')
  t.equal(csv.body.split('\r\n').length - 2, maxExportRows, 'the header and exactly the cap')
  const page = await getPage(app, cookie, '/console/orders')
  t.match(textOf(page.body), /at most 10,000 orders/, 'the page states the cap')
})

tap.test('an order whose id is `export` opens like any other: the export lives under /console/export/', async t => {
  const { app } = await buildTestApp(t)
  const cookie = await signIn(app)
  await register(app, 'export', '1.00')
  const page = await getPage(app, cookie, '/console/orders/export')
  t.equal(page.statusCode, 200)
  t.match(page.body, /<h1>Order export<\/h1>/)
})
