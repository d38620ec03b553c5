import t from 'tap'
import type { NewEvent } from '../../src/event-log/event-log.js'
import { adminAuth, buildTestApp } from '../helpers.js'

// Issue 10 §1: an order's timeline is paged (limit and cursor, as the order list is), so no read
// holds a whole history, and every page marks repeats exactly as a fold of the whole history does.

interface Entry { position: number, streamVersion: number, outcome: string, duplicateReason?: string, duplicateOf?: number, metadata: { deliveryId: string } }
interface Page { orderId: string, events: Entry[], nextCursor: number | null, unstoredRepeats: number }

function payment (orderId: string, type: 'PaymentSucceeded' | 'PaymentRefunded' | 'PaymentPending', deliveryId: string, transactionId: string, amount = 5000): NewEvent {
  return {
    streamId: orderId,
    type,
    data: { orderId, amount, currency: 'CNY', gateway: 'generic', transactionId, refundId: type === 'PaymentRefunded' ? `R-${transactionId}` : null, cumulative: false, gatewayStatus: '1', gatewayTime: null },
    metadata: { gateway: 'generic', deliveryId, receivedAt: '2026-06-01T00:00:00.000Z', requestId: `req-${deliveryId}`, raw: { body: `notify_id=${deliveryId}`, encoding: 'utf8', contentType: 'application/x-www-form-urlencoded', headers: {} } }
  } as NewEvent
}

t.test('GET /admin/orders/:id/events pages with limit and cursor; pages mark repeats as the whole history does', async t => {
  const { app, store } = await buildTestApp(t)
  // A history whose repeats refer back across any page boundary: retries of one delivery,
  // a second delivery of the same fact, a refund and its retries, interleaved with another order.
  const history: NewEvent[] = [
    payment('TL-1', 'PaymentPending', 'p-1', 'T-1'),
    payment('TL-1', 'PaymentSucceeded', 'paid-1', 'T-1'),
    payment('OTHER', 'PaymentSucceeded', 'o-1', 'T-9'),
    ...Array.from({ length: 6 }, () => payment('TL-1', 'PaymentSucceeded', 'paid-1', 'T-1')),
    payment('TL-1', 'PaymentSucceeded', 'paid-1-twin', 'T-1'),
    payment('TL-1', 'PaymentRefunded', 'refund-1', 'T-1', 1000),
    ...Array.from({ length: 4 }, () => payment('TL-1', 'PaymentRefunded', 'refund-1', 'T-1', 1000)),
    payment('TL-1', 'PaymentPending', 'p-1', 'T-1')
  ]
  for (const event of history) await store.eventLog.append([event])
  const get = async (query: string): Promise<{ statusCode: number, json: () => unknown }> =>
    await app.inject({ url: `/admin/orders/TL-1/events${query}`, headers: adminAuth })

  const whole = (await get('?limit=500')).json() as Page
  t.equal(whole.events.length, 15)
  t.equal(whole.nextCursor, null)
  t.same(whole.events.map(e => e.streamVersion), Array.from({ length: 15 }, (_, i) => i + 1))
  t.equal(whole.events.filter(e => e.outcome === 'applied').length, 3, 'pending, paid, refunded: three facts')
  t.equal(whole.events.find(e => e.metadata.deliveryId === 'paid-1-twin')?.duplicateReason, 'fact')

  for (const limit of [1, 2, 3, 5, 14]) {
    const pages: Page[] = []
    let cursor: number | null = 0
    // Bounded: a route that ignored the cursor would answer the same page for ever.
    while (cursor !== null && pages.length <= 15) {
      const res = await get(`?limit=${limit}&cursor=${cursor}`)
      t.equal(res.statusCode, 200)
      const page = res.json() as Page
      t.ok(page.events.length <= limit, `limit ${limit}: a page holds at most ${limit}`)
      pages.push(page)
      cursor = page.nextCursor
    }
    t.equal(pages.length, Math.ceil(15 / limit), `limit ${limit}: ${pages.length} pages`)
    t.same(pages.flatMap(page => page.events), whole.events, `limit ${limit}: the pages together are the whole timeline, repeats marked the same`)
  }
  const last = (await get('?limit=3&cursor=13')).json() as Page
  t.same(last.events.map(e => [e.metadata.deliveryId, e.outcome, e.duplicateReason, e.duplicateOf]),
    [['refund-1', 'duplicate', 'delivery', whole.events[9]!.position], ['p-1', 'duplicate', 'delivery', whole.events[0]!.position]],
    'a repeat on a late page points back to its first delivery on an earlier page')

  t.same((await get('?cursor=15')).json(), { orderId: 'TL-1', events: [], nextCursor: null, unstoredRepeats: 0 }, 'past the end: an empty last page')
  t.equal((await get('?limit=0')).statusCode, 400)
  t.equal((await get('?limit=501')).statusCode, 400)
  t.equal((await get('?cursor=-1')).statusCode, 400)
  t.equal((await get('?cursor=x')).statusCode, 400)
  t.equal((await app.inject({ url: '/admin/orders/NOPE/events?cursor=3', headers: adminAuth })).statusCode, 404)
})

t.test('the timeline answers one page by default, however long the history', async t => {
  const { app, store } = await buildTestApp(t)
  await store.eventLog.append(Array.from({ length: 250 }, (_, i) => payment('LONG-1', 'PaymentPending', `d-${i}`, `T-${i}`, 100 + i)))
  const first = (await app.inject({ url: '/admin/orders/LONG-1/events', headers: adminAuth })).json() as Page
  t.equal(first.events.length, 100, 'the default page is 100 entries')
  t.equal(first.nextCursor, 100)
  const second = (await app.inject({ url: `/admin/orders/LONG-1/events?cursor=${first.nextCursor}&limit=500`, headers: adminAuth })).json() as Page
  t.same(second.events.map(e => e.streamVersion), Array.from({ length: 150 }, (_, i) => 101 + i))
  t.equal(second.nextCursor, null)
})
