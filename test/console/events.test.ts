import type { FastifyInstance } from 'fastify'
import tap from 'tap'
import { checkChainSinceCheckpoint } from '../../src/event-log/chain-checkpoint.js'
import { genesisHash } from '../../src/event-log/hash.js'
import { buildTestApp, formHeaders, merchantAuth, signedForm } from '../helpers.js'
import { getPage, signIn } from './console-helpers.js'

function clock (start: string): { now: () => Date, set: (iso: string) => void } {
  let at = new Date(start)
  return { now: () => at, set: (iso: string) => { at = new Date(iso) } }
}

async function callback (app: FastifyInstance, orderId: string, status = '1'): Promise<void> {
  const res = await app.inject({ method: 'POST', url: '/notify/generic', headers: formHeaders, payload: signedForm({ order_id: orderId, amount: '1.00', status }) })
  if (res.statusCode !== 200) throw new Error(`callback refused: ${res.statusCode} ${res.body}`)
}

/** The page's links, as a browser reads their href (ghtml escapes = and & in attributes). */
function hrefs (body: string): string[] {
  return [...body.matchAll(/<a href="([^"]*)"( rel="(?:next|prev)")?>/g)].map(m => m[1]!.replaceAll('&#61;', '=').replaceAll('&#38;', '&') + (m[2] ?? ''))
}

/** Positions of the event rows on a page, in order. */
function positions (body: string): number[] {
  return [...body.matchAll(/<tr id="p(\d+)">/g)].map(m => Number(m[1]))
}

/** The hash and previous hash a page shows for a position. */
function hashesOf (body: string, position: number): { hash: string, prev: string, holds: boolean } | undefined {
  const row = new RegExp(`<tr id="p${position}">(.*?)</tr>`, 's').exec(body)?.[1]
  const match = row === undefined ? null : /<dt>hash<\/dt><dd><code class="hash">([0-9a-f]{64})<\/code><\/dd><dt>previous<\/dt><dd><code class="hash">([0-9a-f]{64})<\/code><\/dd><\/dl><span class="badge (ok|bad)">/.exec(row)
  return match === null ? undefined : { hash: match[1]!, prev: match[2]!, holds: match[3] === 'ok' }
}

tap.test('the log by position, 50 a page, each event with its hash and the hash of the position before it', async t => {
  const time = clock('2026-05-01T10:00:00.000Z')
  const { app, store } = await buildTestApp(t, { store: { clock: time.now }, deps: { now: time.now } })
  const cookie = await signIn(app)
  for (let i = 1; i <= 60; i++) {
    time.set(new Date(Date.parse('2026-05-01T10:00:00.000Z') + i * 60_000).toISOString())
    await callback(app, `E-${i}`, i % 10 === 0 ? '2' : '1')
  }
  const stored = new Map((store.sqlite.prepare('SELECT position, hash FROM events').all() as Array<{ position: number, hash: string }>).map(r => [r.position, r.hash]))
  t.equal(stored.size, 60)

  const first = await getPage(app, cookie, '/console/events')
  t.equal(first.statusCode, 200)
  t.same(positions(first.body), Array.from({ length: 50 }, (_, i) => i + 1), 'positions 1 to 50')
  t.same(hashesOf(first.body, 1), { hash: stored.get(1), prev: genesisHash, holds: true }, 'position 1 chains onto genesis')
  t.same(hashesOf(first.body, 37), { hash: stored.get(37), prev: stored.get(36), holds: true })
  t.match(first.body, /<caption>Events 1 to 50 of 60, by position<\/caption>/)
  t.ok(hrefs(first.body).includes('/console/events?after=50 rel="next"'), 'the next page')
  t.ok(hrefs(first.body).includes('/console/events?after=10'), 'the latest page')
  t.notMatch(first.body, /rel="prev"/, 'the first page has no previous')
  t.match(first.body, /<td>PaymentSucceeded<\/td><td><a href="\/console\/orders\/E-1">E-1<\/a><\/td><td>generic<\/td>/, 'order stream linked, gateway shown')
  t.match(first.body, /<time datetime="2026-05-01T10:01:00.000Z">2026-05-01 10:01:00 UTC<\/time>/)
  t.match(first.body, /No start has verified the hash chain yet/)

  const second = await getPage(app, cookie, '/console/events?after=50')
  t.same(positions(second.body), Array.from({ length: 10 }, (_, i) => i + 51))
  t.same(hashesOf(second.body, 51), { hash: stored.get(51), prev: stored.get(50), holds: true }, 'the previous hash is read even off the page')
  t.notMatch(second.body, /rel="next"/, 'the last page')
  t.ok(hrefs(second.body).includes('/console/events rel="prev"'), 'previous: the first page')

  // Failed payments (every tenth): the type index, each chained onto the position before it, read apart.
  const failed = await getPage(app, cookie, '/console/events?type=PaymentFailed')
  t.same(positions(failed.body), [10, 20, 30, 40, 50, 60])
  t.same(hashesOf(failed.body, 20), { hash: stored.get(20), prev: stored.get(19), holds: true })
  t.match(failed.body, /<option value="PaymentFailed" selected>/)

  // A time range: [10:05, 10:08) holds positions 5, 6 and 7.
  const range = await getPage(app, cookie, '/console/events?from=2026-05-01T10:05&to=2026-05-01T10%3A08%3A00')
  t.same(positions(range.body), [5, 6, 7])
  t.match(range.body, /<input id="f-from" name="from" type="datetime-local" step="1" value="2026-05-01T10:05">/, 'the filter is kept in the form')
  const rangeAndType = await getPage(app, cookie, '/console/events?type=PaymentFailed&from=2026-05-01T10:15:00Z&to=2026-05-01T10:45:00Z')
  t.same(positions(rangeAndType.body), [20, 30, 40])
  const nothing = await getPage(app, cookie, '/console/events?from=2026-05-02T00:00')
  t.same(positions(nothing.body), [])
  t.match(nothing.body, /No event here matches the filter/)

  // Paging keeps the filter: 50 events from 10:02 on, then the rest.
  const paged = await getPage(app, cookie, '/console/events?from=2026-05-01T10:02')
  t.same(positions(paged.body), Array.from({ length: 50 }, (_, i) => i + 2))
  t.ok(hrefs(paged.body).includes('/console/events?from=2026-05-01T10%3A02&after=51 rel="next"'))
  const pagedNext = await getPage(app, cookie, '/console/events?from=2026-05-01T10%3A02&after=51')
  t.same(positions(pagedNext.body), [52, 53, 54, 55, 56, 57, 58, 59, 60])
  t.ok(hrefs(pagedNext.body).includes('/console/events?from=2026-05-01T10%3A02 rel="prev"'), 'previous: the filter\'s first page')
})

tap.test('the last chain verification is shown, and an edited row shows its hash broken', async t => {
  const { app, store } = await buildTestApp(t)
  const cookie = await signIn(app)
  for (let i = 1; i <= 5; i++) await callback(app, `V-${i}`)
  // What a start does: verify what was appended since the last check and move the checkpoint.
  const check = checkChainSinceCheckpoint(store.sqlite, new Date('2026-05-01T09:00:00.000Z'))
  t.ok(check.ok)
  await callback(app, 'V-6')
  const page = await getPage(app, cookie, '/console/events')
  t.match(page.body, /last verified through position <strong>5<\/strong> at <time datetime="2026-05-01T09:00:00.000Z">/)
  t.match(page.body, /<tr id="p5">.*?<span class="badge">verified<\/span><\/td><\/tr>/s, 'position 5 is within the verified chain')
  t.notMatch(/<tr id="p6">.*?<\/tr>/s.exec(page.body)?.[0] ?? '', /verified/, 'position 6 came after it')

  // Whoever can write the file can drop the trigger and edit a fact: its hash no longer holds.
  store.sqlite.exec('DROP TRIGGER events_no_update')
  store.sqlite.prepare("UPDATE events SET data = replace(data, '\"amount\":100', '\"amount\":99900') WHERE position = 3").run()
  const edited = await getPage(app, cookie, '/console/events')
  t.equal(hashesOf(edited.body, 3)?.holds, false, 'the edited row is shown broken')
  t.equal(hashesOf(edited.body, 4)?.holds, true, 'the next row still chains onto the stored hash')
})

tap.test('outside text is shown as text; streams that are not orders are not linked; bad filters are refused', async t => {
  const { app, store } = await buildTestApp(t)
  const cookie = await signIn(app)
  const placed = await app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload: { order_id: 'X-1', amount: '1.00' } })
  t.equal(placed.statusCode, 201)
  // Straight through the writer: the routes would refuse these names, the page must not rely on that.
  await store.eventLog.append([{
    streamId: '~unattributed:generic',
    type: 'UnattributedReportReceived',
    data: { amount: 1, currency: 'CNY', gateway: 'generic', transactionId: 'T-1', refundId: null, cumulative: false, gatewayStatus: '1', gatewayTime: null, reportedType: 'PaymentSucceeded', reason: 'test' },
    metadata: { gateway: '<img src=x onerror=alert(1)>', deliveryId: 'u-1', receivedAt: new Date().toISOString(), requestId: 'r' }
  }])
  const page = await getPage(app, cookie, '/console/events')
  t.same(positions(page.body), [1, 2])
  t.match(page.body, /<td><span class="mono">~unattributed:generic<\/span><\/td><td>&#60;img src&#61;x onerror&#61;alert\(1\)&#62;<\/td>/, 'shown as text')
  t.notMatch(page.body, /<img/)
  t.match(page.body, /<td>OrderPlaced<\/td><td><a href="\/console\/orders\/X-1">X-1<\/a><\/td><td>merchant<\/td>/)

  for (const [query, message] of [
    ['after=-1', /after: must be a log position/],
    ['type=%3Cscript%3E', /type: is not an event type/],
    ['from=yesterday', /from: must be a date and time/],
    ['to=2026-13-45T99:00', /to: must be a date and time/]
  ] as const) {
    const res = await getPage(app, cookie, `/console/events?${query}`)
    t.equal(res.statusCode, 400, query)
    t.match(res.body, message, query)
  }
  const echoed = await getPage(app, cookie, '/console/events?from=%22%3E%3Cscript%3Ealert(1)%3C/script%3E')
  t.equal(echoed.statusCode, 400)
  t.notMatch(echoed.body, /<script>alert/, 'a bad value is echoed as text')
  t.match(echoed.body, /value="&#34;&#62;&#60;script&#62;alert\(1\)&#60;\/script&#62;"/)
})
