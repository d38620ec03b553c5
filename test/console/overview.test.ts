import { once } from 'node:events'
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import tap from 'tap'
import { sessionCookie } from '../../src/console/plugin.js'
import { buildTestApp, formHeaders, merchantAuth, signedForm, testEachWriter } from '../helpers.js'
import { LiveStream, type LiveSource } from '../../src/console/live-stream.js'
import { CallbackMinutes } from '../../src/console/overview-data.js'
import { getPage, signIn } from './console-helpers.js'

// The service clock and the log's clock are the same mutable time, so a test can place callbacks in minutes.
function clock (start: string): { now: () => Date, set: (iso: string) => void } {
  let at = new Date(start)
  return { now: () => at, set: (iso: string) => { at = new Date(iso) } }
}

async function callback (app: FastifyInstance, orderId: string, status = '1', amount = '10.00'): Promise<void> {
  const res = await app.inject({ method: 'POST', url: '/notify/generic', headers: formHeaders, payload: signedForm({ order_id: orderId, amount, status }) })
  if (res.statusCode !== 200) throw new Error(`callback refused: ${res.statusCode} ${res.body}`)
}

/** The text of a table cell row by its first cell (the minute), cells joined by |. */
function minuteRow (body: string, minute: string): string | undefined {
  const match = new RegExp(`<tr><th scope="row">${minute}</th>(.*?)</tr>`).exec(body)
  return match?.[1]?.replace(/<span[^>]*><\/span>/g, '').replace(/<\/td><td[^>]*>/g, '|').replace(/<\/?td[^>]*>/g, '').replace(/\|$/, '')
}

tap.test('the overview counts the last hour\'s callbacks per minute and gateway, orders by status, the review queue and the last event', async t => {
  const time = clock('2026-05-01T11:00:30.000Z')
  const { app, store } = await buildTestApp(t, { store: { clock: time.now }, deps: { now: time.now } })
  const cookie = await signIn(app)

  // Out of the window (over an hour before 12:05): not counted.
  await callback(app, 'OLD-1')
  time.set('2026-05-01T11:58:10.000Z')
  await callback(app, 'A-1')
  await callback(app, 'A-2')
  await callback(app, 'A-3', '2')
  time.set('2026-05-01T12:04:59.000Z')
  await callback(app, 'A-4')
  await callback(app, 'A-1') // a repeat: stored, counted as a callback of its minute
  // An order placed by the merchant is no callback.
  const placed = await app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload: { order_id: 'M-1', amount: '5.00', currency: 'CNY' } })
  t.equal(placed.statusCode, 201, 'merchant order placed')
  await callback(app, 'M-1', '1', '9.99')
  time.set('2026-05-01T12:05:20.000Z')

  const res = await getPage(app, cookie, '/console/')
  t.equal(res.statusCode, 200)
  const body = res.body
  t.match(body, /<script src="\/console\/assets\/live\.js" defer><\/script>/, 'the live script is loaded')
  t.match(body, /Callbacks per minute by gateway since 2026-05-01 11:06 UTC: 6 in all/)
  t.equal(minuteRow(body, '11:58'), '3|3', '11:58: three generic callbacks')
  t.equal(minuteRow(body, '12:04'), '3|3', '12:04: two callbacks and the merchant order\'s payment')
  t.match(body, /<tr class="quiet"><th scope="row">12:05<\/th><td colspan="3" class="muted">no callbacks<\/td><\/tr>/, 'the current minute, empty')
  t.match(body, /<tr class="quiet"><th scope="row">11:59 to 12:03<\/th><td colspan="3" class="muted">no callbacks<\/td><\/tr>/, 'a quiet run is one row')
  t.match(body, /<tr class="quiet"><th scope="row">11:06 to 11:57<\/th>/, 'back to the window\'s first minute')
  t.notMatch(body, /<th scope="row">11:00/, 'the hour before the window is not shown')
  t.match(body, /<span class="bar bar-10" aria-hidden="true">/, 'the busiest minute has a full bar')

  t.match(body, /<a href="\/console\/orders\?status=paid">paid<\/a><\/td><td class="num">5<\/td>/, 'paid orders')
  t.match(body, /<a href="\/console\/orders\?status=failed">failed<\/a><\/td><td class="num">1<\/td>/, 'failed orders')
  t.match(body, /<th scope="row">All<\/th><td class="num">6<\/td>/, 'every order')
  // Five orders the merchant never placed (unknown_order) and M-1 paid 9.99 of 5.00 (amount_mismatch).
  t.match(body, /<a href="\/console\/review"><span class="big-number">6<\/span> orders need review<\/a>/, 'the review queue')
  const tail = store.eventLog.tail.position
  t.equal(tail, 8, 'eight events: seven callbacks and the merchant\'s order')
  t.match(body, new RegExp(`<time datetime="2026-05-01T12:04:59.000Z">2026-05-01 12:04:59 UTC</time></p><p class="muted">position ${tail}</p>`), 'the last event')
  t.match(body, /<dt>Log tail<\/dt><dd>position 8<\/dd>/, 'the writer and the reads agree')
  t.match(body, /takes writes/)
  t.match(body, /<dt>Last commit<\/dt><dd><time datetime="2026-05-01T12:04:59.000Z">/, 'the last commit this process made')
  t.match(body, /No callback refused since/)

  // Recent deliveries: newest first, order streams linked.
  const rows = [...body.matchAll(/<tr data-position="(\d+)">/g)].map(m => Number(m[1]))
  t.same(rows, [8, 7, 6, 5, 4, 3, 2, 1])
  t.match(body, /<td>generic<\/td><td>PaymentSucceeded<\/td><td><a href="\/console\/orders\/M-1">M-1<\/a><\/td>/)
  t.match(body, /<div data-live-src="\/console\/fragments\/recent" data-live-announce="live-status">/)
  t.match(body, /<p id="live-status" class="visually-hidden" role="status" aria-live="polite"><\/p>/)

  const fragment = await getPage(app, cookie, '/console/fragments/recent')
  t.equal(fragment.statusCode, 200)
  t.match(fragment.headers['content-type'], /^text\/html/)
  t.notMatch(fragment.body, /<html|<nav/, 'a fragment, not a page')
  t.match(fragment.body, /data-announce="Newest event: position 8, PaymentSucceeded from generic, M-1"/)
  t.match(fragment.body, /<tr data-position="8">/)
  const summary = await getPage(app, cookie, '/console/fragments/summary')
  t.equal(summary.statusCode, 200)
  t.notMatch(summary.body, /<html|<nav/, 'a fragment, not a page')
  t.match(summary.body, /<p class="muted">position 8<\/p>/)
  t.match(body, /<div data-live-src="\/console\/fragments\/summary"><div class="cards">/, 'the summary follows commits')
  for (const url of ['/console/fragments/recent', '/console/fragments/summary']) {
    const anonymous = await app.inject({ url })
    t.equal(anonymous.statusCode, 303, `${url} needs a session too`)
  }

  // The next look counts only what was appended since, into the same minutes.
  await callback(app, 'A-5')
  const again = await getPage(app, cookie, '/console/')
  t.equal(minuteRow(again.body, '12:05'), '1|1', 'a callback in the current minute')
  t.equal(minuteRow(again.body, '11:58'), '3|3', 'the earlier minutes kept')
  t.match(again.body, /: 7 in all/)
  // An hour later the old minutes leave the window.
  time.set('2026-05-01T13:04:30.000Z')
  const later = await getPage(app, cookie, '/console/')
  t.notOk(minuteRow(later.body, '11:58'), '11:58 left the window')
  t.equal(minuteRow(later.body, '12:05'), '1|1', '12:05 is still in it')
})

tap.test('the recent list caps at 20 and outside text in the log is shown as text', async t => {
  const { app, store } = await buildTestApp(t)
  const cookie = await signIn(app)
  for (let i = 1; i <= 22; i++) await callback(app, `R-${i}`)
  // Straight through the writer: the routes would refuse such a gateway name, the page must not trust that.
  await store.eventLog.append([{
    streamId: 'R-1',
    type: 'PaymentSucceeded',
    data: { orderId: 'R-1', amount: 1, currency: 'CNY', gateway: '<img src=x onerror=alert(1)>', transactionId: null, refundId: null, cumulative: false, gatewayStatus: '1', gatewayTime: null },
    metadata: { gateway: '<script>alert(1)</script>', deliveryId: 'x-1', receivedAt: new Date().toISOString(), requestId: 'r' }
  }])
  const res = await getPage(app, cookie, '/console/')
  const rows = [...res.body.matchAll(/<tr data-position="(\d+)">/g)].map(m => Number(m[1]))
  t.equal(rows.length, 20)
  t.equal(rows[0], 23)
  t.equal(rows[19], 4)
  t.notMatch(res.body, /<script>alert/)
  t.match(res.body, /<td>&#60;script&#62;alert\(1\)&#60;\/script&#62;<\/td>/, 'the gateway field as text')
  t.match(res.body, /data-announce="Newest event: position 23, PaymentSucceeded from &#60;script&#62;alert\(1\)&#60;\/script&#62;, R-1"/, 'and in the announcement, as an attribute value')
  const fragment = await getPage(app, cookie, '/console/fragments/recent')
  t.notMatch(fragment.body, /<script>alert/)
})

tap.test('an empty log: the overview says so', async t => {
  const { app } = await buildTestApp(t)
  const res = await getPage(app, await signIn(app), '/console/')
  t.equal(res.statusCode, 200)
  t.match(res.body, /No callbacks since/)
  t.match(res.body, /No orders yet/)
  t.match(res.body, /<span class="big-number">0<\/span> orders need review/)
  t.match(res.body, /none yet \(a start verifies/)
})

interface Opened { res: IncomingMessage, req: ClientRequest, next: () => Promise<string> }

/** Opens GET /console/live on a real socket; `next` resolves with the next chunk of text. */
async function openLive (base: string, cookie: string): Promise<Opened> {
  const req = httpRequest(`${base}/console/live`, { headers: { cookie: `${sessionCookie}=${cookie}`, accept: 'text/event-stream' } })
  req.end()
  const [res] = await once(req, 'response') as [IncomingMessage]
  res.setEncoding('utf8')
  const chunks: string[] = []
  const waiting: Array<(chunk: string) => void> = []
  res.on('data', (chunk: string) => {
    const waiter = waiting.shift()
    if (waiter === undefined) chunks.push(chunk)
    else waiter(chunk)
  })
  const next = async (): Promise<string> => chunks.length > 0 ? chunks.shift()! : await new Promise<string>(resolve => waiting.push(resolve))
  return { res, req, next }
}

testEachWriter(tap, 'GET /console/live: a commit message after commits, throttled to the last position, for a session only', async (t, writer) => {
  const { app } = await buildTestApp(t, { writer })
  const cookie = await signIn(app)
  await callback(app, 'L-0')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

  const anonymous = await fetch(`${base}/console/live`, { redirect: 'manual' })
  t.equal(anonymous.status, 303, 'no session, no stream')

  const live = await openLive(base, cookie)
  t.equal(live.res.statusCode, 200)
  t.match(live.res.headers['content-type'], /^text\/event-stream/)
  t.equal(live.res.headers['cache-control'], 'no-store')
  t.equal(await live.next(), 'retry: 5000\n: position 1\n\n', 'opens with where the log is')

  await callback(app, 'L-1')
  t.equal(await live.next(), 'event: commit\ndata: {"position":2}\n\n')
  // Three commits: however the throttle groups them, the last position arrives, positions only rise.
  await callback(app, 'L-2')
  await callback(app, 'L-3')
  await callback(app, 'L-4')
  const seen: number[] = []
  while (seen.at(-1) !== 5) {
    const match = /^event: commit\ndata: \{"position":(\d+)\}\n\n$/.exec(await live.next())
    if (match === null) throw new Error('not a commit message')
    seen.push(Number(match[1]))
  }
  t.ok(seen.length <= 3 && seen.every((p, i) => i === 0 || p > seen[i - 1]!), `rising positions ending at 5: ${seen.join(', ')}`)
  live.req.destroy()
})

tap.test('LiveStream: one message per interval, the interval\'s last commit sent when it ends, a commit without new events not sent', async t => {
  let position = 0
  const listeners = new Set<() => void>()
  const source: LiveSource = {
    get tail () { return { position } },
    observeCommits: listener => {
      const call = (): void => { listener({ events: 1, seconds: 0 }) }
      listeners.add(call)
      return () => { listeners.delete(call) }
    }
  }
  const commit = (to: number): void => {
    position = to
    for (const listener of listeners) listener()
  }
  const read = (stream: LiveStream): string => String(stream.read() ?? '')
  // A long interval: what a commit pushes, or does not, is seen at once (push is synchronous).
  const slow = new LiveStream(source, { minIntervalMs: 3_600_000, heartbeatMs: 3_600_000 })
  t.equal(read(slow), 'retry: 5000\n: position 0\n\n')
  commit(1)
  t.equal(read(slow), 'event: commit\ndata: {"position":1}\n\n', 'the first commit at once')
  commit(2)
  commit(3)
  t.equal(read(slow), '', 'the next ones wait for the interval')
  slow.destroy()
  t.equal(listeners.size, 0, 'destroyed: it stopped observing')

  const fast = new LiveStream(source, { minIntervalMs: 20, heartbeatMs: 3_600_000 })
  t.equal(read(fast), 'retry: 5000\n: position 3\n\n')
  commit(3)
  t.equal(read(fast), '', 'no new event: nothing sent')
  commit(4)
  t.equal(read(fast), 'event: commit\ndata: {"position":4}\n\n')
  commit(5)
  commit(6)
  await once(fast, 'readable')
  t.equal(read(fast), 'event: commit\ndata: {"position":6}\n\n', 'the interval\'s last position, once it ended')
  fast.finish()
  t.equal(listeners.size, 0, 'finished: it stopped observing')
})

tap.test('GET /console/live: at most 100 open streams; a closed one frees its place; the service\'s close ends them', async t => {
  const { app } = await buildTestApp(t)
  const cookie = await signIn(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const streams: Opened[] = []
  for (let i = 0; i < 100; i++) {
    const live = await openLive(base, cookie)
    t.equal(live.res.statusCode, 200)
    await live.next()
    streams.push(live)
  }
  const refused = await fetch(`${base}/console/live`, { headers: { cookie: `${sessionCookie}=${cookie}` } })
  t.equal(refused.status, 503, 'the 101st is refused')
  t.equal(refused.headers.get('retry-after'), '30')
  await refused.text()

  // The client goes; a new stream is served once the server has let the old one go (each try is answered at once).
  const first = streams.shift()!
  first.req.destroy()
  let status = 503
  let reopened: Opened | undefined
  while (status === 503) {
    const attempt = await openLive(base, cookie)
    status = attempt.res.statusCode ?? 0
    if (status === 200) reopened = attempt
    else attempt.res.resume()
  }
  t.equal(status, 200, 'a place freed')
  streams.push(reopened!)

  // close() would wait for every open stream; it ends them instead, and every client sees its end.
  const ends = streams.map(async live => { await once(live.res, 'end') })
  await app.close()
  await Promise.all(ends)
  t.pass('every stream ended with the service')
})

tap.test('past the cap, a look counts the newest events only and says from when', async t => {
  const time = clock('2026-05-01T12:00:00.000Z')
  const { app, store } = await buildTestApp(t, { store: { clock: time.now }, deps: { now: time.now } })
  for (let i = 1; i <= 5; i++) {
    time.set(`2026-05-01T12:0${i}:00.000Z`)
    await callback(app, `C-${i}`)
  }
  const minutes = new CallbackMinutes(store.sqlite, 3)
  const first = minutes.read(time.now())
  t.equal(first.truncatedAt, '2026-05-01T12:03:00.000Z', 'the third newest event')
  t.same(first.counts.map(c => c.minute).sort(), ['2026-05-01T12:03', '2026-05-01T12:04', '2026-05-01T12:05'])
  await callback(app, 'C-6')
  const second = minutes.read(time.now())
  t.same(second.counts.find(c => c.minute === '2026-05-01T12:05'), { minute: '2026-05-01T12:05', gateway: 'generic', count: 2 }, 'the next look adds to it')
  t.equal(second.truncatedAt, '2026-05-01T12:03:00.000Z', 'still said')
  const page = await getPage(app, await signIn(app), '/console/')
  t.notMatch(page.body, /More events arrived/, 'the page\'s own counter, under its cap, counts them all')
})

tap.test('every query the overview and the event log run walks an index or the primary key, never a whole table', async t => {
  const time = clock('2026-05-01T12:00:00.000Z')
  const { app, store } = await buildTestApp(t, { store: { clock: time.now }, deps: { now: time.now } })
  for (let i = 1; i <= 3; i++) await callback(app, `P-${i}`, i === 2 ? '2' : '1')
  const cookie = await signIn(app)
  const seen = new Set<string>()
  const prepare = store.sqlite.prepare.bind(store.sqlite)
  store.sqlite.prepare = ((source: string) => {
    seen.add(source)
    return prepare(source)
  }) as typeof store.sqlite.prepare
  for (const url of ['/console/', '/console/fragments/recent', '/console/fragments/summary', '/console/events', '/console/events?after=1',
    '/console/events?type=PaymentFailed', '/console/events?from=2026-05-01T11:00&to=2026-05-01T13:00', '/console/events?type=PaymentSucceeded&from=2026-05-01T11:00']) {
    t.equal((await getPage(app, cookie, url)).statusCode, 200, url)
  }
  store.sqlite.prepare = prepare
  const plans: string[] = []
  for (const source of seen) {
    if (!/\b(events|orders)\b/i.test(source) || !/^\s*select/i.test(source)) continue
    const params = Array.from({ length: (source.match(/\?/g) ?? []).length }, () => 1)
    const plan = (store.sqlite.prepare(`EXPLAIN QUERY PLAN ${source}`).all(...params) as Array<{ detail: string }>).map(row => row.detail)
    plans.push(`${source.replace(/\s+/g, ' ').slice(0, 80)}… → ${plan.join('; ')}`)
    for (const step of plan) {
      if (!/^(SCAN|SEARCH) (events|orders)\b/.test(step)) continue
      // A plain SCAN of events is the primary key walked from its end, stopped by LIMIT.
      const bounded = /USING (COVERING )?INDEX|USING INTEGER PRIMARY KEY|USING ROWID SEARCH/.test(step) ||
        (step === 'SCAN events' && /ORDER BY position DESC LIMIT/.test(source))
      t.ok(bounded, `${step} in ${source.replace(/\s+/g, ' ')}`)
    }
  }
  t.ok(plans.length >= 15, 'the queries were seen')
  // Orders by status walks all of orders_status (a covering index, ~50 ms per 500k orders: bench/console-overview.js); the rest are ranges.
  t.comment(plans.join('\n'))
})

tap.test('refusals of the last hour by reason and gateway, from the refusal store; outside names as text', async t => {
  const { app } = await buildTestApp(t)
  const cookie = await signIn(app)
  const forged = signedForm({ order_id: 'F-1', amount: '1.00', status: '1' }, 'not-the-secret-0123456789')
  for (let i = 0; i < 2; i++) t.equal((await app.inject({ method: 'POST', url: '/notify/generic', headers: formHeaders, payload: forged })).statusCode, 401)
  const unknown = await app.inject({ method: 'POST', url: '/notify/%3Cscript%3Ealert(1)%3C%2Fscript%3E', headers: formHeaders, payload: 'a=1' })
  t.equal(unknown.statusCode, 404)
  const page = await getPage(app, cookie, '/console/')
  const card = /<section class="card" aria-labelledby="refusals">(.*?)<\/section>/s.exec(page.body)?.[1] ?? ''
  t.match(card, /<caption>3 refused since <time/)
  t.match(card, /<tr><td>bad_signature<\/td><td class="num">2<\/td><\/tr>/)
  t.match(card, /<tr><td>generic<\/td><td class="num">2<\/td><\/tr>/)
  t.notMatch(page.body, /<script>alert/)
  // A name from the URL that could be no gateway's is counted without it.
  t.match(card, /<tr><td>\(none, or past the names counted\)<\/td><td class="num">1<\/td><\/tr>/)
  t.match(card, /<tr><td>unknown_gateway<\/td><td class="num">1<\/td><\/tr>/)
})

tap.test('without a refusal store the overview says so', async t => {
  const { app } = await buildTestApp(t, { env: { PAYNOTIFY_REFUSALS_MAX: '0' } })
  const page = await getPage(app, await signIn(app), '/console/')
  t.match(page.body, /No refusal store: this service keeps no refused callbacks/)
})
