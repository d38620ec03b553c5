import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import tap, { type Test } from 'tap'
import type { NewEvent } from '../../src/event-log/event-log.js'
import { adminAuth, buildTestApp, tempDir } from '../helpers.js'
import { isolatedEnv, runCli } from '../cli/toolkit-helpers.js'
import { getPage, signIn } from './console-helpers.js'
import { notify, notifyJson, register, TestClock, textOf } from './order-fixtures.js'

async function setUp (t: Test): Promise<Awaited<ReturnType<typeof buildTestApp>> & { cookie: string, clock: TestClock }> {
  const clock = new TestClock('2026-06-01T10:00:00.000Z')
  const built = await buildTestApp(t, { store: { clock: clock.now } })
  return { ...built, clock, cookie: await signIn(built.app) }
}

/** The items of a timeline page: position, type and the outcome text, in page order. */
function timelineItems (body: string): Array<{ position: number, text: string }> {
  return [...body.matchAll(/<li id="p(\d+)" class="entry[^"]*">([\s\S]*?)<\/li>/g)].map(m => ({ position: Number(m[1]), text: textOf(m[2]!) }))
}

tap.test('one order: state and amounts formatted, each anomaly with its sentence, every delivery in the timeline', async t => {
  const { app, cookie, clock } = await setUp(t)
  await register(app, 'O-1', '10.00')
  clock.set('2026-06-01T10:05:00.000Z')
  await notify(app, { order_id: 'O-1', amount: '12.50', status: '1', trade_no: 'TX-1', notify_id: 'n-1', subject: 'Tea' })
  clock.set('2026-06-01T10:06:00.000Z')
  await notify(app, { order_id: 'O-1', amount: '12.50', status: '1', trade_no: 'TX-1', notify_id: 'n-1', subject: 'Tea' })
  await notifyJson(app, { order_id: 'O-1', amount: '12.50', status: '1', trade_no: 'TX-1', notify_id: 'n-2', subject: 'Tea again' })

  const res = await getPage(app, cookie, '/console/orders/O-1')
  t.equal(res.statusCode, 200)
  const text = textOf(res.body)
  t.match(text, /Status paid Paid 12\.50 CNY Refunded 0\.00 CNY Expected 10\.00 CNY Gateway generic Gateway transaction id TX-1 Needs review yes Events stored 4 \(2 repeats\)/)
  t.match(text, /amount_mismatch The amount paid differs from the amount the merchant registered/, 'the anomaly and what it means')

  const items = timelineItems(res.body)
  t.same(items.map(item => item.position), [1, 2, 3, 4], 'every delivery, oldest first')
  t.match(items[0]!.text, /#1 OrderPlaced applied Recorded 2026-06-01 10:00:00 UTC Gateway merchant Delivery id order:O-1:1000:CNY Signature merchant token \(registration\): verified Registered 10\.00 CNY/)
  t.match(items[1]!.text, /#2 PaymentSucceeded applied Recorded 2026-06-01 10:05:00 UTC Gateway generic Delivery id n-1 Signature HMAC-SHA256 over the sorted form fields: verified Amount 12\.50 CNY Transaction id TX-1/)
  t.match(items[2]!.text, /#3 PaymentSucceeded repeat repeat of delivery #2 Recorded 2026-06-01 10:06:00 UTC/)
  t.match(items[3]!.text, /#4 PaymentSucceeded repeat same fact as #2/)
  t.match(res.body, /<li id="p3" class="entry repeat">[\s\S]*?repeat of delivery <a href="#p2">#2<\/a>/, 'a repeat links to its first delivery on the page')

  // The raw request: headers and the body as stored, and the decoded form beside it.
  const stored = (await app.inject({ url: '/admin/orders/O-1/events', headers: adminAuth })).json() as { events: Array<{ metadata: { raw: { body: string } } }> }
  const formBody = stored.events[1]!.metadata.raw.body
  const jsonBody = stored.events[3]!.metadata.raw.body
  const item2 = /<li id="p2"[\s\S]*?<\/li>/.exec(res.body)![0]
  t.match(item2, /<details class="raw"><summary>Raw request \(application\/x-www-form-urlencoded, \d+ bytes\)<\/summary>/)
  const shown = /<pre class="raw-body" tabindex="0">([^<]*)<\/pre>/.exec(item2)![1]!
  t.equal(textOf(shown), formBody, 'the body exactly as stored')
  t.match(textOf(item2), /Form fields, decoded Field Value order_id O-1 amount 12\.50 .* subject Tea sign [0-9a-f]{64}/, 'the form decoded into a table')
  const item4 = /<li id="p4"[\s\S]*?<\/li>/.exec(res.body)![0]
  t.equal(textOf(/<pre class="raw-body" tabindex="0">([^<]*)<\/pre>/.exec(item4)![1]!), jsonBody)
  t.match(item4, /JSON, pretty-printed<\/p><pre class="raw-json" tabindex="0">\{\n {2}&#34;/, 'JSON pretty-printed beside the bytes')
  t.match(textOf(item4), /"subject": "Tea again"/)

  t.match(res.body, /<div id="timeline" data-live-src="\/console\/orders\/O-1\/timeline">/, 'the timeline is a live part')
  t.match(res.body, /<script src="\/console\/assets\/live\.js" defer><\/script>/)
  t.match(res.body, /<a class="button secondary" href="\/console\/orders\/O-1\/history\.ndjson" download>/)

  t.equal((await getPage(app, cookie, '/console/orders/NOPE')).statusCode, 404)
  t.equal((await getPage(app, cookie, '/console/orders/bad%20id')).statusCode, 404)
  t.equal((await getPage(app, cookie, '/console/orders/O-1?cursor=x')).statusCode, 400)
  t.equal((await app.inject({ url: '/console/orders/O-1' })).statusCode, 303, 'signed out: no order page')
})

tap.test('bodies stored apart by hash and base64 bodies: shown as stored, labelled', async t => {
  const { app, cookie, store } = await setUp(t)
  const subject = 'x'.repeat(5000)
  await notify(app, { order_id: 'BIG-1', amount: '1.00', status: '1', trade_no: 'TB-1', subject })
  const apart = store.sqlite.prepare('SELECT count(*) FROM raw_bodies').pluck().get() as number
  t.equal(apart, 1, 'the 5 kB body is stored once, apart from its event')
  const big = await getPage(app, cookie, '/console/orders/BIG-1')
  t.match(textOf(big.body), `subject=${subject}&sign=`, 'the body is put back from raw_bodies')

  const body = Buffer.from([0xff, 0x00, 0x10, 0x80]).toString('base64')
  await store.eventLog.append([{
    streamId: 'B64-1',
    type: 'PaymentPending',
    data: { orderId: 'B64-1', amount: 100, currency: 'CNY', gateway: 'alipay', transactionId: null, refundId: null, cumulative: false, gatewayStatus: 'WAIT_BUYER_PAY', gatewayTime: null },
    metadata: { gateway: 'alipay', deliveryId: 'b64', receivedAt: '2026-06-01T00:00:00.000Z', requestId: 'r', raw: { body, encoding: 'base64', contentType: 'application/x-www-form-urlencoded', headers: { 'x-test': 'h<1>' } } }
  } as NewEvent])
  const page = await getPage(app, cookie, '/console/orders/B64-1')
  t.match(page.body, /Body exactly as stored \(base64\)<\/p><pre class="raw-body" tabindex="0">\/wAQgA&#61;&#61;<\/pre>/, 'base64 shown as base64, and said so')
  t.match(page.body, /Stored as base64 \(the bytes were not UTF-8\)/)
  t.match(page.body, /<td class="mono hash">x-test<\/td><td class="mono hash">h&#60;1&#62;<\/td>/, 'headers as stored, escaped')
  t.match(textOf(page.body), /Signature RSA2 \(SHA256withRSA, Alipay public key\): verified/)
})

tap.test('signed fields carrying markup are shown as text, never as markup', async t => {
  const { app, cookie } = await setUp(t)
  const script = '<script>alert(1)</script>'
  const img = '<img src=x onerror=alert(1)>'
  await notify(app, { order_id: 'XSS-1', amount: '1.00', status: '1', trade_no: script, notify_id: '<img/src=x/onerror=alert(1)>', subject: `${script} ${img}`, body: img })
  await notifyJson(app, { order_id: 'XSS-1', amount: '1.00', status: '2', trade_no: 'T-2', notify_id: 'json-1', subject: img })
  for (const url of ['/console/orders/XSS-1', '/console/orders/XSS-1/timeline', '/console/orders?q=XSS-1', '/console/review']) {
    const res = await getPage(app, cookie, url)
    t.equal(res.statusCode, 200, url)
    t.notMatch(res.body, /<script>|<img/i, `${url}: no markup from the callback`)
    t.notMatch(res.body, /onerror=/i, `${url}: no handler attribute`)
  }
  const page = await getPage(app, cookie, '/console/orders/XSS-1')
  const text = textOf(page.body)
  t.match(text, 'Transaction id <script>alert(1)</script>', 'the transaction id is shown as text')
  t.match(text, 'Delivery id <img/src=x/onerror=alert(1)>')
  t.match(text, `subject ${script} ${img}`, 'the decoded form shows the subject as text')
  t.match(text, `"subject": "${img}"`, 'and the pretty JSON')
  t.match(page.body, /&#60;script&#62;alert\(1\)&#60;\/script&#62;/)
})

tap.test('a long timeline is paged; a repeat on a later page links to the page of its first delivery', async t => {
  const { app, cookie, store } = await setUp(t)
  const event = (deliveryId: string, transactionId: string): NewEvent => ({
    streamId: 'LONG-1',
    type: 'PaymentPending',
    data: { orderId: 'LONG-1', amount: 100, currency: 'CNY', gateway: 'generic', transactionId, refundId: null, cumulative: false, gatewayStatus: '0', gatewayTime: null },
    metadata: { gateway: 'generic', deliveryId, receivedAt: '2026-06-01T00:00:00.000Z', requestId: `r-${deliveryId}`, raw: { body: `notify_id=${deliveryId}`, encoding: 'utf8', contentType: 'application/x-www-form-urlencoded', headers: {} } }
  } as NewEvent)
  await store.eventLog.append(Array.from({ length: 119 }, (_, i) => event(`d-${i}`, `T-${i}`)))
  await store.eventLog.append([event('d-3', 'T-3')])

  const first = await getPage(app, cookie, '/console/orders/LONG-1')
  t.same(timelineItems(first.body).map(item => item.position), Array.from({ length: 50 }, (_, i) => i + 1), 'the first page: 50 deliveries')
  t.match(textOf(first.body), /Showing events 1-50 of 120, oldest first/)
  t.match(first.body, /<a href="\/console\/orders\/LONG-1\?cursor=50" rel="next">Later deliveries<\/a>/)
  t.match(first.body, /<a href="\/console\/orders\/LONG-1\?cursor=70">Latest deliveries<\/a>/)

  const last = await getPage(app, cookie, '/console/orders/LONG-1?cursor=100')
  const items = timelineItems(last.body)
  t.same(items.map(item => item.position), Array.from({ length: 20 }, (_, i) => i + 101))
  t.match(items[19]!.text, /#120 PaymentPending repeat repeat of delivery #4/)
  t.match(last.body, /repeat of delivery <a href="\/console\/orders\/LONG-1\?cursor&#61;3#p4">#4<\/a>/, 'the link opens the page that starts with the first delivery')
  t.match(last.body, /data-live-src="\/console\/orders\/LONG-1\/timeline\?cursor&#61;100"/, 'the live part refreshes the page shown')
  t.match(last.body, /<a href="\/console\/orders\/LONG-1\?cursor=50">Earlier deliveries<\/a>/)
  t.notMatch(last.body, /rel="next"/, 'the last page has no later one')
  const target = await getPage(app, cookie, '/console/orders/LONG-1?cursor=3')
  t.equal(timelineItems(target.body)[0]!.position, 4, 'that page starts with it')
})

tap.test('the timeline fragment is what live.js fetches: a new delivery is in it at once', async t => {
  const { app, cookie } = await setUp(t)
  await notify(app, { order_id: 'LIVE-1', amount: '1.00', status: '0', notify_id: 'live-a' })
  const before = await getPage(app, cookie, '/console/orders/LIVE-1/timeline')
  t.equal(before.statusCode, 200)
  t.equal(before.headers['content-type'], 'text/html; charset=utf-8')
  t.notMatch(before.body, /<html|<main/, 'a fragment, not a page')
  t.same(timelineItems(before.body).map(item => item.position), [1])
  await notify(app, { order_id: 'LIVE-1', amount: '1.00', status: '1', notify_id: 'live-b', trade_no: 'TL-B' })
  const after = await getPage(app, cookie, '/console/orders/LIVE-1/timeline')
  t.same(timelineItems(after.body).map(item => item.position), [1, 2])
  t.match(timelineItems(after.body)[1]!.text, /PaymentSucceeded applied .* Delivery id live-b/)
  t.equal((await getPage(app, cookie, '/console/orders/NOPE/timeline')).statusCode, 404)
  t.equal((await app.inject({ url: '/console/orders/LIVE-1/timeline' })).statusCode, 303, 'signed out: no fragment')
})

tap.test('the history download is `paynotify export --order`, and `paynotify replay` rebuilds the order from it', async t => {
  const { app, cookie, dbPath } = await setUp(t)
  await register(app, 'H-1', '5.00')
  await notify(app, { order_id: 'OTHER', amount: '1.00', status: '1', trade_no: 'T-O' })
  await notify(app, { order_id: 'H-1', amount: '5.00', status: '1', trade_no: 'T-H', notify_id: 'h-1' })
  await notify(app, { order_id: 'H-1', amount: '5.00', status: '1', trade_no: 'T-H', notify_id: 'h-1' })
  await notify(app, { order_id: 'H-1', amount: '2.00', status: '3', trade_no: 'T-H', refund_no: 'R-1', notify_id: 'h-2' })
  const res = await getPage(app, cookie, '/console/orders/H-1/history.ndjson')
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-disposition'], 'attachment; filename="order-H-1.ndjson"')
  t.equal(res.headers['content-type'], 'application/x-ndjson; charset=utf-8')
  t.same(res.body.trimEnd().split('\n').map(line => (JSON.parse(line) as { streamId: string }).streamId), ['H-1', 'H-1', 'H-1', 'H-1'])

  const dir = tempDir(t)
  const file = join(dir, 'H-1.ndjson')
  writeFileSync(file, res.body)
  const env = isolatedEnv(t)
  const [exported, replayed] = await Promise.all([runCli(['export', '--db', dbPath, '--order', 'H-1'], env), runCli(['replay', file, '--json'], env)])
  t.equal(exported.code, 0, exported.stderr)
  t.equal(res.body, exported.stdout, 'byte for byte what the CLI exports')
  t.equal(replayed.code, 0, replayed.stderr)
  const admin = (await app.inject({ url: '/admin/orders/H-1', headers: adminAuth })).json() as Record<string, unknown>
  const [order] = JSON.parse(replayed.stdout) as Array<Record<string, unknown>>
  t.same([order!.orderId, order!.status, order!.paidAmount, order!.refundedAmount, order!.duplicateCount], [admin.orderId, 'partially_refunded', 500, 200, 1], 'replay gives the order the service shows')
  t.equal((await getPage(app, cookie, '/console/orders/NOPE/history.ndjson')).statusCode, 404)
})
