import fc from 'fast-check'
import type { NewEvent } from '../../src/event-log/event-log.js'
import { streamIdOf, unattributedStreamId, type DomainEvent, type EventMetadata, type PaymentEventType, type RecordedEvent } from '../../src/orders/events.js'
import { Anomaly, reportsJoining, type Fact, type OrderView } from '../../src/orders/order-fold.js'

/**
 * The fast-check seed: PAYNOTIFY_FC_SEED replays a failure, otherwise a fresh
 * one per run (printed by the tests, and in fast-check's failure message).
 */
export function fcSeed (): number {
  const fromEnv = process.env.PAYNOTIFY_FC_SEED
  return fromEnv !== undefined && fromEnv !== '' ? Number(fromEnv) : (Date.now() ^ (Math.random() * 0x7fffffff)) | 0
}

interface Assertions {
  pass: (message: string) => unknown
  fail: (message: string) => unknown
  comment: (message: string) => unknown
}

/**
 * Runs a property with a printed seed; on failure the assertion message
 * carries the seed, the shrunk counterexample and how to replay it.
 */
export async function checkProperty<Ts> (t: Assertions, name: string, property: fc.IRawProperty<Ts>, numRuns: number): Promise<void> {
  const seed = fcSeed()
  t.comment(`${name}: fast-check seed ${seed}`)
  const details = await fc.check(property, { seed, numRuns })
  if (details.failed) {
    const cause = details.errorInstance instanceof Error ? ` threw ${details.errorInstance.message}` : ''
    t.fail(`${name} failed after ${details.numRuns} runs${cause}; counterexample ${fc.stringify(details.counterexample)} ` +
      `(seed ${seed}, path ${details.counterexamplePath}; replay with PAYNOTIFY_FC_SEED=${seed})`)
  } else {
    t.pass(`${name} holds for ${details.numRuns} runs (seed ${seed})`)
  }
}

/** One notification as a gateway (or the merchant) sends it: retries carry the same deliveryId and content. */
export interface Delivery {
  event: DomainEvent
  gateway: string
  deliveryId: string
}

/** A delivery as the event log takes it (its stream, and metadata as a gateway route would write it). */
export function toNewEvent (delivery: Delivery): NewEvent {
  return {
    ...delivery.event,
    streamId: streamIdOf(delivery.event),
    metadata: { gateway: delivery.gateway, deliveryId: delivery.deliveryId, receivedAt: '2026-01-01T00:00:00.000Z', requestId: delivery.deliveryId }
  } as NewEvent
}

const paymentTypes: readonly PaymentEventType[] = ['PaymentPending', 'PaymentSucceeded', 'PaymentFailed', 'PaymentRefunded', 'RefundFailed', 'PaymentClosed']

/**
 * The fields of a payment notification, from small pools so that generated
 * lists often share transaction ids, refund ids, amounts and gateway times
 * (fact repeats, conflicts, double payments, one refund reported two ways, a
 * refund's success and failure in either order of time). `alipay` refunds
 * are cumulative, as that adapter reports refund_fee; `stripe` refunds are
 * either (charge.refunded or refund.*).
 */
// Repeated values weigh the pools so that the same gateway, currency and amount often meet.
const paymentFields = fc.record({
  type: fc.constantFrom(...paymentTypes, 'PaymentSucceeded', 'PaymentRefunded', 'PaymentRefunded'),
  amount: fc.constantFrom(0, 100, 5000, 5000, 5000, 8888, 10000),
  currency: fc.constantFrom('CNY', 'CNY', 'CNY', 'USD', 'JPY'),
  gateway: fc.constantFrom('generic', 'generic', 'alipay', 'stripe', 'stripe'),
  transactionId: fc.constantFrom(null, 'T1', 'T2'),
  refundId: fc.constantFrom(null, 'R1', 'R2'),
  cumulative: fc.boolean(),
  gatewayTime: fc.constantFrom(null, '1800000000', '1800000100', '2027-01-15T08:00:00+08:00', '2027-01-15 08:00:00')
}).map(p => {
  const refund = p.type === 'PaymentRefunded' || p.type === 'RefundFailed'
  return {
    type: p.type,
    amount: p.amount,
    currency: p.currency,
    gateway: p.gateway,
    transactionId: p.transactionId,
    refundId: refund ? p.refundId : null,
    cumulative: p.type === 'PaymentRefunded' && (p.gateway === 'alipay' || (p.gateway === 'stripe' && p.cumulative)),
    gatewayStatus: p.type,
    gatewayTime: p.gatewayTime
  }
})

/** A review note's content: some anomalies, sorted, as an admin's note resolves them (its note text is fixed: it changes no view). */
export const resolvesArb: fc.Arbitrary<Anomaly[]> = fc.subarray(Object.values(Anomaly), { minLength: 1, maxLength: 3 }).map(list => [...list].sort())

/** A review note on `orderId`, recorded by an admin. */
export function reviewNoteArb (orderId: string): fc.Arbitrary<Omit<Delivery, 'deliveryId'>> {
  return resolvesArb.map(resolves => ({
    gateway: 'admin',
    event: { type: 'ReviewNoteRecorded', data: { orderId, note: 'refunded by hand', resolves, actor: { requestId: 'req', address: '127.0.0.1' } } } as DomainEvent
  }))
}

/** A notification about `orderId`, or now and then an admin's review note on it. */
export function notificationArb (orderId: string): fc.Arbitrary<Omit<Delivery, 'deliveryId'>> {
  const payment = paymentFields.map(({ type, ...data }) => ({
    gateway: data.gateway,
    event: { type, data: { orderId, ...data } } as DomainEvent
  }))
  const placed = fc.record({
    amount: fc.constantFrom(5000, 8888, 10000),
    currency: fc.constantFrom('CNY', 'USD')
  }).map(p => ({ gateway: 'merchant', event: { type: 'OrderPlaced', data: { orderId, ...p } } as DomainEvent }))
  return fc.oneof({ arbitrary: payment, weight: 5 }, { arbitrary: placed, weight: 1 }, { arbitrary: reviewNoteArb(orderId), weight: 1 })
}

/**
 * Distinct notifications (each with its own delivery id; a registration's id
 * is derived from its content, as POST /orders does) and review notes, plus
 * retries of some of them and other reports of some refunds: the multiset of
 * deliveries one order can receive.
 */
export function deliveriesArb (orderId: string, maxDistinct = 8): fc.Arbitrary<Delivery[]> {
  return fc.array(notificationArb(orderId), { minLength: 1, maxLength: maxDistinct })
    .chain(notifications => {
      const distinct: Delivery[] = notifications.map((n, i) => ({
        ...n,
        deliveryId: n.event.type === 'OrderPlaced' ? `order:${orderId}:${n.event.data.amount}:${n.event.data.currency}` : `d${i}`
      }))
      return fc.tuple(fc.array(fc.nat({ max: distinct.length - 1 }), { maxLength: 4 }), fc.array(fc.tuple(fc.nat({ max: distinct.length - 1 }), fc.boolean()), { maxLength: 2 }))
        .map(([retries, twins]) => [...distinct, ...retries.map(i => distinct[i]!), ...twins.flatMap(([i, bare]) => twinOf(distinct[i]!, bare))])
    })
}

/**
 * The same refund reported another way (R1): under a new delivery id, without
 * its refund id, and without its transaction id too when `bare`.
 */
function twinOf (delivery: Delivery, bare: boolean): Delivery[] {
  const { event } = delivery
  if (event.type !== 'PaymentRefunded' && event.type !== 'RefundFailed') return []
  const data = { ...event.data, refundId: null, transactionId: bare ? null : event.data.transactionId }
  return [{ ...delivery, deliveryId: `${delivery.deliveryId}-${bare ? 'bare' : 'twin'}`, event: { type: event.type, data } }]
}

/**
 * Unattributed reports (a Stripe event without order metadata): the same
 * pools, always with a transaction id: some share one with an order's facts
 * and join it, T3 is no order's. Delivery ids are their own (`u0`, `u1` …),
 * retries included.
 */
export function reportsArb (maxDistinct = 4): fc.Arbitrary<Delivery[]> {
  const report = paymentFields.map(({ type, ...data }) => ({
    gateway: 'stripe',
    event: { type: 'UnattributedReportReceived', data: { reportedType: type, ...data, gateway: 'stripe', transactionId: data.transactionId ?? 'T3', reason: 'no metadata.order_id' } } as DomainEvent
  }))
  return fc.array(report, { maxLength: maxDistinct }).chain(reports => {
    const distinct: Delivery[] = reports.map((r, i) => ({ ...r, deliveryId: `u${i}` }))
    return fc.array(fc.nat({ max: Math.max(0, distinct.length - 1) }), { maxLength: distinct.length === 0 ? 0 : 2 })
      .map(retries => [...distinct, ...retries.map(i => distinct[i]!)])
  })
}

/** The reports (recorded) that join an order with these facts, in log order. */
export function linkedReports (facts: Iterable<Fact>, reports: readonly RecordedEvent[]): RecordedEvent[] {
  return reportsJoining(facts, reports)
}

/** Records reports in their own stream, as the log does. */
export function recordReports (reports: readonly Delivery[], firstPosition: number): RecordedEvent[] {
  return record(reports, unattributedStreamId('stripe'), firstPosition)
}

const epoch = Date.UTC(2026, 0, 1)

/** Records deliveries in the given order, as the log would: positions 1…n, one second apart. */
export function record (deliveries: readonly Delivery[], orderId: string, firstPosition = 1): RecordedEvent[] {
  return deliveries.map((delivery, i) => {
    const position = firstPosition + i
    const recordedAt = new Date(epoch + position * 1000).toISOString()
    const metadata: EventMetadata = { gateway: delivery.gateway, deliveryId: delivery.deliveryId, receivedAt: recordedAt, requestId: `req-${position}` }
    return { ...delivery.event, position, streamId: orderId, streamVersion: position, schemaVersion: 1, metadata, recordedAt, hash: '' } as RecordedEvent
  })
}

/** The fields of a view that are business facts (not bookkeeping: version, positions, timestamps). */
export function businessView (view: OrderView): Omit<OrderView, 'version' | 'lastPosition' | 'firstSeenAt' | 'updatedAt'> {
  const { version: _v, lastPosition: _p, firstSeenAt: _f, updatedAt: _u, ...business } = view
  return business
}
