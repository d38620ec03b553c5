import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { adminAuth, buildTestApp, formHeaders, merchantAuth, signedForm, testEachWriter, testSecrets } from '../helpers.js'

/** A clock the test moves: events get the recordedAt it says. */
function steppingClock (start: string): { now: () => Date, set: (iso: string) => void } {
  let current = new Date(start)
  return { now: () => current, set: iso => { current = new Date(iso) } }
}

async function notify (app: FastifyInstance, params: Record<string, string>): Promise<void> {
  const res = await app.inject({ method: 'POST', url: '/notify/generic', headers: formHeaders, payload: signedForm(params) })
  if (res.body !== 'success') throw new Error(`callback refused: ${res.statusCode} ${res.body}`)
}

async function register (app: FastifyInstance, orderId: string, amount: string): Promise<void> {
  const res = await app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload: { order_id: orderId, amount } })
  if (res.statusCode !== 201) throw new Error(`registration refused: ${res.statusCode} ${res.body}`)
}

async function get (app: FastifyInstance, url: string, headers: Record<string, string> = adminAuth) {
  return await app.inject({ url, headers })
}

t.test('every admin route needs the admin token', async t => {
  const { app } = await buildTestApp(t)
  await notify(app, { order_id: 'A-1', amount: '1', status: '1' })
  const urls = ['/admin/orders/A-1', '/admin/orders', '/admin/orders/A-1/events', '/admin/events']
  const cases: Array<[string, Record<string, string>]> = [
    ['no token', {}],
    ['merchant token', merchantAuth],
    ['wrong token', { authorization: 'Bearer admin-test-token-012345678X' }],
    ['lower-case scheme with a space too many', { authorization: `Bearer  ${testSecrets.adminToken}` }]
  ]
  for (const url of urls) {
    for (const [name, headers] of cases) {
      const res = await get(app, url, headers)
      t.equal(res.statusCode, 401, `${url} ${name}`)
      t.same(res.json(), { error: { code: 'unauthorized', message: 'admin token required: Authorization: Bearer <token>' } })
    }
    t.equal((await get(app, url)).statusCode, 200, `${url} with the admin token`)
  }
})

testEachWriter(t, 'GET /admin/orders/:id: the order view, 404 for an unknown order', async (t, writer) => {
  const { app } = await buildTestApp(t, { writer })
  await register(app, 'O-1', '100')
  await notify(app, { order_id: 'O-1', amount: '100', status: '1', trade_no: 'T-1' })
  const res = await get(app, '/admin/orders/O-1')
  t.equal(res.statusCode, 200)
  t.match(res.json(), { orderId: 'O-1', status: 'paid', needsReview: false, anomalies: [], expectedAmount: 10000, expectedCurrency: 'CNY' })
  t.match(res.json(), { paidAmount: 10000, refundedAmount: 0, currency: 'CNY', gateway: 'generic', gatewayTradeNo: 'T-1', duplicateCount: 0 })
  t.match(res.json(), { version: 2, lastPosition: 2, firstSeenAt: String, updatedAt: String })
  const missing = await get(app, '/admin/orders/nope')
  t.equal(missing.statusCode, 404)
  t.same(missing.json(), { error: { code: 'order_not_found', message: 'no order nope' } })
  t.equal((await get(app, '/admin/orders/nope/events')).statusCode, 404)
  const bad = await get(app, '/admin/orders/a%20b')
  t.equal(bad.statusCode, 400)
  t.match(bad.json().error.message, /^id: /)
})

testEachWriter(t, 'GET /admin/orders: filters and cursor paging across pages', async (t, writer) => {
  const { app } = await buildTestApp(t, { writer })
  // 7 paid (2 of them short), 3 refunded, 2 awaiting payment, 1 failed.
  for (let i = 0; i < 7; i++) {
    const id = `P-${i}`
    await register(app, id, '10')
    await notify(app, { order_id: id, amount: i < 2 ? '1' : '10', status: '1' })
  }
  for (let i = 0; i < 3; i++) {
    await notify(app, { order_id: `R-${i}`, amount: '5', status: '1' })
    await notify(app, { order_id: `R-${i}`, amount: '5', status: '3' })
  }
  await register(app, 'W-0', '1')
  await register(app, 'W-1', '1')
  await notify(app, { order_id: 'F-0', amount: '1', status: '2' })

  const all = (await get(app, '/admin/orders?limit=500')).json() as { orders: Array<{ orderId: string, status: string }>, nextCursor: string | null }
  t.equal(all.orders.length, 13)
  t.equal(all.nextCursor, null)
  t.same(all.orders.map(o => o.orderId), [...all.orders.map(o => o.orderId)].sort(), 'ordered by order id')

  const ids = async (query: string): Promise<string[]> => ((await get(app, `/admin/orders?${query}`)).json() as typeof all).orders.map(o => o.orderId)
  t.same(await ids('status=paid'), ['P-0', 'P-1', 'P-2', 'P-3', 'P-4', 'P-5', 'P-6'])
  t.same(await ids('status=refunded'), ['R-0', 'R-1', 'R-2'])
  t.same(await ids('status=awaiting_payment'), ['W-0', 'W-1'])
  t.same(await ids('status=failed'), ['F-0'])
  t.same(await ids('anomaly=amount_mismatch'), ['P-0', 'P-1'])
  t.same(await ids('anomaly=unknown_order'), ['F-0', 'R-0', 'R-1', 'R-2'])
  t.same(await ids('anomaly=unknown_order&status=refunded'), ['R-0', 'R-1', 'R-2'])
  t.same(await ids('gateway=generic&status=paid&anomaly=amount_mismatch'), ['P-0', 'P-1'])
  t.equal((await ids('gateway=generic')).length, 11, 'orders only registered have no gateway yet')
  t.same(await ids('gateway=stripe'), [])

  // Page through paid orders three at a time.
  const seen: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const query: string = `status=paid&limit=3${cursor === null ? '' : `&cursor=${cursor}`}`
    const page = (await get(app, `/admin/orders?${query}`)).json() as typeof all
    t.ok(page.orders.length <= 3)
    seen.push(...page.orders.map(o => o.orderId))
    cursor = page.nextCursor
    pages++
  } while (cursor !== null && pages < 10)
  t.equal(pages, 3)
  t.same(seen, ['P-0', 'P-1', 'P-2', 'P-3', 'P-4', 'P-5', 'P-6'], 'every order once, in order')

  const exact = (await get(app, '/admin/orders?status=refunded&limit=3')).json() as typeof all
  t.equal(exact.orders.length, 3)
  t.equal(exact.nextCursor, null, 'no cursor when the page holds the last order')

  t.equal((await get(app, '/admin/orders?status=lost')).statusCode, 400)
  t.match((await get(app, '/admin/orders?status=lost')).json().error.message, /^status: must be one of refunded, /)
  t.equal((await get(app, '/admin/orders?anomaly=bogus')).statusCode, 400)
  t.equal((await get(app, '/admin/orders?limit=0')).statusCode, 400)
  t.equal((await get(app, '/admin/orders?limit=501')).statusCode, 400)
})

t.test('GET /admin/orders?needsReview: the review queue, and the rest', async t => {
  const { app } = await buildTestApp(t)
  await register(app, 'A-0', '10')
  await notify(app, { order_id: 'A-0', amount: '10', status: '1' })
  await register(app, 'A-1', '10')
  await notify(app, { order_id: 'A-1', amount: '9', status: '1' })
  await notify(app, { order_id: 'A-2', amount: '5', status: '1' })
  await register(app, 'A-3', '1')
  const ids = async (query: string): Promise<string[]> => ((await get(app, `/admin/orders?${query}`)).json() as { orders: Array<{ orderId: string }> }).orders.map(o => o.orderId)
  t.same(await ids('needsReview=true'), ['A-1', 'A-2'], 'amount mismatch and unknown order')
  t.same(await ids('needsReview=false'), ['A-0', 'A-3'])
  t.same(await ids('needsReview=true&status=paid&limit=1'), ['A-1'], 'with other filters and paging')
  t.same(await ids('needsReview=true&cursor=A-1'), ['A-2'])
  const bad = await get(app, '/admin/orders?needsReview=yes')
  t.equal(bad.statusCode, 400)
  t.same(bad.json().error, { code: 'malformed', message: 'needsReview: must be boolean' })
})

t.test('every admin route refuses a query parameter it does not know, naming it', async t => {
  const { app } = await buildTestApp(t)
  await notify(app, { order_id: 'Q-1', amount: '1', status: '1' })
  const cases: Array<[string, string]> = [
    ['/admin/orders?staus=failed', 'staus'],
    ['/admin/orders?status=paid&needsreview=true', 'needsreview'],
    ['/admin/orders/Q-1?verbose=1', 'verbose'],
    ['/admin/orders/Q-1/events?verbose=1', 'verbose'],
    ['/admin/events?typ=PaymentSucceeded', 'typ'],
    ['/admin/events?after=0&fromm=2026-01-01T00:00:00Z', 'fromm']
  ]
  for (const [url, name] of cases) {
    const res = await get(app, url)
    t.equal(res.statusCode, 400, url)
    t.same(res.json().error, { code: 'malformed', message: `${name}: unknown query parameter` }, url)
  }
  t.equal((await get(app, '/admin/orders?staus=failed', {})).statusCode, 401, 'the token is checked first')
  t.equal((await get(app, '/admin/orders/Q-1')).statusCode, 200, 'no parameters: fine')
  t.equal((await get(app, '/admin/orders?status=paid')).statusCode, 200)
})

testEachWriter(t, 'GET /admin/orders/:id/events: every delivery, repeats marked with the position of the first', async (t, writer) => {
  const { app } = await buildTestApp(t, { writer })
  await register(app, 'T-1', '100')
  await notify(app, { order_id: 'OTHER', amount: '1', status: '1' })
  const paid = { order_id: 'T-1', amount: '100', status: '1', trade_no: 'TX', notify_id: 'n1' }
  await notify(app, paid)
  await notify(app, paid)
  await notify(app, { ...paid, notify_id: 'n2', status: 'success' })
  await notify(app, { order_id: 'T-1', amount: '100', status: '2', notify_id: 'n3' })

  const res = await get(app, '/admin/orders/T-1/events')
  t.equal(res.statusCode, 200)
  const body = res.json() as { orderId: string, events: Array<Record<string, unknown>> }
  t.equal(body.orderId, 'T-1')
  t.same(body.events.map(e => [e.position, e.streamVersion, e.type, e.outcome, e.duplicateReason, e.duplicateOf]), [
    [1, 1, 'OrderPlaced', 'applied', undefined, undefined],
    [3, 2, 'PaymentSucceeded', 'applied', undefined, undefined],
    [4, 3, 'PaymentSucceeded', 'duplicate', 'delivery', 3],
    [5, 4, 'PaymentSucceeded', 'duplicate', 'fact', 3],
    [6, 5, 'PaymentFailed', 'applied', undefined, undefined]
  ])
  t.match(body.events[1], { data: { amount: 10000, transactionId: 'TX' }, metadata: { gateway: 'generic', deliveryId: 'n1', raw: { contentType: 'application/x-www-form-urlencoded' } }, hash: /^[0-9a-f]{64}$/ })
  t.match((await get(app, '/admin/orders/T-1')).json(), { status: 'paid', duplicateCount: 2 })
})

t.test('GET /admin/events: paging, filters and NDJSON streaming', async t => {
  const clock = steppingClock('2026-01-01T00:00:00.000Z')
  const { app } = await buildTestApp(t, { store: { clock: clock.now } })
  // 12 events: hours 0..11 of Jan 1st; every third is a registration.
  for (let i = 0; i < 12; i++) {
    clock.set(`2026-01-01T${String(i).padStart(2, '0')}:00:00.000Z`)
    if (i % 3 === 0) await register(app, `E-${i}`, '1')
    else await notify(app, { order_id: `E-${i}`, amount: '1', status: i % 3 === 1 ? '1' : '2' })
  }
  type Page = { events: Array<{ position: number, type: string, recordedAt: string, metadata: { gateway: string } }>, nextCursor: number | null }
  const page = async (query: string): Promise<Page> => {
    const res = await get(app, `/admin/events?${query}`)
    t.equal(res.statusCode, 200, query)
    return res.json() as Page
  }

  const first = await page('')
  t.same(first.events.map(e => e.position), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
  t.equal(first.nextCursor, null)

  const positions: number[] = []
  let after = 0
  let pages = 0
  for (; pages < 10; pages++) {
    const p = await page(`after=${after}&limit=5`)
    positions.push(...p.events.map(e => e.position))
    if (p.nextCursor === null) break
    after = p.nextCursor
  }
  t.equal(pages + 1, 3, 'three pages of at most five')
  t.same(positions, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
  t.same((await page('after=10&limit=2')).nextCursor, null, 'the last page has no cursor')
  t.same((await page('after=12')).events, [])

  t.same((await page('type=OrderPlaced')).events.map(e => e.position), [1, 4, 7, 10])
  t.same((await page('type=PaymentFailed')).events.map(e => e.position), [3, 6, 9, 12])
  t.same((await page('gateway=merchant')).events.map(e => e.position), [1, 4, 7, 10])
  t.same((await page('gateway=generic&type=PaymentSucceeded')).events.map(e => e.position), [2, 5, 8, 11])
  t.same((await page('type=PaymentSucceeded&limit=2')).nextCursor, 5, 'the cursor of a filtered page is its last position')
  t.same((await page('type=PaymentSucceeded&after=5')).events.map(e => e.position), [8, 11])

  t.same((await page('from=2026-01-01T03:00:00.000Z&to=2026-01-01T06:00:00.000Z')).events.map(e => e.position), [4, 5, 6], 'from inclusive, to exclusive')
  t.same((await page('from=2026-01-01T03:00:00Z&to=2026-01-01T06:00:00Z')).events.map(e => e.position), [4, 5, 6], 'without milliseconds')
  t.same((await page('from=2026-01-01T11:00:00%2B08:00&to=2026-01-01T14:00:00%2B08:00')).events.map(e => e.position), [4, 5, 6], 'with an offset')
  t.same((await page('from=2026-01-01T09:00:00.000Z&type=OrderPlaced')).events.map(e => e.position), [10])
  t.equal((await get(app, '/admin/events?from=yesterday')).statusCode, 400)
  const leap = await get(app, '/admin/events?to=2026-06-30T23:59:60Z')
  t.equal(leap.statusCode, 400, 'a leap second is a valid date-time format but no instant')
  t.match(leap.json().error.message, /^to: /)
  t.equal((await get(app, '/admin/events?type=Bogus')).statusCode, 400)
  t.equal((await get(app, '/admin/events?limit=1001')).statusCode, 400)

  const ndjson = await app.inject({ url: '/admin/events', headers: { ...adminAuth, accept: 'application/x-ndjson' } })
  t.equal(ndjson.statusCode, 200)
  t.match(ndjson.headers['content-type'], /^application\/x-ndjson/)
  t.ok(ndjson.body.endsWith('\n'))
  const lines = ndjson.body.trimEnd().split('\n').map(line => JSON.parse(line) as Page['events'][number])
  t.same(lines.map(e => e.position), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 'one JSON event per line')
  t.same(lines, first.events, 'the same events as the JSON page')

  const filtered = await app.inject({ url: '/admin/events?type=PaymentFailed&after=3&limit=2', headers: { ...adminAuth, accept: 'application/x-ndjson' } })
  t.same(filtered.body.trimEnd().split('\n').map(line => (JSON.parse(line) as { position: number }).position), [6, 9])
  const none = await app.inject({ url: '/admin/events?after=99', headers: { ...adminAuth, accept: 'application/x-ndjson' } })
  t.equal(none.statusCode, 200)
  t.equal(none.body, '')
})

testEachWriter(t, 'NDJSON streams a log larger than one page', async (t, writer) => {
  const { app, store } = await buildTestApp(t, { writer })
  await store.eventLog.append(Array.from({ length: 2500 }, (_, i) => ({
    streamId: `S-${i % 100}`,
    type: 'PaymentPending' as const,
    data: { orderId: `S-${i % 100}`, amount: i, currency: 'CNY', gateway: 'generic', transactionId: null, refundId: null, cumulative: false, gatewayStatus: '0', gatewayTime: null },
    metadata: { gateway: 'generic', deliveryId: `d${i}`, receivedAt: '2026-01-01T00:00:00.000Z', requestId: `r${i}` }
  })))
  const res = await app.inject({ url: '/admin/events', headers: { ...adminAuth, accept: 'application/x-ndjson' } })
  const positions = res.body.trimEnd().split('\n').map(line => (JSON.parse(line) as { position: number }).position)
  t.equal(positions.length, 2500)
  t.ok(positions.every((p, i) => p === i + 1))
  const limited = await app.inject({ url: '/admin/events?after=100&limit=1000&type=PaymentPending', headers: { ...adminAuth, accept: 'application/x-ndjson' } })
  const limitedPositions = limited.body.trimEnd().split('\n').map(line => (JSON.parse(line) as { position: number }).position)
  t.equal(limitedPositions.length, 1000)
  t.equal(limitedPositions[0], 101)
  t.equal(limitedPositions.at(-1), 1100)
})
