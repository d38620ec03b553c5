import fc from 'fast-check'
import t from 'tap'
import type { PaymentData, PaymentEventType } from '../../src/orders/events.js'
import { evolve, foldOrder, initialOrderState, orderView, type ViewContext } from '../../src/orders/order-fold.js'
import { businessView, checkProperty, deliveriesArb, record, type Delivery } from './arbitraries.js'

const orderId = 'order-1'
const registered: ViewContext = { ordersRegistered: true }
const open: ViewContext = { ordersRegistered: false }

let nextDelivery = 0
/** A generic-gateway notification with its own delivery id. */
function payment (type: PaymentEventType, amount: number, extra: Partial<PaymentData> & { deliveryId?: string } = {}): Delivery {
  const { deliveryId, ...data } = extra
  return {
    gateway: data.gateway ?? 'generic',
    deliveryId: deliveryId ?? `n${++nextDelivery}`,
    event: {
      type,
      data: { orderId, amount, currency: 'CNY', gateway: 'generic', transactionId: null, refundId: null, cumulative: false, gatewayStatus: type, gatewayTime: null, ...data }
    }
  }
}

function placed (amount: number, currency = 'CNY'): Delivery {
  return { gateway: 'merchant', deliveryId: `order:${orderId}:${amount}:${currency}`, event: { type: 'OrderPlaced', data: { orderId, amount, currency } } }
}

function viewOf (deliveries: Delivery[], context: ViewContext = open) {
  return orderView(foldOrder(orderId, record(deliveries, orderId)), context)
}

t.test('failed after paid stays paid, in either order', async t => {
  const paid = payment('PaymentSucceeded', 10000)
  const failed = payment('PaymentFailed', 10000)
  t.equal(viewOf([paid, failed]).status, 'paid')
  t.equal(viewOf([failed, paid]).status, 'paid')
  t.equal(viewOf([failed]).status, 'failed')
  t.same(viewOf([paid, failed]).anomalies, [])
})

t.test('a refund before its payment shows refund_before_payment, then ends refunded', async t => {
  const refund = payment('PaymentRefunded', 10000)
  const paid = payment('PaymentSucceeded', 10000)
  const early = viewOf([refund])
  t.equal(early.status, 'awaiting_payment')
  t.same(early.anomalies, ['refund_before_payment'])
  t.equal(early.refundedAmount, 10000)
  t.equal(early.paidAmount, 0)
  for (const order of [[refund, paid], [paid, refund]]) {
    const view = viewOf(order)
    t.equal(view.status, 'refunded')
    t.same(view.anomalies, [])
    t.equal(view.paidAmount, 10000)
    t.equal(view.refundedAmount, 10000)
    t.equal(view.needsReview, false)
  }
})

t.test('partial then full refund', async t => {
  const paid = payment('PaymentSucceeded', 10000, { transactionId: 'T1' })
  const partial = payment('PaymentRefunded', 3000, { transactionId: 'T1', refundId: 'R1' })
  const rest = payment('PaymentRefunded', 7000, { transactionId: 'T1', refundId: 'R2' })
  const half = viewOf([paid, partial])
  t.equal(half.status, 'partially_refunded')
  t.equal(half.refundedAmount, 3000)
  const full = viewOf([paid, partial, rest])
  t.equal(full.status, 'refunded')
  t.equal(full.refundedAmount, 10000)
  t.same(full.anomalies, [])
  // Cumulative refunds (Alipay refund_fee) report the running total: the largest counts, not the sum.
  const c1 = payment('PaymentRefunded', 3000, { gateway: 'alipay', transactionId: 'T1', cumulative: true })
  const c2 = payment('PaymentRefunded', 10000, { gateway: 'alipay', transactionId: 'T1', cumulative: true })
  const alipayPaid = payment('PaymentSucceeded', 10000, { gateway: 'alipay', transactionId: 'T1' })
  t.equal(viewOf([alipayPaid, c1]).status, 'partially_refunded')
  const cumulative = viewOf([alipayPaid, c2, c1])
  t.equal(cumulative.refundedAmount, 10000)
  t.equal(cumulative.status, 'refunded')
})

t.test('amount and currency mismatches against a registered order', async t => {
  const view = viewOf([placed(10000), payment('PaymentSucceeded', 100)], registered)
  t.equal(view.status, 'paid')
  t.same(view.anomalies, ['amount_mismatch'])
  t.equal(view.needsReview, true)
  t.equal(view.expectedAmount, 10000)
  t.equal(view.paidAmount, 100)
  const usd = viewOf([placed(10000), payment('PaymentSucceeded', 10000, { currency: 'USD' })], registered)
  t.same(usd.anomalies, ['currency_mismatch'])
  const exact = viewOf([placed(10000), payment('PaymentSucceeded', 10000)], registered)
  t.same(exact.anomalies, [])
  t.equal(exact.needsReview, false)
})

t.test('two different trade_no paid for one order are a duplicate_payment', async t => {
  const view = viewOf([payment('PaymentSucceeded', 10000, { transactionId: 'T1' }), payment('PaymentSucceeded', 10000, { transactionId: 'T2' })])
  t.same(view.anomalies, ['duplicate_payment'])
  t.equal(view.paidAmount, 20000)
  t.equal(view.gatewayTradeNo, 'T1')
  // The same trade_no twice (TRADE_SUCCESS then TRADE_FINISHED) is one fact, not a double charge.
  const twice = viewOf([payment('PaymentSucceeded', 10000, { transactionId: 'T1' }), payment('PaymentSucceeded', 10000, { transactionId: 'T1' })])
  t.same(twice.anomalies, [])
  t.equal(twice.paidAmount, 10000)
  t.equal(twice.duplicateCount, 1)
})

t.test('two reports of one transaction that disagree are flagged, whatever their order', async t => {
  const cny = payment('PaymentSucceeded', 10000, { transactionId: 'T1' })
  const usd = payment('PaymentSucceeded', 10000, { transactionId: 'T1', currency: 'USD' })
  const more = payment('PaymentSucceeded', 12000, { transactionId: 'T1' })
  for (const order of [[cny, usd], [usd, cny]]) {
    const view = viewOf(order)
    t.same(view.anomalies, ['currency_mismatch'])
    t.equal(view.currency, 'CNY')
    t.equal(view.paidAmount, 10000)
  }
  for (const order of [[cny, more], [more, cny]]) {
    const view = viewOf(order)
    t.same(view.anomalies, ['amount_mismatch'])
    t.equal(view.paidAmount, 12000)
  }
})

t.test('refund_exceeds_paid, closed_after_paid, unknown_order', async t => {
  const over = viewOf([payment('PaymentSucceeded', 5000), payment('PaymentRefunded', 8000)])
  t.same(over.anomalies, ['refund_exceeds_paid'])
  t.equal(over.status, 'refunded')

  const closed = viewOf([payment('PaymentSucceeded', 5000), payment('PaymentClosed', 5000)])
  t.same(closed.anomalies, ['closed_after_paid'])
  t.equal(closed.status, 'paid')
  t.equal(viewOf([payment('PaymentClosed', 5000)]).status, 'closed')

  const stray = [payment('PaymentSucceeded', 5000)]
  t.same(viewOf(stray, open).anomalies, [], 'no registrations at all: nothing is unknown')
  t.same(viewOf(stray, registered).anomalies, ['unknown_order'], 'once orders are registered, one never placed is unknown')
  t.same(viewOf([placed(5000), ...stray], registered).anomalies, [])
})

t.test('status precedence over the distinct facts', async t => {
  t.equal(viewOf([placed(100)]).status, 'awaiting_payment')
  t.equal(viewOf([payment('PaymentPending', 100)]).status, 'pending')
  t.equal(viewOf([payment('PaymentPending', 100), payment('PaymentFailed', 100)]).status, 'failed')
  t.equal(viewOf([payment('PaymentFailed', 100), payment('PaymentClosed', 100)]).status, 'closed')
  t.equal(viewOf([payment('PaymentClosed', 100), payment('PaymentSucceeded', 100), payment('PaymentPending', 100)]).status, 'paid')
})

t.test('evolve marks repeats with the position of the first and does not modify its input', async t => {
  const first = payment('PaymentSucceeded', 100, { transactionId: 'T1' })
  const sameFact = payment('PaymentSucceeded', 100, { transactionId: 'T1' })
  const [e1, e2, e3] = record([first, first, sameFact], orderId, 7)
  const s0 = initialOrderState(orderId)
  const frozen = JSON.stringify(s0)
  const r1 = evolve(s0, e1!)
  t.equal(JSON.stringify(s0), frozen, 'input state untouched')
  t.same(r1.outcome, { kind: 'applied' })
  const r2 = evolve(r1.state, e2!)
  t.same(r2.outcome, { kind: 'duplicate', reason: 'delivery', duplicateOf: 7 })
  const r3 = evolve(r2.state, e3!)
  t.same(r3.outcome, { kind: 'duplicate', reason: 'fact', duplicateOf: 7 })
  t.equal(r3.state.duplicateCount, 2)
  t.equal(r3.state.version, 3)
  t.equal(r3.state.lastPosition, 9)
})

t.test('law: any permutation of the same deliveries gives the same business view', async t => {
  const property = fc.property(
    deliveriesArb(orderId).chain(list => fc.tuple(fc.constant(list), fc.shuffledSubarray(list, { minLength: list.length, maxLength: list.length }))),
    fc.boolean(),
    ([original, permuted], ordersRegistered) => {
      const context = { ordersRegistered }
      const a = businessView(orderView(foldOrder(orderId, record(original, orderId)), context))
      const b = businessView(orderView(foldOrder(orderId, record(permuted, orderId)), context))
      return JSON.stringify(a) === JSON.stringify(b)
    })
  await checkProperty(t, 'permutation law', property, Number(process.env.PAYNOTIFY_FC_RUNS ?? 500))
})

t.test('law: appending a repeat changes nothing but duplicateCount and bookkeeping', async t => {
  const property = fc.property(
    deliveriesArb(orderId).chain(list => fc.tuple(fc.constant(list), fc.nat({ max: list.length - 1 }), fc.boolean())),
    fc.boolean(),
    ([list, pick, sameDelivery], ordersRegistered) => {
      const context = { ordersRegistered }
      const original = list[pick]!
      // A retry of the same delivery, or the same fact reported again under a new delivery id.
      const repeat = sameDelivery || original.event.type === 'OrderPlaced' ? original : { ...original, deliveryId: `${original.deliveryId}-again` }
      const before = orderView(foldOrder(orderId, record(list, orderId)), context)
      const after = orderView(foldOrder(orderId, record([...list, repeat], orderId)), context)
      return JSON.stringify({ ...businessView(after), duplicateCount: 0 }) === JSON.stringify({ ...businessView(before), duplicateCount: 0 }) &&
        after.duplicateCount === before.duplicateCount + 1 && after.version === before.version + 1
    })
  await checkProperty(t, 'repeat law', property, Number(process.env.PAYNOTIFY_FC_RUNS ?? 500))
})
