import { join } from 'node:path'
import fc from 'fast-check'
import t from 'tap'
import { iterateRows, rowToEvent } from '../../src/event-log/read.js'
import { isOrderStream, type RecordedEvent } from '../../src/orders/events.js'
import { foldOrder } from '../../src/orders/order-fold.js'
import { orderRowValues } from '../../src/projection/projector.js'
import { openStore, type Store } from '../../src/store.js'
import { buildTestApp, formHeaders, merchantAuth, signedForm, tempDir } from '../helpers.js'
import { checkProperty, deliveriesArb, linkedReports, reportsArb, toNewEvent } from './arbitraries.js'

const columns = ['order_id', 'status', 'needs_review', 'anomalies', 'expected_amount', 'expected_currency', 'paid_amount',
  'refunded_amount', 'currency', 'gateway', 'gateway_trade_no', 'duplicate_count', 'version', 'last_position',
  'first_seen_at', 'updated_at', 'state'] as const

/**
 * Compares every row of the live orders table with a fresh fold of its
 * stream read back from the log (with the unattributed reports that join
 * it), and the checkpoint with the log's tail.
 */
function compareWithFreshFold (store: Store): { equal: boolean, live: unknown[], fresh: unknown[] } {
  const streams = new Map<string, RecordedEvent[]>()
  for (const row of iterateRows(store.sqlite)) {
    const event = rowToEvent(row)
    streams.set(event.streamId, [...(streams.get(event.streamId) ?? []), event])
  }
  const context = { ordersRegistered: [...streams.values()].some(events => events.some(e => e.type === 'OrderPlaced')) }
  const reports = [...streams].flatMap(([id, events]) => isOrderStream(id) ? [] : events)
  const fresh = [...streams.keys()].filter(isOrderStream).sort().map(id => {
    const state = foldOrder(id, streams.get(id)!)
    return orderRowValues(state, context, linkedReports(Object.values(state.facts), reports))
  })
  const live = store.sqlite.prepare(`SELECT ${columns.join(', ')} FROM orders ORDER BY order_id`).raw().all() as unknown[][]
  const equal = JSON.stringify(live) === JSON.stringify(fresh) && store.projector.lastPosition() === store.eventLog.tail.position
  return { equal, live, fresh }
}

const orderIds = ['A', 'B', 'C'] as const

t.test('law: the live projection equals a fresh fold of each stream, whatever the batching and whichever comes first, a report or its order', async t => {
  const dir = tempDir(t)
  let run = 0
  const property = fc.asyncProperty(
    fc.tuple(reportsArb(), ...orderIds.map(id => deliveriesArb(id, 6))).chain(([reports, ...perOrder]) => {
      const all = [...reports, ...perOrder.flat()].map(toNewEvent)
      return fc.tuple(
        fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length }),
        // How the interleaved deliveries are grouped into concurrent requests and awaited rounds.
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: all.length, maxLength: all.length }),
        fc.array(fc.boolean(), { minLength: all.length, maxLength: all.length })
      )
    }),
    async ([events, sizes, awaitAfter]) => {
      const store = await openStore(join(dir, `run-${++run}.db`), { synchronous: 'NORMAL' })
      try {
        let pending: Array<Promise<unknown>> = []
        for (let i = 0, k = 0; i < events.length; k++) {
          const size = sizes[k] ?? 1
          pending.push(store.eventLog.append(events.slice(i, i + size)))
          i += size
          if (awaitAfter[k] === true) { await Promise.all(pending); pending = [] }
        }
        await Promise.all(pending)
        return compareWithFreshFold(store).equal
      } finally {
        await store.close()
      }
    })
  await checkProperty(t, 'projection law', property, Number(process.env.PAYNOTIFY_FC_RUNS ?? 60))
})

t.test('a random mix of signed callbacks and registrations over HTTP projects like a fresh fold', async t => {
  const { app, store } = await buildTestApp(t)
  const statuses = ['0', '1', 'paid', '2', '3', '4', 'success', 'refunded']
  const property = fc.asyncProperty(
    fc.array(fc.record({
      order: fc.constantFrom('H1', 'H2', 'H3', 'H4'),
      status: fc.constantFrom(...statuses),
      amount: fc.constantFrom('1', '88.88', '100'),
      tradeNo: fc.constantFrom(undefined, 'T1', 'T2'),
      notifyId: fc.option(fc.constantFrom('n1', 'n2', 'n3', 'n4')),
      register: fc.boolean()
    }), { minLength: 1, maxLength: 25 }),
    async (calls) => {
      // Half go out at once (they share batches), half one after another.
      const send = async (call: typeof calls[number]): Promise<number> => {
        if (call.register && call.status === '0') {
          const res = await app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload: { order_id: call.order, amount: call.amount } })
          return res.statusCode < 300 || res.statusCode === 409 ? 200 : res.statusCode
        }
        const params: Record<string, string> = { order_id: call.order, amount: call.amount, status: call.status }
        if (call.tradeNo !== undefined) params.trade_no = call.tradeNo
        if (call.notifyId !== null) params.notify_id = `${call.order}-${call.notifyId}`
        const res = await app.inject({ method: 'POST', url: '/notify/generic', headers: formHeaders, payload: signedForm(params) })
        return res.statusCode
      }
      const half = Math.ceil(calls.length / 2)
      const codes = await Promise.all(calls.slice(0, half).map(send))
      for (const call of calls.slice(half)) codes.push(await send(call))
      return codes.every(code => code === 200) && compareWithFreshFold(store).equal
    })
  // One database for every run: later runs build on earlier ones, as a live service does.
  await checkProperty(t, 'live projection over HTTP', property, 15)
  const { live } = compareWithFreshFold(store)
  t.ok(live.length > 0, `${live.length} orders projected`)
})

t.test('the first registration re-derives orders seen before it (unknown_order)', async t => {
  const { app, store } = await buildTestApp(t)
  const pay = async (orderId: string): Promise<void> => {
    const res = await app.inject({ method: 'POST', url: '/notify/generic', headers: formHeaders, payload: signedForm({ order_id: orderId, amount: '10', status: '1' }) })
    t.equal(res.statusCode, 200)
  }
  const anomalies = (orderId: string): string[] =>
    JSON.parse((store.sqlite.prepare('SELECT anomalies FROM orders WHERE order_id = ?').get(orderId) as { anomalies: string }).anomalies) as string[]
  await pay('early')
  t.same(anomalies('early'), [], 'no registrations yet: nothing is unknown')
  const res = await app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload: { order_id: 'known', amount: '10' } })
  t.equal(res.statusCode, 201)
  t.same(anomalies('early'), ['unknown_order'], 'an order paid before registrations began is re-derived')
  await pay('known')
  await pay('late')
  t.same(anomalies('known'), [])
  t.same(anomalies('late'), ['unknown_order'])
  t.same(store.projector.context, { ordersRegistered: true })
  t.ok(compareWithFreshFold(store).equal)
})
