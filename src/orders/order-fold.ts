import type { DomainEvent, EventMetadata, PaymentData, PaymentEventType } from './events.js'
import { gatewayInstant, laterInstant, tallyRefunds } from './refund-rules.js'

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
  /** A refund in another currency than the payment: never summed into the order's totals. */
  RefundCurrencyMismatch: 'refund_currency_mismatch',
  /** A payment or refund reported by another gateway than the one that took the payment. */
  GatewayMismatch: 'gateway_mismatch',
  /** One refund reported two ways (with and without its refund or transaction id): counted once. */
  DuplicateRefund: 'duplicate_refund',
  /** A signed payment of zero: kept, never `paid`. */
  ZeroAmountPayment: 'zero_amount_payment',
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
  /**
   * Refunds and failed refunds: the latest of the gateway's own times of its
   * reports, in epoch milliseconds (null when none named an instant; absent
   * in states stored before it existed). Tells which came last of a refund's
   * success and failure.
   */
  at?: number | null
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
  /**
   * The anomalies review notes (ReviewNoteRecorded) have resolved, sorted,
   * each once: they stay anomalies and no longer ask for review. Absent
   * until the order's first note (and in states stored before notes
   * existed), so a state without notes keeps its JSON; always the last key.
   */
  resolved?: Anomaly[]
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
  /** Some anomaly no review note has resolved yet (OrderState.resolved). */
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

export function deliveryKey (metadata: Pick<EventMetadata, 'gateway' | 'deliveryId'>): string {
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

/** The fields of an event that the fold reads: a RecordedEvent has them, and so does the lighter record a rebuild decodes. */
export type FoldEvent = DomainEvent & {
  position: number
  recordedAt: string
  metadata: Pick<EventMetadata, 'gateway' | 'deliveryId'>
}

/**
 * An order's state while a rebuild or verify folds it, the only holder of it:
 * the same fields as OrderState, with its records as Maps, because a key
 * that becomes a property (of a dictionary object too) is interned by V8 in
 * its string table, and delivery and fact keys are unique per order: over a
 * whole log that is most of the fold's time. foldingStateJson gives the JSON
 * the same state has as an OrderState.
 */
export interface FoldingState extends Omit<OrderState, 'facts' | 'deliveries'> {
  facts: Map<string, Fact>
  deliveries: Map<string, number>
}

type StateFields = Omit<OrderState, 'facts' | 'deliveries'>

/** How apply reads a state's records and adds to them: `next` is the state being built from `state`. */
interface Records<S extends StateFields> {
  delivery: (state: S, key: string) => number | undefined
  fact: (state: S, key: string) => Fact | undefined
  setDelivery: (next: S, state: S, key: string, position: number) => void
  setFact: (next: S, state: S, key: string, fact: Fact) => void
}

// evolve's records: never changed, a changed record is a copy.
const copiedRecords: Records<OrderState> = {
  delivery: (state, key) => state.deliveries[key],
  fact: (state, key) => state.facts[key],
  setDelivery: (next, state, key, position) => { next.deliveries = withEntry(state.deliveries, key, position) },
  setFact: (next, state, key, fact) => { next.facts = withEntry(state.facts, key, fact) }
}

// A folding state's records: changed in place (`next` is `state`).
const ownRecords: Records<FoldingState> = {
  delivery: (state, key) => state.deliveries.get(key),
  fact: (state, key) => state.facts.get(key),
  setDelivery: (next, _state, key, position) => { next.deliveries.set(key, position) },
  setFact: (next, _state, key, fact) => { next.facts.set(key, fact) }
}

/**
 * Applies one event to an order's state. Returns a new state (the input is
 * not modified) and whether the event was a new fact or a repeat.
 */
export function evolve (state: OrderState, event: FoldEvent): { state: OrderState, outcome: FoldOutcome } {
  const next: OrderState = { ...state }
  const outcome = apply(state, next, event, copiedRecords)
  return { state: next, outcome }
}

/** The state before an order's first event, for foldInto. */
export function startFolding (orderId: string): FoldingState {
  return { ...initialOrderState(orderId), facts: new Map(), deliveries: new Map() }
}

/**
 * evolve for a fold that keeps no earlier state (rebuild, verify): the same
 * rules (one implementation), applied to `state` itself, so nothing is
 * copied per event.
 */
export function foldInto (state: FoldingState, event: FoldEvent): FoldOutcome {
  return apply(state, state, event, ownRecords)
}

// The key order of every OrderState JSON: evolve copies its input's keys in order, from initialOrderState,
// and the first review note adds `resolved` after them.
const stateKeys = [...Object.keys(initialOrderState('')), 'resolved'] as Array<keyof OrderState>

/**
 * The JSON of the OrderState evolve reaches from the same events (JSON.stringify
 * of it, byte for byte: test/orders/rebuild.test.ts), written without turning
 * the records' keys into properties.
 */
export function foldingStateJson (state: FoldingState): string {
  let json = '{'
  for (const key of stateKeys) {
    const text = key === 'facts' || key === 'deliveries' ? recordJson(state[key]) : JSON.stringify(state[key])
    // JSON.stringify leaves out a property whose value has no JSON (undefined).
    if (text !== undefined) json += `${json === '{' ? '' : ','}"${key}":${text}`
  }
  return json + '}'
}

function recordJson (record: ReadonlyMap<string, unknown>): string {
  let json = '{'
  for (const [key, value] of record) {
    const text = JSON.stringify(value) as string | undefined
    if (text !== undefined) json += `${json === '{' ? '' : ','}${JSON.stringify(key)}:${text}`
  }
  return json + '}'
}

/**
 * The fold's one set of rules. `next` is a copy of `state` (evolve) or `state`
 * itself (foldInto), so every value of the previous state is read before the
 * same field of `next` is written, records change only through `records`,
 * and nested objects (placed, facts) are replaced, never modified: evolve's
 * copy shares them with its input.
 */
function apply<S extends StateFields> (state: S, next: S, event: FoldEvent, records: Records<S>): FoldOutcome {
  next.version = state.version + 1
  next.lastPosition = Math.max(state.lastPosition, event.position)
  next.firstSeenAt = minIso(state.firstSeenAt, event.recordedAt)
  next.updatedAt = maxIso(state.updatedAt, event.recordedAt)
  const delivery = deliveryKey(event.metadata)
  const firstDelivery = records.delivery(state, delivery)
  if (firstDelivery !== undefined) {
    next.duplicateCount = state.duplicateCount + 1
    return { kind: 'duplicate', reason: 'delivery', duplicateOf: firstDelivery }
  }
  records.setDelivery(next, state, delivery, event.position)

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
        return { kind: 'duplicate', reason: 'fact', duplicateOf: placed.firstPosition }
      }
      next.placed = { amount, currency, firstPosition: event.position }
      return { kind: 'applied' }
    }
    case 'PaymentPending':
    case 'PaymentSucceeded':
    case 'PaymentFailed':
    case 'PaymentRefunded':
    case 'RefundFailed':
    case 'PaymentClosed':
      return applyFact(state, next, event.type, event.data, event.position, records)
    case 'UnattributedReportReceived': {
      // Only folded into the view of an order its transaction id joins it to (orderView's `linked`).
      const { reportedType, reason: _reason, ...report } = event.data
      return applyFact(state, next, reportedType, { ...report, orderId: state.orderId }, event.position, records)
    }
    case 'EndpointChanged':
      // Never in an order's stream (~endpoints): nothing about money or an order to fold.
      return { kind: 'applied' }
    case 'ReviewNoteRecorded':
      // Never money: the anomalies it names stay in the view and stop asking for review (viewOf).
      next.resolved = unionSorted(state.resolved ?? [], event.data.resolves)
      return { kind: 'applied' }
    default:
      return assertNever(event)
  }
}

/** A sorted union without repeats: the same set whatever order the notes came in. */
function unionSorted<T extends string> (a: readonly T[], b: readonly T[]): T[] {
  return [...new Set([...a, ...b])].sort()
}

function isRefund (type: PaymentEventType): boolean {
  return type === 'PaymentRefunded' || type === 'RefundFailed'
}

/** apply for one reported fact: a new fact, or a repeat merged into the fact it repeats. */
function applyFact<S extends StateFields> (state: S, next: S, type: PaymentEventType, data: PaymentData, position: number, records: Records<S>): FoldOutcome {
  const key = factKey(type, data)
  const existing = records.fact(state, key)
  if (existing !== undefined) {
    next.duplicateCount = state.duplicateCount + 1
    const merged = mergeReport(existing, type, data)
    if (merged !== existing) records.setFact(next, state, key, merged)
    return { kind: 'duplicate', reason: 'fact', duplicateOf: existing.firstPosition }
  }
  const { amount, currency, gateway, transactionId, refundId, cumulative } = data
  const fact: Fact = { type, amount, currency, gateway, transactionId, refundId, cumulative, firstPosition: position, conflicting: false }
  if (isRefund(type)) fact.at = gatewayInstant(data.gatewayTime)
  records.setFact(next, state, key, fact)
  return { kind: 'applied' }
}

/**
 * A fact with one more report of it. Two reports that disagree keep the
 * larger amount, the first currency code and transaction id in sort order
 * and the later gateway time, so the result does not depend on arrival
 * order; the view flags a disagreement on amount or currency. The same fact
 * (not a copy) when the report adds nothing.
 */
function mergeReport (existing: Fact, type: PaymentEventType, data: PaymentData): Fact {
  const transactionId = existing.transactionId === null || (data.transactionId !== null && data.transactionId < existing.transactionId)
    ? data.transactionId
    : existing.transactionId
  const at = isRefund(type) ? laterInstant(existing.at ?? null, gatewayInstant(data.gatewayTime)) : undefined
  const cumulative = existing.cumulative || data.cumulative
  if (data.amount === existing.amount && data.currency === existing.currency && transactionId === existing.transactionId &&
    cumulative === existing.cumulative && at === existing.at) return existing
  const merged: Fact = {
    ...existing,
    amount: Math.max(existing.amount, data.amount),
    currency: data.currency < existing.currency ? data.currency : existing.currency,
    transactionId,
    cumulative,
    conflicting: existing.conflicting || data.amount !== existing.amount,
    conflictingCurrency: existing.conflictingCurrency === true || data.currency !== existing.currency
  }
  if (at !== undefined) merged.at = at
  return merged
}

function assertNever (value: never): never {
  throw new Error(`unhandled event ${JSON.stringify(value)}`)
}

/** Folds a whole stream (events in log order). */
export function foldOrder (orderId: string, events: Iterable<FoldEvent>): OrderState {
  let state = initialOrderState(orderId)
  for (const event of events) state = evolve(state, event).state
  return state
}

function firstSorted (values: Iterable<string | null>): string | null {
  let best: string | null = null
  for (const value of values) if (value !== null && (best === null || value < best)) best = value
  return best
}

/** A gateway transaction id an order's own facts carry. */
export interface Anchor {
  gateway: string
  transactionId: string
}

/**
 * The transaction ids through which an unattributed report joins an order:
 * those of its own facts whose key holds the transaction id (every fact but
 * a refund keyed by its refund id), so each is exactly the transaction id of
 * an event of the order (unattributed-reports.ts finds the same orders in
 * the log by them).
 */
export function anchorsOf (facts: Iterable<Fact>): Anchor[] {
  const anchors = new Map<string, Anchor>()
  for (const fact of facts) {
    if (fact.transactionId === null || (isRefund(fact.type) && fact.refundId !== null)) continue
    anchors.set(`${fact.gateway}|${fact.transactionId}`, { gateway: fact.gateway, transactionId: fact.transactionId })
  }
  return [...anchors.values()]
}

/**
 * The events among `events` that are unattributed reports joining an order
 * with these facts, in log order: for a log in memory what
 * UnattributedReports.linkedTo reads from the database.
 */
export function reportsJoining<E extends FoldEvent> (facts: Iterable<Fact>, events: Iterable<E>): E[] {
  const anchors = new Set(anchorsOf(facts).map(anchor => `${anchor.gateway}|${anchor.transactionId}`))
  const joining: E[] = []
  for (const event of events) {
    if (event.type === 'UnattributedReportReceived' && event.data.transactionId !== null && anchors.has(`${event.data.gateway}|${event.data.transactionId}`)) joining.push(event)
  }
  return joining.sort((a, b) => a.position - b.position)
}

/**
 * Derives status and anomalies from the distinct facts. Status precedence:
 * refunded › partially_refunded › paid › closed › failed › pending ›
 * awaiting_payment — money that moved outranks any later report, so a late
 * "failed" or "closed" never downgrades "paid".
 *
 * `linked` are the unattributed reports that join the order (events of type
 * UnattributedReportReceived with one of its anchorsOf, in log order): they
 * are folded into a copy of the state, never into the state itself, so
 * whichever arrives first, the report or the payment that names its order,
 * the view is the same.
 */
export function orderView (state: OrderState, context: ViewContext, linked: readonly FoldEvent[] = []): OrderView {
  if (linked.length === 0) return viewOf(state, Object.values(state.facts), context)
  return joinedView({ ...state, facts: new Map(Object.entries(state.facts)), deliveries: new Map(Object.entries(state.deliveries)) }, linked, context)
}

/** orderView of a folding state. */
export function foldingView (state: FoldingState, context: ViewContext, linked: readonly FoldEvent[] = []): OrderView {
  if (linked.length === 0) return viewOf(state, [...state.facts.values()], context)
  return joinedView({ ...state, facts: new Map(state.facts), deliveries: new Map(state.deliveries) }, linked, context)
}

function joinedView (joined: FoldingState, linked: readonly FoldEvent[], context: ViewContext): OrderView {
  for (const event of linked) foldInto(joined, event)
  return viewOf(joined, [...joined.facts.values()], context)
}

/**
 * The currency the order's money is counted in: the one it was paid in (the
 * registered one, when a payment is in it), else the registered one, else
 * the first of its facts'. Money in any other currency is never summed.
 */
function orderCurrency (placed: OrderState['placed'], succeeded: readonly Fact[], facts: readonly Fact[]): string | null {
  if (succeeded.length === 0) return placed?.currency ?? firstSorted(facts.map(fact => fact.currency))
  if (placed !== null && succeeded.some(fact => fact.currency === placed.currency)) return placed.currency
  return firstSorted(succeeded.map(fact => fact.currency))
}

function viewOf (state: StateFields, facts: readonly Fact[], context: ViewContext): OrderView {
  const succeeded = facts.filter(fact => fact.type === 'PaymentSucceeded')
  const has = (type: PaymentEventType): boolean => facts.some(fact => fact.type === type)
  const placed = state.placed
  const currency = orderCurrency(placed, succeeded, facts)
  const payingGateways = new Set(succeeded.map(fact => fact.gateway))

  const paidAmount = succeeded.reduce((sum, fact) => fact.currency === currency ? sum + fact.amount : sum, 0)
  const refunds = tallyRefunds(facts, currency, payingGateways)
  const refundedAmount = refunds.refundedAmount

  const anomalies = new Set<Anomaly>(refunds.anomalies)
  for (const fact of succeeded) {
    if (placed !== null && fact.amount !== placed.amount) anomalies.add(Anomaly.AmountMismatch)
    if (placed !== null && fact.currency !== placed.currency) anomalies.add(Anomaly.CurrencyMismatch)
    if (fact.amount === 0) anomalies.add(Anomaly.ZeroAmountPayment)
  }
  if (facts.some(fact => fact.conflicting)) anomalies.add(Anomaly.AmountMismatch)
  if (facts.some(fact => fact.conflictingCurrency === true)) anomalies.add(Anomaly.CurrencyMismatch)
  if (new Set(succeeded.map(fact => fact.currency)).size > 1) anomalies.add(Anomaly.CurrencyMismatch)
  if (succeeded.length > 1) anomalies.add(Anomaly.DuplicatePayment)
  if (payingGateways.size > 1) anomalies.add(Anomaly.GatewayMismatch)
  if (paidAmount > 0 && refundedAmount > paidAmount) anomalies.add(Anomaly.RefundExceedsPaid)
  if (paidAmount === 0 && refundedAmount > 0) anomalies.add(Anomaly.RefundBeforePayment)
  if (paidAmount > 0 && has('PaymentClosed')) anomalies.add(Anomaly.ClosedAfterPaid)
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
    // Only a registration, a payment of zero, or only a refund that is held until its payment arrives.
    status = OrderStatus.AwaitingPayment
  }

  const sorted = [...anomalies].sort()
  const resolved = state.resolved ?? []
  const moneyFacts = succeeded.length > 0 ? succeeded : facts
  return {
    orderId: state.orderId,
    status,
    // An anomaly a review note resolved is still shown; only one no note has named yet needs review.
    needsReview: sorted.some(anomaly => !resolved.includes(anomaly)),
    anomalies: sorted,
    expectedAmount: placed?.amount ?? null,
    expectedCurrency: placed?.currency ?? null,
    paidAmount,
    refundedAmount,
    currency,
    gateway: firstSorted(moneyFacts.map(fact => fact.gateway)),
    gatewayTradeNo: firstSorted(succeeded.map(fact => fact.transactionId)),
    duplicateCount: state.duplicateCount,
    version: state.version,
    lastPosition: state.lastPosition,
    firstSeenAt: state.firstSeenAt,
    updatedAt: state.updatedAt
  }
}
