import type { RecordedEvent } from '../orders/events.js'
import { evolve, foldingStateJson, foldingView, initialOrderState, orderView, type FoldEvent, type FoldingState, type FoldOutcome, type OrderState, type OrderView, type ViewContext } from '../orders/order-fold.js'
import { EndpointsProjection } from './endpoints-projection.js'
import { messageTypesOf, OutboxWriter, summaryOf, summaryOfRow, type Cause, type OrderSummary } from './outbox.js'
import type { ProjectionStore } from './projection-store.js'
import { UnattributedReports } from './unattributed-reports.js'

export { orderColumns, orderUpsertSql, ordersProjection } from './projection-store.js'

/**
 * The columns of an order row, in the order the upsert binds them
 * (orderColumns): the view with the unattributed reports that join the order
 * (`linked`, UnattributedReports.linkedTo), and the state of its own stream.
 */
export function orderRowValues (state: OrderState, context: ViewContext, linked: readonly FoldEvent[] = []): Array<string | number | null> {
  return rowValues(orderView(state, context, linked), JSON.stringify(state))
}

/** orderRowValues of a folding state (rebuild, verify): the same row. */
export function foldedRowValues (state: FoldingState, context: ViewContext, linked: readonly FoldEvent[] = []): Array<string | number | null> {
  return rowValues(foldingView(state, context, linked), foldingStateJson(state))
}

function rowValues (view: OrderView, stateJson: string): Array<string | number | null> {
  return [
    view.orderId, view.status, view.needsReview ? 1 : 0, JSON.stringify(view.anomalies),
    view.expectedAmount, view.expectedCurrency, view.paidAmount, view.refundedAmount,
    view.currency, view.gateway, view.gatewayTradeNo, view.duplicateCount, view.version,
    view.lastPosition, view.firstSeenAt, view.updatedAt, stateJson
  ]
}

export interface ProjectorOptions {
  /**
   * Write an order.* message to the outbox for every change of an order's
   * view, with a delivery per endpoint that takes it, due after
   * `firstDelayMs` (projection/outbox.ts). The service's writer does; the CLI's
   * stores (import, rebuild, tests of the fold) do not.
   */
  outbox?: { firstDelayMs: number } | undefined
}

/**
 * Applies new events to the orders table (and EndpointChanged events to the
 * endpoints table). Runs synchronously inside the event log's append
 * transaction (EventLog onAppend), so the projection and the log commit
 * together; records the last position it applied.
 */
export class OrderProjector {
  readonly #store: ProjectionStore
  readonly #reports: UnattributedReports
  readonly #endpoints: EndpointsProjection
  readonly #outbox: OutboxWriter | undefined
  #context: ViewContext

  constructor (store: ProjectionStore, options: ProjectorOptions = {}) {
    this.#store = store
    this.#reports = new UnattributedReports(store)
    this.#endpoints = new EndpointsProjection(store)
    this.#outbox = options.outbox === undefined ? undefined : new OutboxWriter(store, options.outbox)
    this.#context = this.#readContext()
  }

  get context (): ViewContext {
    return { ...this.#context }
  }

  /** Last log position applied to the orders table. */
  lastPosition (): number {
    return this.#store.readCheckpoint()?.last_position ?? 0
  }

  /** Applies events (in log order) and returns each event's outcome. Must run inside a transaction. */
  apply (events: readonly RecordedEvent[]): FoldOutcome[] {
    if (events.length === 0) return []
    this.#outbox?.beginBatch()
    const touched = new Map<string, OrderState>()
    // With the outbox: each touched order's summary as it stands, to tell a change (messageTypesOf).
    const summaries = new Map<string, OrderSummary | null>()
    // Messages written per causing event so far (their webhook-ids' index).
    const sent = new Map<number, number>()
    const outcomes: FoldOutcome[] = []
    const reports: RecordedEvent[] = []
    let contextChangedBy: RecordedEvent | undefined
    const load = (orderId: string): OrderState => touched.get(orderId) ?? this.#loadState(orderId, summaries)
    for (const event of events) {
      if (event.type === 'EndpointChanged') {
        this.#endpoints.apply(event.data, event.position, event.recordedAt)
        outcomes.push({ kind: 'applied' })
        continue
      }
      if (event.type === 'UnattributedReportReceived') {
        // Not an order's event: it changes the view of every order it joins (below).
        this.#reports.noteReport(event.data)
        reports.push(event)
        outcomes.push({ kind: 'applied' })
        continue
      }
      if (event.type === 'OrderPlaced' && !this.#context.ordersRegistered) {
        this.#context = { ...this.#context, ordersRegistered: true }
        contextChangedBy ??= event
      }
      const { state, outcome } = evolve(load(event.streamId), event)
      touched.set(event.streamId, state)
      outcomes.push(outcome)
      this.#noteChange(state, event, summaries, sent)
    }
    for (const report of reports) {
      if (report.type !== 'UnattributedReportReceived') continue
      for (const orderId of this.#reports.ordersJoined(report.data)) {
        const state = load(orderId)
        touched.set(orderId, state)
        this.#noteChange(state, report, summaries, sent)
      }
    }
    for (const state of touched.values()) this.#store.upsertOrder(this.#rowValues(state))
    if (contextChangedBy !== undefined) this.#rederiveAll(contextChangedBy, summaries, sent)
    this.#store.writeCheckpoint(events[events.length - 1]!.position, JSON.stringify(this.#context))
    return outcomes
  }

  /** With the outbox, writes the messages of the change `cause` made to an order's view, if it made one. */
  #noteChange (state: OrderState, cause: Cause, summaries: Map<string, OrderSummary | null>, sent: Map<number, number>): void {
    if (this.#outbox === undefined) return
    const view = orderView(state, this.#context, this.#reports.linkedTo(Object.values(state.facts)))
    const previous = summaries.get(state.orderId) ?? null
    const next = summaryOf(view)
    const types = messageTypesOf(previous, next)
    if (types.length === 0) return
    summaries.set(state.orderId, next)
    const index = sent.get(cause.position) ?? 0
    this.#outbox.write(types, view, previous, cause, index, this.#endpoints.enabled)
    sent.set(cause.position, index + types.length)
  }

  /** Re-reads the checkpoint, e.g. after a rolled-back transaction or a rebuild. */
  reload (): void {
    this.#context = this.#readContext()
    this.#reports.reload()
    this.#endpoints.reload()
  }

  #rowValues (state: OrderState): Array<string | number | null> {
    return orderRowValues(state, this.#context, this.#reports.linkedTo(Object.values(state.facts)))
  }

  #loadState (orderId: string, summaries: Map<string, OrderSummary | null>): OrderState {
    const row = this.#store.loadOrder(orderId)
    if (!summaries.has(orderId)) summaries.set(orderId, row === undefined ? null : summaryOfRow(row))
    return row === undefined ? initialOrderState(orderId) : JSON.parse(row.state) as OrderState
  }

  // The first registered order changes every order's view once (unknown_order): rare, so a full pass is fine.
  // An order this batch changed is compared with what its last message said, not with its row: the row
  // already has the new context's view, which a message written before the registration did not.
  #rederiveAll (cause: Cause, summaries: Map<string, OrderSummary | null>, sent: Map<number, number>): void {
    for (const row of this.#store.allOrders()) {
      const state = JSON.parse(row.state) as OrderState
      if (!summaries.has(state.orderId)) summaries.set(state.orderId, summaryOfRow(row))
      this.#noteChange(state, cause, summaries, sent)
      this.#store.upsertOrder(this.#rowValues(state))
    }
  }

  #readContext (): ViewContext {
    const row = this.#store.readCheckpoint()
    return row === undefined ? { ordersRegistered: false } : JSON.parse(row.context) as ViewContext
  }
}
