import type SQLite from 'better-sqlite3'
import { sql, type Kysely, type Selectable } from 'kysely'
import type { Database, EventsTable } from '../db/database.js'
import { EventType, unattributedStreamPrefix, upcastEvent, type EventMetadata, type UnattributedReportData } from '../orders/events.js'
import { anchorsOf, type Fact, type FoldEvent } from '../orders/order-fold.js'

/*
 * Where unattributed reports (events of type UnattributedReportReceived) meet
 * the orders they join: a report joins every order whose own facts carry its
 * gateway and transaction id (anchorsOf). Both directions are lookups by
 * transaction id on the events table's events_transaction index
 * (migration 2026-12-07-02): the projector, the rebuild and the admin API
 * read the same rule here.
 */

const reportType = EventType.UnattributedReportReceived

/**
 * The condition that an event `anchor` anchors its order (anchorsOf) to a
 * transaction id and gateway, given as SQL expressions: it has that
 * transaction id and is not a refund keyed by its refund id. Written once for
 * the projector's statements and the admin API's query.
 */
function anchorsTo (transactionId: string, gateway: string): string {
  return `json_extract(anchor.data, '$.transactionId') = ${transactionId} AND json_extract(anchor.data, '$.gateway') = ${gateway}
    AND anchor.type NOT IN ('OrderPlaced', '${reportType}')
    AND (anchor.type NOT IN ('PaymentRefunded', 'RefundFailed') OR json_extract(anchor.data, '$.refundId') IS NULL)`
}

type ReportRow = Pick<Selectable<EventsTable>, 'position' | 'type' | 'schema_version' | 'data' | 'metadata' | 'recorded_at'>

/** The reports and anchors of one connection's log, for the projector (in its append transaction) and a rebuild. */
export class UnattributedReports {
  readonly #byTransaction: SQLite.Statement<[string, string], ReportRow>
  readonly #anchoring: SQLite.Statement<[string, string], string>
  readonly #nextStream: SQLite.Statement<[string, string], string>
  #gateways: Set<string>

  constructor (sqlite: SQLite.Database) {
    this.#byTransaction = sqlite.prepare(`SELECT position, type, schema_version, data, metadata, recorded_at FROM events
      WHERE json_extract(data, '$.transactionId') = ? AND json_extract(data, '$.gateway') = ? AND type = '${reportType}'
      ORDER BY position`)
    this.#anchoring = sqlite.prepare(`SELECT DISTINCT anchor.stream_id FROM events AS anchor WHERE ${anchorsTo('?', '?')} ORDER BY 1`)
      .pluck() as SQLite.Statement<[string, string], string>
    // One index seek per gateway: the streams' ids, not their (maybe many) events.
    this.#nextStream = sqlite.prepare('SELECT stream_id FROM events WHERE stream_id > ? AND stream_id < ? ORDER BY stream_id LIMIT 1')
      .pluck() as SQLite.Statement<[string, string], string>
    this.#gateways = this.#readGateways()
  }

  /** Reads again which gateways have reports (after a rolled-back transaction). */
  reload (): void {
    this.#gateways = this.#readGateways()
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
      for (const row of this.#byTransaction.all(transactionId, gateway)) linked.push(toFoldEvent(row))
    }
    // A report has one transaction id, so it matches one anchor at most: only the order is left to fix.
    return linked.length > 1 ? linked.sort((a, b) => a.position - b.position) : linked
  }

  /** The orders a report joins. */
  ordersJoined (report: UnattributedReportData): string[] {
    return report.transactionId === null ? [] : this.#anchoring.all(report.transactionId, report.gateway)
  }

  #readGateways (): Set<string> {
    const gateways = new Set<string>()
    // '~unattributed;' is the first id after every '~unattributed:…'.
    const end = `${unattributedStreamPrefix.slice(0, -1)};`
    for (let stream = this.#nextStream.get(unattributedStreamPrefix, end); stream !== undefined; stream = this.#nextStream.get(stream, end)) {
      gateways.add(stream.slice(unattributedStreamPrefix.length))
    }
    return gateways
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
