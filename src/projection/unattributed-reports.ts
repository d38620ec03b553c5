import { sql, type Kysely, type Selectable } from 'kysely'
import type { Database, EventsTable } from '../db/database.js'
import { EventType, upcastEvent, type EventMetadata, type UnattributedReportData } from '../orders/events.js'
import { anchorsOf, type Fact, type FoldEvent } from '../orders/order-fold.js'
import { anchorsTo, type ProjectionStore, type ReportRow } from './projection-store.js'

/*
 * Where unattributed reports (events of type UnattributedReportReceived) meet
 * the orders they join: a report joins every order whose own facts carry its
 * gateway and transaction id (anchorsOf). Both directions are lookups by
 * transaction id on the events table's events_transaction index
 * (migration 2026-12-07-02): the projector, the rebuild and the admin API
 * read the same rule here.
 */

const reportType = EventType.UnattributedReportReceived

/** The reports and anchors of a log, for the projector (in its append transaction) and a rebuild. */
export class UnattributedReports {
  readonly #store: ProjectionStore
  #gateways: Set<string>

  constructor (store: ProjectionStore) {
    this.#store = store
    this.#gateways = store.reportGateways()
  }

  /** Reads again which gateways have reports (after a rolled-back transaction). */
  reload (): void {
    this.#gateways = this.#store.reportGateways()
  }

  /** Notes a report appended in the current transaction. */
  noteReport (report: UnattributedReportData): void {
    this.#gateways.add(report.gateway)
  }

  /** The reports that join an order with these facts, in log order (orderView's `linked`). */
  linkedTo (facts: Iterable<Fact>): FoldEvent[] {
    // Most logs have no reports at all, or none of an order's gateway: no lookup then.
    if (this.#gateways.size === 0) return []
    const linked: FoldEvent[] = []
    for (const { gateway, transactionId } of anchorsOf(facts)) {
      if (!this.#gateways.has(gateway)) continue
      for (const row of this.#store.reportsByTransaction(transactionId, gateway)) linked.push(toFoldEvent(row))
    }
    // A report has one transaction id, so it matches one anchor at most: only the order is left to fix.
    return linked.length > 1 ? linked.sort((a, b) => a.position - b.position) : linked
  }

  /** The orders a report joins. */
  ordersJoined (report: UnattributedReportData): string[] {
    return report.transactionId === null ? [] : this.#store.streamsAnchoredTo(report.transactionId, report.gateway)
  }
}

function toFoldEvent (row: ReportRow): FoldEvent {
  const { type, data } = upcastEvent(row.type, row.schema_version, JSON.parse(row.data))
  const { gateway, deliveryId } = JSON.parse(row.metadata) as EventMetadata
  return { type, data, position: row.position, recordedAt: row.recorded_at, metadata: { gateway, deliveryId } } as FoldEvent
}

export interface UnattributedQuery {
  /** Keyset cursor: the last position of the previous page. */
  after: number
  limit: number
  /** true: only reports that joined an order; false: only those still unattributed. */
  attributed?: boolean | undefined
}

/** One page of unattributed reports by position, each with the orders it joined; `nextCursor` is set when more may follow. */
export async function listUnattributed (db: Kysely<Database>, query: UnattributedQuery): Promise<{ reports: Array<Selectable<EventsTable> & { orders: string }>, nextCursor: number | null }> {
  const joined = anchorsTo("json_extract(report.data, '$.transactionId')", "json_extract(report.data, '$.gateway')")
  // The orders as a JSON array of ids, in id order.
  const orders = sql<string>`(SELECT json_group_array(stream_id) FROM (SELECT DISTINCT anchor.stream_id FROM events AS anchor WHERE ${sql.raw(joined)} ORDER BY 1))`
  let q = db.selectFrom('events as report').selectAll('report').select(orders.as('orders'))
    .where('report.type', '=', reportType).where('report.position', '>', query.after)
  if (query.attributed !== undefined) {
    q = q.where(query.attributed ? sql<boolean>`exists (SELECT 1 FROM events AS anchor WHERE ${sql.raw(joined)})` : sql<boolean>`not exists (SELECT 1 FROM events AS anchor WHERE ${sql.raw(joined)})`)
  }
  const rows = await q.orderBy('report.position').limit(query.limit + 1).execute()
  const reports = rows.slice(0, query.limit)
  return { reports, nextCursor: rows.length > query.limit ? reports[reports.length - 1]!.position : null }
}
