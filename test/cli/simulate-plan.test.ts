import { createHmac } from 'node:crypto'
import fc from 'fast-check'
import t from 'tap'
import { alipayRetryMinutes, retryDelayMs } from '../../src/cli/simulate-deliver.js'
import { planSimulation, signedGenericBody, type PlanOptions } from '../../src/cli/simulate-plan.js'
import { createGenericAdapter } from '../../src/gateways/generic.js'
import { streamIdOf, type RecordedEvent } from '../../src/orders/events.js'
import { evolve, initialOrderState, orderView, type OrderState } from '../../src/orders/order-fold.js'

const secret = 'plan-test-secret-0123456789'
const now = new Date('2026-03-01T08:00:00.000Z')
const base: PlanOptions = { orders: 40, duplicates: 0.3, refunds: 0.5, shuffle: true, seed: 1, prefix: 'p', currency: 'CNY' }
const timestamp = String(now.getTime() / 1000)

/** The seed PHP sender's signature, written out independently of src/: ksort, drop empty values and sign, join k=v with &. */
function phpSign (params: URLSearchParams): string {
  const pairs = [...params.entries()].filter(([k, v]) => k !== 'sign' && k !== 'sign_type' && v !== '').sort(([a], [b]) => (a < b ? -1 : 1))
  return createHmac('sha256', secret).update(pairs.map(([k, v]) => `${k}=${v}`).join('&')).digest('hex')
}

t.test('every body is signed as the PHP sender signs it, keys sorted and sign last', async t => {
  const plan = planSimulation(base)
  t.ok(plan.callbacks.length >= base.orders)
  for (const callback of plan.callbacks) {
    const params = new URLSearchParams(signedGenericBody({ ...callback.params, timestamp }, secret))
    const keys = [...params.keys()]
    t.equal(keys.at(-1), 'sign')
    t.same(keys.slice(0, -1), [...keys.slice(0, -1)].sort())
    t.equal(params.get('sign'), phpSign(params))
    t.equal(params.get('timestamp'), timestamp)
    t.equal(params.get('notify_id'), callback.notifyId)
  }
})

t.test('one seed gives one plan; another seed another', async t => {
  t.same(planSimulation(base), planSimulation(base))
  t.notSame(planSimulation(base).expected, planSimulation({ ...base, seed: 2 }).expected)
})

t.test('duplicates and shuffle change the deliveries, never the callbacks', async t => {
  const plain = planSimulation({ ...base, duplicates: 0, shuffle: false })
  t.same(plain.deliveries.map(d => d.callback), plain.callbacks, 'no duplicates, no shuffle: plan order')
  const twice = planSimulation({ ...base, duplicates: 1, shuffle: false })
  t.equal(twice.deliveries.length, 2 * twice.callbacks.length)
  const shuffled = planSimulation({ ...base, duplicates: 0.5, shuffle: true })
  const key = (d: { callback: { notifyId: string }, copy: number }): string => `${d.callback.notifyId}#${d.copy}`
  t.notSame(shuffled.deliveries.map(key), [...shuffled.deliveries].sort((a, b) => (key(a) < key(b) ? -1 : 1)).map(key), 'shuffled')
  t.same(new Set(shuffled.deliveries.map(d => d.callback.notifyId)), new Set(shuffled.callbacks.map(c => c.notifyId)), 'every callback delivered')
  t.ok(shuffled.deliveries.some(d => d.copy === 1) && shuffled.deliveries.some(d => d.copy === 0))
})

t.test('the plan covers every scenario', async t => {
  const plan = planSimulation({ ...base, orders: 200 })
  t.same(new Set(plan.expected.map(o => o.status)), new Set(['paid', 'partially_refunded', 'refunded']))
  for (const step of ['pending', 'failed', 'refund full', 'refund partial', 'refund rest']) {
    t.ok(plan.expected.some(o => o.scenario.split(', ').includes(step)), step)
  }
  const none = planSimulation({ ...base, orders: 50, refunds: 0 })
  t.ok(none.expected.every(o => o.status === 'paid' && o.refundedAmount === 0))
})

t.test('folding the callbacks in delivery order, through the real adapter, gives the expected states', async t => {
  const adapter = createGenericAdapter({ secret, defaultCurrency: 'CNY' })
  fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 31 }), fc.double({ min: 0, max: 1, noNaN: true }), (seed, duplicates) => {
    const plan = planSimulation({ ...base, orders: 6, seed, duplicates })
    const states = new Map<string, OrderState>()
    plan.deliveries.forEach((delivery, i) => {
      const callback = { body: Buffer.from(signedGenericBody({ ...delivery.callback.params, timestamp }, secret)), mediaType: 'application/x-www-form-urlencoded', contentType: 'application/x-www-form-urlencoded', headers: {} }
      for (const n of adapter.parse(adapter.verify(callback, now), callback)) {
        const orderId = streamIdOf(n)
        const event = {
          type: n.type,
          data: n.data,
          position: i + 1,
          streamId: orderId,
          streamVersion: 0,
          schemaVersion: 1,
          metadata: { gateway: 'generic', deliveryId: n.deliveryId, receivedAt: now.toISOString(), requestId: `r${i}` },
          recordedAt: now.toISOString(),
          hash: ''
        } as RecordedEvent
        states.set(orderId, evolve(states.get(orderId) ?? initialOrderState(orderId), event).state)
      }
    })
    for (const expected of plan.expected) {
      const view = orderView(states.get(expected.orderId)!, { ordersRegistered: false })
      const got = { status: view.status, paidAmount: view.paidAmount, refundedAmount: view.refundedAmount, currency: view.currency, anomalies: view.anomalies }
      const want = { status: expected.status, paidAmount: expected.paidAmount, refundedAmount: expected.refundedAmount, currency: expected.currency, anomalies: expected.anomalies }
      if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`${expected.orderId} (${expected.scenario}): ${JSON.stringify(got)} ≠ ${JSON.stringify(want)}`)
    }
  }), { numRuns: 50 })
  t.pass('50 random seeds')
})

t.test("the retry schedule is Alipay's, compressed", async t => {
  t.same([1, 2, 3, 4, 5, 6, 7].map(retry => retryDelayMs(retry, 1)), [...alipayRetryMinutes])
  t.equal(retryDelayMs(1, 60_000), 4 * 60_000, 'one minute per minute is the real schedule')
  t.equal(retryDelayMs(20, 1), 900, 'past the end, the last gap repeats')
})
