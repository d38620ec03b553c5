import type { EventMetadata, PaymentData, PaymentEventType, RecordedEvent } from './events.js'

/**
 * The pure fold from facts to order state. No I/O and no clock: time arrives
 * in the events. Status and anomalies are computed from the *set* of distinct
 * facts (orderView), so any permutation of the same events gives the same view.
 */

export const OrderStatus = {
  Refunded: 'refunded',
  PartiallyRefunded: 'partially_refunded',
  Paid: 'paid',
  Closed: 'closed',
  Failed: 'failed',
  Pending: 'pending',
  AwaitingPayment: 'awaiting_payment'
} as const
export type OrderStatus = typeof OrderStatus[keyof typeof OrderStatus]

export const Anomaly = {
  AmountMismatch: 'amount_mismatch',
  CurrencyMismatch: 'currency_mismatch',
  DuplicatePayment: 'duplicate_payment',
  RefundExceedsPaid: 'refund_exceeds_paid',
  RefundBeforePayment: 'refund_before_payment',
  ClosedAfterPaid: 'closed_after_paid',
  /** A refund failed at the gateway and no later report says it succeeded: the money is still with the merchant. */
  RefundFailed: 'refund_failed',
  UnknownOrder: 'unknown_order'
} as const
export type Anomaly = typeof Anomaly[keyof typeof Anomaly]

/** One distinct money movement (or status report), after fact dedup. */
export interface Fact {
  type: PaymentEventType
  amount: number
  currency: string
  gateway: string
  transactionId: string | null
  refundId: string | null
  cumulative: boolean
  /** Position of the first event that reported it. */
  firstPosition: number
  /** Two reports of this fact disagreed on the amount. */
  conflicting: boolean
  /** Two reports of this fact disagreed on the currency (absent in states stored before it existed). */
  conflictingCurrency?: boolean
}

export interface OrderState {
  orderId: string
  placed: { amount: number, currency: string, firstPosition: number } | null
  /** Distinct facts by fact key, in the order they were first seen. */
  facts: Record<string, Fact>
  /** First position of every delivery seen, by gateway + delivery id. */
  deliveries: Record<string, number>
  version: number
  lastPosition: number
  duplicateCount: number
  firstSeenAt: string | null
  updatedAt: string | null
}

export type FoldOutcome =
  | { kind: 'applied' }
  | { kind: 'duplicate', reason: 'delivery' | 'fact', duplicateOf: number }

/** Facts about the whole log that an order's view depends on. */
export interface ViewContext {
  /** The merchant registers orders (some OrderPlaced exists), so an order never placed is unknown. */
  ordersRegistered: boolean
}

export interface OrderView {
  orderId: string
  status: OrderStatus
  needsReview: boolean
  anomalies: Anomaly[]
  expectedAmount: number | null
  expectedCurrency: string | null
  paidAmount: number
  refundedAmount: number
  currency: string | null
  gateway: string | null
  gatewayTradeNo: string | null
  duplicateCount: number
  version: number
  lastPosition: number
  firstSeenAt: string | null
  updatedAt: string | null
}

export function initialOrderState (orderId: string): OrderState {
  return {
    orderId,
    placed: null,
    facts: {},
    deliveries: {},
    version: 0,
    lastPosition: 0,
    duplicateCount: 0,
    firstSeenAt: null,
    updatedAt: null
  }
}

/**
 * The fact dedup key: gateway + transaction id + kind. Without a transaction
 * id the amount joins the key, so a repeat can never be counted twice.
 * Refunds are keyed by refund id when the gateway sends one, because one
 * transaction can be refunded several times.
 */
export function factKey (type: PaymentEventType, data: PaymentData): string {
  if (type === 'PaymentRefunded' || type === 'RefundFailed') {
    const kind = type === 'PaymentRefunded' ? 'refund' : 'refund-failed'
    if (data.refundId !== null) return `${data.gateway}|${kind}|${data.refundId}`
    const subject = data.transactionId ?? `order:${data.orderId}`
    return `${data.gateway}|${kind}|${subject}|${data.cumulative ? 'total' : 'each'}|${data.amount}|${data.currency}`
  }
  if (data.transactionId !== null) return `${data.gateway}|${type}|${data.transactionId}`
  return `${data.gateway}|${type}|order:${data.orderId}|${data.amount}|${data.currency}`
}

export function deliveryKey (metadata: EventMetadata): string {
  return `${metadata.gateway}|${metadata.deliveryId}`
}

function minIso (a: string | null, b: string): string {
  return a === null || b < a ? b : a
}

function maxIso (a: string | null, b: string): string {
  return a === null || b > a ? b : a
}

/**
 * A copy of a record with one entry added. Delivery and fact keys are unique
 * per order, so each one would give a plain object a V8 hidden class of its
 * own: `{ ...record, [key]: value }` costs microseconds per event once a log
 * holds hundreds of thousands of keys (bench/). A prototype-less object is
 * a dictionary from the start; JSON.stringify writes it exactly the same.
 */
function withEntry<T> (record: Readonly<Record<string, T>>, key: string, value: T): Record<string, T> {
  const copy = Object.create(null) as Record<string, T>
  for (const k in record) copy[k] = record[k]!
  copy[key] = value
  return copy
}

/**
 * Applies one event to an order's state. Returns a new state (the input is
 * not modified) and whether the event was a new fact or a repeat.
 */
export function evolve (state: OrderState, event: RecordedEvent): { state: OrderState, outcome: FoldOutcome } {
  const next: OrderState = {
    ...state,
    version: state.version + 1,
    lastPosition: Math.max(state.lastPosition, event.position),
    firstSeenAt: minIso(state.firstSeenAt, event.recordedAt),
    updatedAt: maxIso(state.updatedAt, event.recordedAt)
  }
  const delivery = deliveryKey(event.metadata)
  const firstDelivery = state.deliveries[delivery]
  if (firstDelivery !== undefined) {
    next.duplicateCount = state.duplicateCount + 1
    return { state: next, outcome: { kind: 'duplicate', reason: 'delivery', duplicateOf: firstDelivery } }
  }
  next.deliveries = withEntry(state.deliveries, delivery, event.position)

  switch (event.type) {
    case 'OrderPlaced': {
      const { amount, currency } = event.data
      const placed = state.placed
      if (placed !== null) {
        next.duplicateCount = state.duplicateCount + 1
        // Two different registrations: keep the smaller (amount, currency) so the choice does not depend on order.
        if (amount < placed.amount || (amount === placed.amount && currency < placed.currency)) {
          next.placed = { amount, currency, firstPosition: placed.firstPosition }
        }
        return { state: next, outcome: { kind: 'duplicate', reason: 'fact', duplicateOf: placed.firstPosition } }
      }
      next.placed = { amount, currency, firstPosition: event.position }
      return { state: next, outcome: { kind: 'applied' } }
    }
    case 'PaymentPending':
    case 'PaymentSucceeded':
    case 'PaymentFailed':
    case 'PaymentRefunded':
    case 'RefundFailed':
    case 'PaymentClosed': {
      const key = factKey(event.type, event.data)
      const existing = state.facts[key]
      if (existing !== undefined) {
        next.duplicateCount = state.duplicateCount + 1
        // Two reports of one fact that disagree: keep the larger amount and the first currency code in
        // sort order, so the result does not depend on arrival order; the view flags the disagreement.
        if (event.data.amount !== existing.amount || event.data.currency !== existing.currency) {
          next.facts = {
            ...state.facts,
            [key]: {
              ...existing,
              amount: Math.max(existing.amount, event.data.amount),
              currency: event.data.currency < existing.currency ? event.data.currency : existing.currency,
              conflicting: existing.conflicting || event.data.amount !== existing.amount,
              conflictingCurrency: existing.conflictingCurrency === true || event.data.currency !== existing.currency
            }
          }
        }
        return { state: next, outcome: { kind: 'duplicate', reason: 'fact', duplicateOf: existing.firstPosition } }
      }
      const { amount, currency, gateway, transactionId, refundId, cumulative } = event.data
      next.facts = withEntry<Fact>(state.facts, key,
        { type: event.type, amount, currency, gateway, transactionId, refundId, cumulative, firstPosition: event.position, conflicting: false })
      return { state: next, outcome: { kind: 'applied' } }
    }
    default:
      return assertNever(event)
  }
}

function assertNever (value: never): never {
  throw new Error(`unhandled event ${JSON.stringify(value)}`)
}

/** Folds a whole stream (events in log order). */
export function foldOrder (orderId: string, events: Iterable<RecordedEvent>): OrderState {
  let state = initialOrderState(orderId)
  for (const event of events) state = evolve(state, event).state
  return state
}

function firstSorted (values: Iterable<string | null>): string | null {
  let best: string | null = null
  for (const value of values) if (value !== null && (best === null || value < best)) best = value
  return best
}

/**
 * Derives status and anomalies from the distinct facts. Status precedence:
 * refunded › partially_refunded › paid › closed › failed › pending ›
 * awaiting_payment — money that moved outranks any later report, so a late
 * "failed" or "closed" never downgrades "paid".
 */
export function orderView (state: OrderState, context: ViewContext): OrderView {
  const facts = Object.values(state.facts)
  const succeeded = facts.filter(fact => fact.type === 'PaymentSucceeded')
  const refunds = facts.filter(fact => fact.type === 'PaymentRefunded')
  const has = (type: PaymentEventType): boolean => facts.some(fact => fact.type === type)

  const paidAmount = succeeded.reduce((sum, fact) => sum + fact.amount, 0)
  const eachRefunded = refunds.filter(fact => !fact.cumulative).reduce((sum, fact) => sum + fact.amount, 0)
  const totalRefunded = refunds.filter(fact => fact.cumulative).reduce((max, fact) => Math.max(max, fact.amount), 0)
  const refundedAmount = Math.max(eachRefunded, totalRefunded)

  const anomalies = new Set<Anomaly>()
  const placed = state.placed
  for (const fact of succeeded) {
    if (placed !== null && fact.amount !== placed.amount) anomalies.add(Anomaly.AmountMismatch)
    if (placed !== null && fact.currency !== placed.currency) anomalies.add(Anomaly.CurrencyMismatch)
  }
  if (facts.some(fact => fact.conflicting)) anomalies.add(Anomaly.AmountMismatch)
  if (facts.some(fact => fact.conflictingCurrency === true)) anomalies.add(Anomaly.CurrencyMismatch)
  if (new Set(succeeded.map(fact => fact.currency)).size > 1) anomalies.add(Anomaly.CurrencyMismatch)
  if (succeeded.length > 1) anomalies.add(Anomaly.DuplicatePayment)
  if (paidAmount > 0 && refundedAmount > paidAmount) anomalies.add(Anomaly.RefundExceedsPaid)
  if (paidAmount === 0 && refundedAmount > 0) anomalies.add(Anomaly.RefundBeforePayment)
  if (paidAmount > 0 && has('PaymentClosed')) anomalies.add(Anomaly.ClosedAfterPaid)
  const refundedIds = new Set(refunds.map(fact => `${fact.gateway}|${fact.refundId ?? ''}`))
  if (facts.some(fact => fact.type === 'RefundFailed' && (fact.refundId === null || !refundedIds.has(`${fact.gateway}|${fact.refundId}`)))) {
    anomalies.add(Anomaly.RefundFailed)
  }
  if (context.ordersRegistered && placed === null && facts.length > 0) anomalies.add(Anomaly.UnknownOrder)

  let status: OrderStatus
  if (paidAmount > 0) {
    status = refundedAmount >= paidAmount
      ? OrderStatus.Refunded
      : refundedAmount > 0 ? OrderStatus.PartiallyRefunded : OrderStatus.Paid
  } else if (has('PaymentClosed')) {
    status = OrderStatus.Closed
  } else if (has('PaymentFailed')) {
    status = OrderStatus.Failed
  } else if (has('PaymentPending')) {
    status = OrderStatus.Pending
  } else {
    // Only a registration, or only a refund that is held until its payment arrives.
    status = OrderStatus.AwaitingPayment
  }

  const sorted = [...anomalies].sort()
  const moneyFacts = succeeded.length > 0 ? succeeded : facts
  return {
    orderId: state.orderId,
    status,
    needsReview: sorted.length > 0,
    anomalies: sorted,
    expectedAmount: placed?.amount ?? null,
    expectedCurrency: placed?.currency ?? null,
    paidAmount,
    refundedAmount,
    currency: firstSorted(moneyFacts.map(fact => fact.currency)) ?? placed?.currency ?? null,
    gateway: firstSorted(moneyFacts.map(fact => fact.gateway)),
    gatewayTradeNo: firstSorted(succeeded.map(fact => fact.transactionId)),
    duplicateCount: state.duplicateCount,
    version: state.version,
    lastPosition: state.lastPosition,
    firstSeenAt: state.firstSeenAt,
    updatedAt: state.updatedAt
  }
}
