import fc from 'fast-check'
import t from 'tap'
import type { PaymentData, PaymentEventType } from '../../src/orders/events.js'
import { unattributedStreamId } from '../../src/orders/events.js'
import { anchorsOf, evolve, foldOrder, initialOrderState, orderView, type ViewContext } from '../../src/orders/order-fold.js'
import { gatewayInstant } from '../../src/orders/refund-rules.js'
import { businessView, checkProperty, deliveriesArb, linkedReports, record, recordReports, reportsArb, type Delivery } from './arbitraries.js'

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

/** A Stripe event that named no order (UnattributedReportReceived), as the adapter records it. */
function report (type: PaymentEventType, amount: number, extra: Partial<PaymentData> & { deliveryId?: string } = {}): Delivery {
  const { deliveryId, ...data } = extra
  return {
    gateway: 'stripe',
    deliveryId: deliveryId ?? `u${++nextDelivery}`,
    event: {
      type: 'UnattributedReportReceived',
      data: { reportedType: type, amount, currency: 'USD', gateway: 'stripe', transactionId: 'pi_1', refundId: null, cumulative: false, gatewayStatus: type, gatewayTime: null, reason: 'no metadata.order_id', ...data }
    }
  }
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
      // A retry of the same delivery, or the same fact reported again under a new delivery id
      // (a review note under a new delivery id is another note, not a repeat: it can only be retried).
      const repeat = sameDelivery || original.event.type === 'OrderPlaced' || original.event.type === 'ReviewNoteRecorded' ? original : { ...original, deliveryId: `${original.deliveryId}-again` }
      const before = orderView(foldOrder(orderId, record(list, orderId)), context)
      const after = orderView(foldOrder(orderId, record([...list, repeat], orderId)), context)
      return JSON.stringify({ ...businessView(after), duplicateCount: 0 }) === JSON.stringify({ ...businessView(before), duplicateCount: 0 }) &&
        after.duplicateCount === before.duplicateCount + 1 && after.version === before.version + 1
    })
  await checkProperty(t, 'repeat law', property, Number(process.env.PAYNOTIFY_FC_RUNS ?? 500))
})

t.test('X2: a refund in another currency than the payment is flagged and never summed, in either order', async t => {
  const paid = payment('PaymentSucceeded', 2000, { transactionId: 'T1' })
  const yen = payment('PaymentRefunded', 2000, { transactionId: 'T1', currency: 'JPY' })
  for (const order of [[paid, yen], [yen, paid]]) {
    const view = viewOf(order)
    t.match(view, { status: 'paid', paidAmount: 2000, refundedAmount: 0, currency: 'CNY' })
    t.same(view.anomalies, ['refund_currency_mismatch'])
  }
  // Before its payment the held refund counts in its own currency; the registered currency decides once there is one.
  t.match(viewOf([yen]), { status: 'awaiting_payment', refundedAmount: 2000, currency: 'JPY', anomalies: ['refund_before_payment'] })
  t.match(viewOf([placed(2000), yen]), { refundedAmount: 0, currency: 'CNY', anomalies: ['refund_currency_mismatch'] })
  // Payments in two currencies: the order's currency is the registered one, and only money in it is summed.
  const twice = viewOf([placed(2000), paid, payment('PaymentSucceeded', 2000, { transactionId: 'T2', currency: 'USD' })], registered)
  t.match(twice, { status: 'paid', paidAmount: 2000, currency: 'CNY' })
  t.same(twice.anomalies, ['currency_mismatch', 'duplicate_payment'])
})

t.test('a refund, failed refund or payment from another gateway than the paying one is flagged; its refund is not counted', async t => {
  const paid = payment('PaymentSucceeded', 2000, { gateway: 'stripe', currency: 'USD', transactionId: 'pi_1' })
  const generic = payment('PaymentRefunded', 2000, { currency: 'USD' })
  for (const order of [[paid, generic], [generic, paid]]) {
    t.match(viewOf(order), { status: 'paid', refundedAmount: 0, anomalies: ['gateway_mismatch'] })
  }
  // X1: the generic refund has no currency, so CNY, as well.
  t.same(viewOf([paid, payment('PaymentRefunded', 2000)]).anomalies, ['gateway_mismatch', 'refund_currency_mismatch'])
  t.same(viewOf([paid, payment('RefundFailed', 2000, { currency: 'USD', refundId: 'R1' })]).anomalies, ['gateway_mismatch', 'refund_failed'])
  t.same(viewOf([paid, payment('PaymentSucceeded', 2000, { currency: 'USD', transactionId: 'T1' })]).anomalies, ['duplicate_payment', 'gateway_mismatch'])
  // Before any payment there is no paying gateway to compare with.
  t.same(viewOf([generic]).anomalies, ['refund_before_payment'])
  t.same(viewOf([paid, payment('PaymentFailed', 2000, { currency: 'USD' })]).anomalies, [], 'a failed attempt elsewhere is not a payment')
})

t.test('R1: one refund reported with and without its ids is counted once and flagged duplicate_refund', async t => {
  const paid = payment('PaymentSucceeded', 10000, { transactionId: 'T1' })
  const withTrade = payment('PaymentRefunded', 5000, { transactionId: 'T1' })
  const bare = payment('PaymentRefunded', 5000)
  for (const order of [[paid, withTrade, bare], [bare, paid, withTrade], [withTrade, bare, paid]]) {
    const view = viewOf(order)
    t.match(view, { status: 'partially_refunded', refundedAmount: 5000 })
    t.same(view.anomalies, ['duplicate_refund'])
  }
  const withRefundNo = payment('PaymentRefunded', 5000, { refundId: 'RF1' })
  const withBoth = payment('PaymentRefunded', 5000, { transactionId: 'T1', refundId: 'RF1' })
  t.match(viewOf([paid, withRefundNo, withTrade]), { refundedAmount: 5000, anomalies: ['duplicate_refund'] })
  t.match(viewOf([paid, withBoth, withTrade, bare]), { refundedAmount: 5000, anomalies: ['duplicate_refund'] })
  // Two refund ids are two refunds, and so are two transactions' refunds, or two amounts.
  t.match(viewOf([paid, withRefundNo, payment('PaymentRefunded', 5000, { refundId: 'RF2' })]), { status: 'refunded', refundedAmount: 10000, anomalies: [] })
  t.match(viewOf([paid, payment('PaymentSucceeded', 10000, { transactionId: 'T2' }), withTrade, payment('PaymentRefunded', 5000, { transactionId: 'T2' })]),
    { refundedAmount: 10000, anomalies: ['duplicate_payment'] })
  t.match(viewOf([paid, withTrade, payment('PaymentRefunded', 3000)]), { refundedAmount: 8000, anomalies: [] })
  // A refund id whose reports carry a transaction id that contradicts the other report's is not the same refund.
  t.match(viewOf([paid, payment('PaymentRefunded', 5000, { transactionId: 'T9', refundId: 'RF1' }), withTrade]), { refundedAmount: 10000 })
})

t.test('a refund reported succeeded and later failed stops counting and is flagged; the gateway\'s own time says which came last', async t => {
  const paid = payment('PaymentSucceeded', 10000, { gateway: 'wechatpay', transactionId: 'T1' })
  const refund = (type: 'PaymentRefunded' | 'RefundFailed', gatewayTime: string | null): Delivery =>
    payment(type, 4000, { gateway: 'wechatpay', transactionId: 'T1', refundId: 'RF1', gatewayTime })
  const succeeded = refund('PaymentRefunded', '2027-01-15T08:00:00+08:00')
  const failedLater = refund('RefundFailed', '2027-01-15T09:00:00+08:00')
  const failedEarlier = refund('RefundFailed', '2027-01-15T07:00:00+08:00')
  for (const order of [[paid, succeeded, failedLater], [paid, failedLater, succeeded]]) {
    t.match(viewOf(order), { status: 'paid', refundedAmount: 0, anomalies: ['refund_failed'] })
  }
  // WeChat Pay's REFUND.ABNORMAL may be followed by REFUND.SUCCESS: then it is refunded, in either arrival order.
  for (const order of [[paid, failedEarlier, succeeded], [paid, succeeded, failedEarlier]]) {
    t.match(viewOf(order), { status: 'partially_refunded', refundedAmount: 4000, anomalies: [] })
  }
  // When the times cannot tell (absent, equal, or with no zone), the failure wins: the money may still be with the merchant.
  for (const [s, f] of [[null, '2027-01-15T09:00:00+08:00'], ['2027-01-15T08:00:00+08:00', '2027-01-15T00:00:00Z'], ['2027-01-15 09:00:00', '2027-01-15 08:00:00']]) {
    t.match(viewOf([paid, refund('PaymentRefunded', s!), refund('RefundFailed', f!)]), { refundedAmount: 0, anomalies: ['refund_failed'] }, `${s} / ${f}`)
  }
  // A running total (Stripe charge.refunded) reported before the failure no longer counts the failed refund.
  const stripePaid = payment('PaymentSucceeded', 10000, { gateway: 'stripe', transactionId: 'pi_1' })
  const total = (amount: number, gatewayTime: string): Delivery => payment('PaymentRefunded', amount, { gateway: 'stripe', transactionId: 'pi_1', cumulative: true, gatewayTime })
  const each = (type: 'PaymentRefunded' | 'RefundFailed', id: string, amount: number, gatewayTime: string): Delivery =>
    payment(type, amount, { gateway: 'stripe', transactionId: 'pi_1', refundId: id, gatewayTime })
  const facts = [stripePaid, total(10000, '1800000010'), each('PaymentRefunded', 're_1', 4000, '1800000005'), each('PaymentRefunded', 're_2', 6000, '1800000010')]
  t.match(viewOf(facts), { status: 'refunded', refundedAmount: 10000, anomalies: [] })
  t.match(viewOf([...facts, each('RefundFailed', 're_2', 6000, '1800000500')]), { status: 'partially_refunded', refundedAmount: 4000, anomalies: ['refund_failed'] })
  t.match(viewOf([...facts, total(4000, '1800000600'), each('RefundFailed', 're_2', 6000, '1800000500')]), { refundedAmount: 4000, anomalies: ['refund_failed'] })
})

t.test('gateway times: Unix seconds or milliseconds, ISO 8601 with a zone; nothing read in the local time zone', async t => {
  t.equal(gatewayInstant('1800000000'), 1_800_000_000_000)
  t.equal(gatewayInstant('1800000000123'), 1_800_000_000_123)
  t.equal(gatewayInstant('2027-01-15T08:00:00+08:00'), Date.UTC(2027, 0, 15, 0))
  t.equal(gatewayInstant('2027-01-15T00:00:00.5Z'), Date.UTC(2027, 0, 15, 0, 0, 0, 500))
  for (const text of [null, '2027-01-15 08:00:00', '2027-01-15T08:00:00', 'yesterday', '', '2027-13-45T99:00:00Z']) t.equal(gatewayInstant(text), null, String(text))
})

t.test('a signed zero-amount payment is kept and flagged, never paid', async t => {
  const zero = payment('PaymentSucceeded', 0, { transactionId: 'T0' })
  const view = viewOf([zero])
  t.match(view, { status: 'awaiting_payment', paidAmount: 0, needsReview: true, anomalies: ['zero_amount_payment'] })
  t.match(viewOf([zero, payment('PaymentPending', 0)]), { status: 'pending', anomalies: ['zero_amount_payment'] })
  t.match(viewOf([placed(100), zero], registered), { status: 'awaiting_payment', anomalies: ['amount_mismatch', 'zero_amount_payment'] })
})

t.test('an unattributed report joins the view of the order its transaction id names, never its state', async t => {
  const paid = payment('PaymentSucceeded', 2000, { gateway: 'stripe', currency: 'USD', transactionId: 'pi_1' })
  const state = foldOrder(orderId, record([paid], orderId))
  t.same(anchorsOf(Object.values(state.facts)), [{ gateway: 'stripe', transactionId: 'pi_1' }])
  const frozen = JSON.stringify(state)
  const reports = recordReports([report('PaymentRefunded', 500, { refundId: 're_1' }), report('PaymentRefunded', 2000, { cumulative: true })], 10)
  const view = orderView(state, open, reports)
  t.match(view, { status: 'refunded', paidAmount: 2000, refundedAmount: 2000, anomalies: [], version: 3, lastPosition: 11 })
  t.equal(JSON.stringify(state), frozen, 'the order\'s own state is untouched')
  t.match(orderView(state, open), { status: 'paid', version: 1 })
  // A refund keyed by its refund id does not anchor: only events whose fact key holds the transaction id do.
  t.same(anchorsOf(Object.values(foldOrder(orderId, record([payment('PaymentRefunded', 1, { refundId: 'r', transactionId: 'T' })], orderId)).facts)), [])
  t.equal(reports[0]!.streamId, unattributedStreamId('stripe'))
})

/** The view of an order's deliveries with the reports that join it, arrived in the given orders. */
function joinedView (own: readonly Delivery[], reports: readonly Delivery[], context: ViewContext) {
  const state = foldOrder(orderId, record(own, orderId))
  return orderView(state, context, linkedReports(Object.values(state.facts), recordReports(reports, own.length + 1)))
}

t.test('law: with unattributed reports, any arrival order of the same deliveries gives the same business view', async t => {
  const shuffled = <T>(list: T[]) => fc.tuple(fc.constant(list), fc.shuffledSubarray(list, { minLength: list.length, maxLength: list.length }))
  const property = fc.property(deliveriesArb(orderId).chain(shuffled), reportsArb().chain(shuffled), fc.boolean(),
    ([own, ownPermuted], [reports, reportsPermuted], ordersRegistered) => {
      const context = { ordersRegistered }
      const a = businessView(joinedView(own, reports, context))
      const b = businessView(joinedView(ownPermuted, reportsPermuted, context))
      return JSON.stringify(a) === JSON.stringify(b)
    })
  await checkProperty(t, 'joined permutation law', property, Number(process.env.PAYNOTIFY_FC_RUNS ?? 300))
})

t.test('law: a report that joins an order counts exactly as if it had named the order', async t => {
  const property = fc.property(deliveriesArb(orderId), reportsArb(), fc.boolean(), (own, reports, ordersRegistered) => {
    const context = { ordersRegistered }
    const state = foldOrder(orderId, record(own, orderId))
    const recorded = recordReports(reports, own.length + 1)
    const linked = linkedReports(Object.values(state.facts), recorded)
    const linkedIds = new Set(linked.map(r => r.position))
    // The same reports, had they carried the order id: appended to its own stream.
    const named: Delivery[] = reports.filter((_, i) => linkedIds.has(own.length + 1 + i)).map(r => {
      if (r.event.type !== 'UnattributedReportReceived') throw new Error('not a report')
      const { reportedType, reason: _reason, ...data } = r.event.data
      return { ...r, event: { type: reportedType, data: { ...data, orderId } } }
    })
    const joined = businessView(orderView(state, context, linked))
    const direct = businessView(orderView(foldOrder(orderId, record([...own, ...named], orderId)), context))
    return JSON.stringify(joined) === JSON.stringify(direct)
  })
  await checkProperty(t, 'attribution law', property, Number(process.env.PAYNOTIFY_FC_RUNS ?? 300))
})
