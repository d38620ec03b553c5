import tap, { type Test } from 'tap'
import { sessionCookie } from '../../src/console/plugin.js'
import type { NewEvent } from '../../src/event-log/event-log.js'
import { adminAuth, buildTestApp } from '../helpers.js'
import { csrfOf, getPage, postForm, signIn } from './console-helpers.js'
import { notify, register, TestClock, textOf } from './order-fixtures.js'

/** Order ids of the queue, in page order. */
function queued (body: string): string[] {
  return [...body.matchAll(/<li class="card review-item">\s*<h2><a class="mono" href="\/console\/orders\/([^"]+)">/g)].map(m => decodeURIComponent(m[1]!))
}

/** Three orders to review, first seen in the opposite order of their ids, and one without anomalies. */
async function setUp (t: Test): Promise<Awaited<ReturnType<typeof buildTestApp>> & { cookie: string, clock: TestClock }> {
  const clock = new TestClock('2026-06-01T10:00:00.000Z')
  const built = await buildTestApp(t, { store: { clock: clock.now } })
  const { app } = built
  await register(app, 'Z-early', '10.00')
  await notify(app, { order_id: 'Z-early', amount: '11.00', status: '1', trade_no: 'T-Z' })
  clock.set('2026-06-02T10:00:00.000Z')
  await register(app, 'M-mid', '10.00')
  await notify(app, { order_id: 'M-mid', amount: '10.00', status: '1', trade_no: 'T-M1' })
  await notify(app, { order_id: 'M-mid', amount: '10.00', status: '1', trade_no: 'T-M2' })
  await register(app, 'OK-1', '10.00')
  await notify(app, { order_id: 'OK-1', amount: '10.00', status: '1', trade_no: 'T-OK' })
  clock.set('2026-06-03T10:00:00.000Z')
  await notify(app, { order_id: 'A-late', amount: '5.00', status: '1', trade_no: 'T-A' })
  return { ...built, clock, cookie: await signIn(app) }
}

tap.test('the review queue: orders needing review, oldest first, with their anomalies explained and a note form each', async t => {
  const { app, cookie } = await setUp(t)
  const res = await getPage(app, cookie, '/console/review')
  t.equal(res.statusCode, 200)
  t.same(queued(res.body), ['Z-early', 'M-mid', 'A-late'], 'by first event, not by id; OK-1 has nothing to review')
  const text = textOf(res.body)
  t.match(text, /3 orders need review, oldest first/)
  t.match(text, /Z-early paid Paid 11\.00 CNY .* amount_mismatch The amount paid differs/)
  t.match(text, /M-mid paid .* duplicate_payment The gateway reports more than one successful payment/)
  t.match(text, /A-late .* unknown_order Payment reports arrived for an order the merchant never registered/)
  const csrf = await csrfOf(app, cookie)
  const forms = [...res.body.matchAll(/<form method="post" action="([^"]+)" class="review-note">\s*<input type="hidden" name="_csrf" value="([^"]+)">/g)]
  t.same(forms.map(m => [m[1], m[2]]), ['Z-early', 'M-mid', 'A-late'].map(id => [`/console/orders/${id}/review-notes`, csrf]), 'one form per order, each with the CSRF token')
})

tap.test('recording a note: back to the queue with a note, the order leaves it, the note is in its timeline, money unchanged', async t => {
  const { app, cookie, store } = await setUp(t)
  const before = (await app.inject({ url: '/admin/orders/M-mid', headers: adminAuth })).json() as Record<string, unknown>
  const res = await postForm(app, cookie, '/console/orders/M-mid/review-notes', { note: 'Refunded T-M2 by hand <b>now</b>', back: 'review' })
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, '/console/review?recorded=M-mid')
  const queue = await getPage(app, cookie, String(res.headers.location))
  t.match(textOf(queue.body), /Note recorded on order M-mid: it has left the queue\. 2 orders need review/)
  t.same(queued(queue.body), ['Z-early', 'A-late'])

  const after = (await app.inject({ url: '/admin/orders/M-mid', headers: adminAuth })).json() as Record<string, unknown>
  t.same({ ...after, needsReview: before.needsReview, version: before.version, lastPosition: before.lastPosition, updatedAt: before.updatedAt }, before, 'only review state, version and times changed: money and anomalies as they were')
  t.equal(after.needsReview, false)

  const page = await getPage(app, cookie, '/console/orders/M-mid')
  const last = [...page.body.matchAll(/<li id="p\d+" class="entry[^"]*">([\s\S]*?)<\/li>/g)].at(-1)![1]!
  t.match(textOf(last), /ReviewNoteRecorded applied .* Gateway admin .* Signature admin token \(console or admin API\): verified Review note Refunded T-M2 by hand <b>now<\/b> Resolves duplicate_payment/, 'the note, as text, in the timeline')
  t.notMatch(page.body, /<b>now/, 'the note\'s markup is escaped')
  t.match(textOf(page.body), /A review note has resolved these: see the timeline/)
  t.notMatch(page.body, /class="review-note"/, 'no form once reviewed')

  // From the order's own page, back to it.
  const events = Number(store.sqlite.prepare('select count(*) from events').pluck().get())
  const fromOrder = await postForm(app, cookie, '/console/orders/Z-early/review-notes', { note: 'customer contacted', back: 'order' })
  t.equal(fromOrder.statusCode, 303)
  t.equal(fromOrder.headers.location, '/console/orders/Z-early?noted=1#timeline')
  t.equal(Number(store.sqlite.prepare('select count(*) from events').pluck().get()), events + 1, 'one event: the note')
  const noted = await getPage(app, cookie, '/console/orders/Z-early?noted=1')
  t.match(textOf(noted.body), /Review note recorded: it is in the timeline/)
})

tap.test('a note is refused without the CSRF token, when empty, and when nothing is left to review; nothing is stored', async t => {
  const { app, cookie, store } = await setUp(t)
  const events = (): number => Number(store.sqlite.prepare('select count(*) from events').pluck().get())
  const count = events()
  const forged = await app.inject({ method: 'POST', url: '/console/orders/Z-early/review-notes', cookies: { [sessionCookie]: cookie }, payload: { note: 'from elsewhere' } })
  t.equal(forged.statusCode, 403)
  const signedOut = await app.inject({ method: 'POST', url: '/console/orders/Z-early/review-notes', payload: { note: 'x', _csrf: await csrfOf(app, cookie) } })
  t.equal(signedOut.statusCode, 401)
  const empty = await postForm(app, cookie, '/console/orders/Z-early/review-notes', { note: '   ' })
  t.equal(empty.statusCode, 400)
  t.match(textOf(empty.body), /Order Z-early: note: must not be empty/)
  t.same(queued(empty.body), ['Z-early', 'M-mid', 'A-late'], 'the queue again, unchanged')
  const nothing = await postForm(app, cookie, '/console/orders/OK-1/review-notes', { note: 'all fine' })
  t.equal(nothing.statusCode, 409)
  t.match(textOf(nothing.body), /Order OK-1: order OK-1 has no anomaly left to review/)
  const missing = await postForm(app, cookie, '/console/orders/NOPE/review-notes', { note: 'who' })
  t.equal(missing.statusCode, 404)
  t.equal(events(), count, 'no event stored')
})

tap.test('a long queue is paged oldest first with a cursor', async t => {
  const clock = new TestClock('2026-06-01T00:00:00.000Z')
  const { app, store } = await buildTestApp(t, { store: { clock: clock.now } })
  // Ids in the reverse of their age: the queue's order is the clock's, not the ids'.
  for (let i = 0; i < 30; i++) {
    clock.set(new Date(Date.parse('2026-06-01T00:00:00.000Z') + i * 60_000).toISOString())
    const orderId = `Q${String(99 - i).padStart(2, '0')}`
    await store.eventLog.append([{
      streamId: orderId,
      type: 'PaymentSucceeded',
      data: { orderId, amount: 0, currency: 'CNY', gateway: 'generic', transactionId: `T-${orderId}`, refundId: null, cumulative: false, gatewayStatus: '1', gatewayTime: null },
      metadata: { gateway: 'generic', deliveryId: orderId, receivedAt: '2026-06-01T00:00:00.000Z', requestId: `r-${orderId}` }
    } as NewEvent])
  }
  const cookie = await signIn(app)
  const first = await getPage(app, cookie, '/console/review')
  t.same(queued(first.body), Array.from({ length: 25 }, (_, i) => `Q${99 - i}`))
  const next = /<a href="([^"]+)" rel="next">Next page<\/a>/.exec(first.body)![1]!.replaceAll('&#61;', '=').replaceAll('&#38;', '&')
  const second = await getPage(app, cookie, next)
  t.same(queued(second.body), ['Q74', 'Q73', 'Q72', 'Q71', 'Q70'])
  t.notMatch(second.body, /rel="next"/)
  t.equal((await getPage(app, cookie, '/console/review?cursor=nonsense')).statusCode, 400)
})
