import { createHmac } from 'node:crypto'
import { join } from 'node:path'
import fc from 'fast-check'
import t from 'tap'
import { retryDelayMs } from '../../src/cli/simulate-deliver.js'
import { gatewayScenarios, genericParams, retryMinutes, signedGenericBody, simulatedGateway, simulatedGateways, type SimulatedGateway } from '../../src/cli/simulate-gateways.js'
import { planSimulation, type PlanOptions } from '../../src/cli/simulate-plan.js'
import { loadConfig } from '../../src/config.js'
import { createGatewayRegistry } from '../../src/gateways/registry.js'
import { ensureLocalGatewayKeys, localGatewayEnv } from '../../src/local-gateway-keys.js'
import { streamIdOf, type RecordedEvent } from '../../src/orders/events.js'
import { evolve, initialOrderState, orderView, type OrderState } from '../../src/orders/order-fold.js'
import { tempDir, testSecrets } from '../helpers.js'

const secret = 'plan-test-secret-0123456789'
const now = new Date('2026-03-01T08:00:00.000Z')
const base: PlanOptions = { orders: 40, duplicates: 0.3, refunds: 0.5, shuffle: true, seed: 1, prefix: 'p', currency: 'CNY', scenarios: gatewayScenarios.generic }
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
    const params = new URLSearchParams(signedGenericBody({ ...genericParams(callback), timestamp }, secret))
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

t.test('the plan covers every scenario each gateway can report', async t => {
  const steps = (gateway: keyof typeof gatewayScenarios): Set<string> =>
    new Set(planSimulation({ ...base, orders: 200, scenarios: gatewayScenarios[gateway] }).expected.flatMap(o => o.scenario.split(', ')))
  t.same([...steps('generic')].sort(), ['closed', 'failed', 'paid', 'pending', 'refund full', 'refund partial', 'refund rest'])
  t.same([...steps('alipay')].sort(), ['closed', 'paid', 'pending', 'refund full', 'refund partial', 'refund rest'], 'Alipay reports no failed payment')
  t.same([...steps('wechatpay')].sort(), ['paid', 'refund failed', 'refund full', 'refund partial', 'refund rest'], 'WeChat Pay notifies payments and refund outcomes only')
  t.same(new Set(planSimulation({ ...base, orders: 200 }).expected.map(o => o.status)), new Set(['closed', 'paid', 'partially_refunded', 'refunded']))
  const none = planSimulation({ ...base, orders: 50, refunds: 0 })
  t.ok(none.expected.every(o => (o.status === 'paid' || o.status === 'closed') && o.refundedAmount === 0))
})

t.test('every gateway: folding its callbacks in delivery order, through the adapter the service runs, gives the expected states', async t => {
  // The service's own registry, configured with the variables `paynotify keys` prints.
  const { keys } = ensureLocalGatewayKeys(join(tempDir(t), 'keys.db'))
  const config = loadConfig({ PAYNOTIFY_DB: 'unused.db', ...Object.fromEntries(localGatewayEnv(keys)) })
  const registry = createGatewayRegistry(config, { ...testSecrets, genericSecret: secret })
  for (const name of simulatedGateways) {
    const gateway = simulatedGateway(name, { genericSecret: secret, gateways: keys }, now) as SimulatedGateway
    const adapter = registry.get(name)!
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 31 }), fc.double({ min: 0, max: 1, noNaN: true }), (seed, duplicates) => {
      const plan = planSimulation({ ...base, orders: 6, seed, duplicates, scenarios: gatewayScenarios[name] })
      const requests = new Map(plan.callbacks.map(callback => [callback, gateway.request(callback)]))
      const states = new Map<string, OrderState>()
      plan.deliveries.forEach((delivery, i) => {
        const { body, headers } = requests.get(delivery.callback)!(now)
        const contentType = headers['content-type']!
        const callback = { body: Buffer.from(body), mediaType: contentType.split(';')[0]!, contentType, headers }
        for (const n of adapter.parse(adapter.verify(callback, now), callback)) {
          const orderId = streamIdOf(n)
          const event = {
            type: n.type,
            data: n.data,
            position: i + 1,
            streamId: orderId,
            streamVersion: 0,
            schemaVersion: 1,
            metadata: { gateway: name, deliveryId: n.deliveryId, receivedAt: now.toISOString(), requestId: `r${i}` },
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
        if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`${name} ${expected.orderId} (${expected.scenario}): ${JSON.stringify(got)} ≠ ${JSON.stringify(want)}`)
      }
    }), { numRuns: 25 })
    t.pass(`${name}: 25 random seeds`)
  }
})

t.test("each gateway's documented retry schedule, compressed", async t => {
  const total = (name: keyof typeof retryMinutes): number => retryMinutes[name].reduce((a, b) => a + b, 0)
  t.same(retryMinutes.alipay, [4, 10, 10, 60, 120, 360, 900], 'Alipay: 4m, 10m, 10m, 1h, 2h, 6h, 15h')
  t.same(retryMinutes.wechatpay.map(m => m * 60), [15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600], 'WeChat Pay v3, in seconds')
  t.same(retryMinutes.standard.map(m => m * 60), [5, 300, 1800, 7200, 18000, 36000, 36000], 'Standard Webhooks: the spec\'s example, in seconds')
  t.ok(retryMinutes.stripe.every((m, i) => i === 0 || m === 2 * retryMinutes.stripe[i - 1]!), 'Stripe: exponential')
  t.ok(total('stripe') <= 3 * 24 * 60 && total('stripe') * 2 > 3 * 24 * 60, 'over up to 3 days')
  t.equal(retryDelayMs(1, 60_000, retryMinutes.alipay), 4 * 60_000, 'one minute per minute is the real schedule')
  t.equal(retryDelayMs(2, 1000, retryMinutes.wechatpay), 250, 'compressed: a minute lasts minuteMs')
  t.equal(retryDelayMs(20, 1, retryMinutes.alipay), 900, 'past the end, the last gap repeats')
})
