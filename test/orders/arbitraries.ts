import fc from 'fast-check'
import type { DomainEvent, EventMetadata, PaymentEventType, RecordedEvent } from '../../src/orders/events.js'
import type { OrderView } from '../../src/orders/order-fold.js'

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

const paymentTypes: readonly PaymentEventType[] = ['PaymentPending', 'PaymentSucceeded', 'PaymentFailed', 'PaymentRefunded', 'RefundFailed', 'PaymentClosed']

/**
 * A notification about `orderId`. Values come from small pools so that
 * generated lists often share transaction ids, refund ids and amounts (fact
 * repeats, conflicts, double payments). `alipay` refunds are cumulative, as
 * that adapter reports refund_fee.
 */
export function notificationArb (orderId: string): fc.Arbitrary<Omit<Delivery, 'deliveryId'>> {
  const payment = fc.record({
    type: fc.constantFrom(...paymentTypes),
    amount: fc.constantFrom(0, 100, 5000, 8888, 10000),
    currency: fc.constantFrom('CNY', 'USD'),
    gateway: fc.constantFrom('generic', 'alipay'),
    transactionId: fc.constantFrom(null, 'T1', 'T2'),
    refundId: fc.constantFrom(null, 'R1', 'R2')
  }).map(p => ({
    gateway: p.gateway,
    event: {
      type: p.type,
      data: {
        orderId,
        amount: p.amount,
        currency: p.currency,
        gateway: p.gateway,
        transactionId: p.transactionId,
        refundId: p.type === 'PaymentRefunded' || p.type === 'RefundFailed' ? p.refundId : null,
        cumulative: p.gateway === 'alipay' && p.type === 'PaymentRefunded',
        gatewayStatus: p.type,
        gatewayTime: null
      }
    } as DomainEvent
  }))
  const placed = fc.record({
    amount: fc.constantFrom(5000, 8888, 10000),
    currency: fc.constantFrom('CNY', 'USD')
  }).map(p => ({ gateway: 'merchant', event: { type: 'OrderPlaced', data: { orderId, ...p } } as DomainEvent }))
  return fc.oneof({ arbitrary: payment, weight: 5 }, { arbitrary: placed, weight: 1 })
}

/**
 * Distinct notifications (each with its own delivery id; a registration's id
 * is derived from its content, as POST /orders does) plus retries of some of
 * them: the multiset of deliveries one order can receive.
 */
export function deliveriesArb (orderId: string, maxDistinct = 8): fc.Arbitrary<Delivery[]> {
  return fc.array(notificationArb(orderId), { minLength: 1, maxLength: maxDistinct })
    .chain(notifications => {
      const distinct: Delivery[] = notifications.map((n, i) => ({
        ...n,
        deliveryId: n.event.type === 'OrderPlaced' ? `order:${orderId}:${n.event.data.amount}:${n.event.data.currency}` : `d${i}`
      }))
      return fc.array(fc.nat({ max: distinct.length - 1 }), { maxLength: 4 })
        .map(retries => [...distinct, ...retries.map(i => distinct[i]!)])
    })
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
