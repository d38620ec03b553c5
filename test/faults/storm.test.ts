import { Agent } from 'node:http'
import t from 'tap'
import { maxStoredDeliveries } from '../../src/event-log/deliveries.js'
import { adminAuth, buildTestApp } from '../helpers.js'
import { auditLog, genericDelivery, isAck, patientLimits, postDelivery, runPool, seededRandom, shuffle, testSeed, type Delivery } from './helpers.js'

// Issue 5 §2: retry storms over real HTTP, every fact applied exactly once and every delivery acked.

t.test('1,000 concurrent deliveries of the same notification: all acked, applied once', async t => {
  const { app, dbPath } = await buildTestApp(t, { env: patientLimits })
  // An accept queue that holds the whole storm: with the default (511), a server too loaded to accept
  // for half a minute has the kernel reset the connections left waiting (seen: 130 of 1,000, with
  // ListenOverflows in /proc/net/netstat), which says nothing about how it handles a storm.
  const url = await app.listen({ host: '127.0.0.1', port: 0, backlog: 1024 })
  const storm = 1000
  const delivery = genericDelivery({ order_id: 'storm-1', amount: '88.88', status: '1', trade_no: 'T-storm-1', notify_id: 'n-storm-1' })
  // One socket per request, all opened at once: the server sees the whole storm together.
  const agent = new Agent({ keepAlive: false, maxSockets: storm })
  const results = await Promise.all(Array.from({ length: storm }, async () => await postDelivery(url, delivery, agent)))
  agent.destroy()
  const refused = results.filter(r => !isAck(r))
  t.equal(refused.length, 0, 'every delivery of the storm is acked', { sample: refused.slice(0, 3) })

  const audit = auditLog(dbPath)
  t.equal(audit.count, maxStoredDeliveries, `the first ${maxStoredDeliveries} deliveries are appended (admins see them)`)
  t.equal(audit.deliveries.get('generic|n-storm-1'), maxStoredDeliveries)
  const timeline = await app.inject({ method: 'GET', url: '/admin/orders/storm-1/events', headers: adminAuth })
  t.equal(timeline.json().unstoredRepeats, storm - maxStoredDeliveries, 'the rest are acked and counted')
  t.ok(audit.chainOk, 'chain verifies')
  t.same(audit.projectionMismatches, [], 'projection equals a fresh fold')
  const state = audit.states.get('storm-1')!
  t.equal(Object.keys(state.facts).length, 1, 'one fact')
  t.equal(state.duplicateCount, maxStoredDeliveries - 1, 'every stored repeat marked duplicate')
  const order = await app.inject({ method: 'GET', url: '/admin/orders/storm-1', headers: adminAuth })
  t.match(order.json(), { status: 'paid', paidAmount: 8888, duplicateCount: maxStoredDeliveries - 1, anomalies: [] }, 'paid once, not 1,000 times')
  t.comment(`storm: ${storm} concurrent deliveries of one notification, ${audit.count} events, 1 fact`)
})

t.test('interleaved repeats across 100 orders: every fact applied exactly once, every delivery acked', async t => {
  const seed = testSeed()
  t.comment(`storm seed ${seed}`)
  const random = seededRandom(seed)
  const { app, dbPath } = await buildTestApp(t, { env: patientLimits })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const orders = 100
  const sends: Delivery[] = []
  const expected = new Map<string, { paid: number, refunded: number, facts: number, deliveries: number }>()
  for (let k = 0; k < orders; k++) {
    const orderId = `storm-order-${k}`
    const paid = 1000 + k
    const base = { order_id: orderId, amount: `${Math.floor(paid / 100)}.${String(paid % 100).padStart(2, '0')}`, trade_no: `T-${k}` }
    // Three notifications, two of them about the same payment (fact dedup), one refund of 1.00; each retried 2-5 times.
    const notifications = [
      genericDelivery({ ...base, status: '0', notify_id: `${orderId}-pending` }),
      genericDelivery({ ...base, status: '1', notify_id: `${orderId}-paid` }),
      genericDelivery({ ...base, status: 'success', notify_id: `${orderId}-paid-twin` }),
      genericDelivery({ ...base, amount: '1.00', status: '3', refund_no: `R-${k}`, notify_id: `${orderId}-refund` })
    ]
    let count = 0
    for (const notification of notifications) {
      const repeats = 2 + Math.floor(random() * 4)
      for (let r = 0; r < repeats; r++) sends.push(notification)
      count += repeats
    }
    expected.set(orderId, { paid, refunded: 100, facts: 3, deliveries: count })
  }
  shuffle(sends, random)
  const agent = new Agent({ keepAlive: true, maxSockets: 200 })
  let acked = 0
  await runPool(sends, 400, async delivery => {
    if (isAck(await postDelivery(url, delivery, agent))) acked++
  })
  agent.destroy()
  t.equal(acked, sends.length, `all ${sends.length} deliveries acked`)

  const audit = auditLog(dbPath)
  t.equal(audit.count, sends.length, 'every delivery appended')
  t.ok(audit.chainOk, 'chain verifies')
  t.same(audit.projectionMismatches, [], 'projection equals a fresh fold')
  const wrong: string[] = []
  for (const [orderId, e] of expected) {
    const state = audit.states.get(orderId)
    const facts = Object.values(state?.facts ?? {})
    const paid = facts.filter(f => f.type === 'PaymentSucceeded').reduce((sum, f) => sum + f.amount, 0)
    const refunded = facts.filter(f => f.type === 'PaymentRefunded').reduce((sum, f) => sum + f.amount, 0)
    if (state === undefined || facts.length !== e.facts || paid !== e.paid || refunded !== e.refunded ||
      state.version !== e.deliveries || state.duplicateCount !== e.deliveries - e.facts) wrong.push(orderId)
  }
  t.same(wrong, [], 'each order: 3 facts, paid once, refunded once, every repeat counted as a duplicate')
  t.comment(`storm: ${sends.length} interleaved deliveries across ${orders} orders, ${orders * 3} facts`)
})
