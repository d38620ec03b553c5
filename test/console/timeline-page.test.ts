import fc from 'fast-check'
import tap from 'tap'
import { readConsoleTimelinePage } from '../../src/console/timeline-page.js'
import type { NewEvent } from '../../src/event-log/event-log.js'
import { readTimelinePage } from '../../src/event-log/timeline.js'
import { buildTestApp } from '../helpers.js'
import { checkProperty, deliveriesArb } from '../orders/arbitraries.js'

// The console marks repeats from the order's stored state (first positions) instead of folding
// the history before a page: every page must be the one readTimelinePage (the fold) gives.

tap.test('every page of the console\'s timeline is readTimelinePage\'s, for any deliveries in any order', async t => {
  const { store } = await buildTestApp(t)
  let run = 0
  await checkProperty(t, 'console timeline = folded timeline', fc.asyncProperty(
    deliveriesArb('P', 8).chain(deliveries => fc.shuffledSubarray(deliveries, { minLength: deliveries.length })),
    fc.integer({ min: 1, max: 4 }),
    async (deliveries, limit) => {
      const orderId = `P-${++run}`
      const events = deliveries.map((delivery, i): NewEvent => ({
        ...delivery.event,
        data: { ...delivery.event.data, orderId },
        streamId: orderId,
        metadata: { gateway: delivery.gateway, deliveryId: delivery.deliveryId, receivedAt: '2026-06-01T00:00:00.000Z', requestId: `r-${run}-${i}` }
      }) as NewEvent)
      // Some in one batch, the rest one by one: the stored state is the same either way.
      await store.eventLog.append(events.slice(0, 3))
      for (const event of events.slice(3)) await store.eventLog.append([event])
      for (let cursor = 0; cursor <= events.length; cursor++) {
        const folded = await readTimelinePage(store.sqlite, store.db, orderId, cursor, limit)
        const console = await readConsoleTimelinePage(store.sqlite, store.db, orderId, cursor, limit)
        if (JSON.stringify(console) !== JSON.stringify(folded)) return false
      }
      return true
    }), 150)
})

tap.test('an order the projection does not hold, and a cursor past the end, answer as readTimelinePage does', async t => {
  const { store } = await buildTestApp(t)
  t.same(await readConsoleTimelinePage(store.sqlite, store.db, 'NOPE', 0, 10), await readTimelinePage(store.sqlite, store.db, 'NOPE', 0, 10))
  await store.eventLog.append([{ streamId: 'E-1', type: 'OrderPlaced', data: { orderId: 'E-1', amount: 1, currency: 'CNY' }, metadata: { gateway: 'merchant', deliveryId: 'order:E-1', receivedAt: '2026-06-01T00:00:00.000Z', requestId: 'r' } } as NewEvent])
  t.same(await readConsoleTimelinePage(store.sqlite, store.db, 'E-1', 5, 10), await readTimelinePage(store.sqlite, store.db, 'E-1', 5, 10))
})
