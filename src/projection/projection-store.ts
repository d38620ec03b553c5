import type SQLite from 'better-sqlite3'
import { EventType, unattributedStreamPrefix } from '../orders/events.js'
import type { SummaryColumns } from './outbox.js'

/** An orders row as the projector reads it back: the summary and the fold state. */
export interface OrderRowState extends SummaryColumns { state: string }

/** An unattributed report as the projector folds it into the orders it joins. */
export interface ReportRow { position: number, type: string, schema_version: number, data: string, metadata: string, recorded_at: string }

export interface EndpointRow { id: string, events: string | null, enabled: number, created_position: number }

/** An outbound delivery row to write: its message is the one insertMessage answered `message` for. */
export interface NewDelivery { message: number, endpointId: string, orderId: string, due: number, createdAt: string }

/**
 * Everything the order projection reads and writes, for the projector and
 * its parts (OrderProjector, UnattributedReports, EndpointsProjection,
 * OutboxWriter) to call synchronously inside the append transaction. On
 * SQLite each call is a statement on the writer's connection
 * (SqliteProjectionStore); on PostgreSQL the reads a batch needs are made
 * before it is folded and the writes after (pg-projection-store.ts), so
 * both stores run the same projector.
 */
export interface ProjectionStore {
  loadOrder: (orderId: string) => OrderRowState | undefined
  /** Every order, in order id order (the first registered order changes every order's view). */
  allOrders: () => OrderRowState[]
  /** Writes one orders row (projector.ts orderRowValues). */
  upsertOrder: (values: ReadonlyArray<string | number | null>) => void
  readCheckpoint: () => { last_position: number, context: string } | undefined
  writeCheckpoint: (position: number, context: string) => void
  /** The unattributed reports of a transaction id and gateway, in log order. */
  reportsByTransaction: (transactionId: string, gateway: string) => ReportRow[]
  /** The streams whose events anchor an order to a transaction id and gateway (unattributed-reports.ts anchorsTo), in id order. */
  streamsAnchoredTo: (transactionId: string, gateway: string) => string[]
  /** The gateways that have unattributed reports. */
  reportGateways: () => Set<string>
  endpoints: () => EndpointRow[]
  insertEndpoint: (row: { id: string, url: string, events: string | null, description: string | null, enabled: number, createdPosition: number, at: string }) => void
  updateEndpoint: (row: { id: string, url: string, events: string | null, description: string | null, enabled: number, at: string }) => void
  disableEndpoint: (id: string, reason: string | null, at: string) => void
  touchEndpoint: (id: string, at: string) => void
  /** Deletes an endpoint and dead-letters its undelivered messages. */
  deleteEndpoint: (id: string, at: string) => void
  lastMessageVersion: (orderId: string) => number | null
  /** Writes an outbox message; answers what insertDelivery names it by. */
  insertMessage: (message: { messageId: string, type: string, orderId: string, position: number, version: number, payload: string, createdAt: string }) => number
  insertDelivery: (delivery: NewDelivery) => void
}

const reportType = EventType.UnattributedReportReceived

/**
 * The condition that an event `anchor` anchors its order (anchorsOf) to a
 * transaction id and gateway, given as SQL expressions: it has that
 * transaction id and is not a refund keyed by its refund id. Written once for
 * the projector's statements and the admin API's query (`field` reads a
 * member of the data JSON in the dialect at hand).
 */
export function anchorsTo (transactionId: string, gateway: string, field: (member: string) => string = sqliteField): string {
  return `${field('transactionId')} = ${transactionId} AND ${field('gateway')} = ${gateway}
    AND anchor.type NOT IN ('OrderPlaced', '${reportType}')
    AND (anchor.type NOT IN ('PaymentRefunded', 'RefundFailed') OR ${field('refundId')} IS NULL)`
}

const sqliteField = (member: string): string => `json_extract(anchor.data, '$.${member}')`

const summaryColumns = 'state, status, paid_amount, refunded_amount, currency, anomalies, needs_review'
export const ordersProjection = 'orders'

/** The projection's statements on a SQLite connection, each prepared on first use (a read-only or older database never prepares the writes). */
export class SqliteProjectionStore implements ProjectionStore {
  readonly #sqlite: SQLite.Database
  readonly #statements = new Map<string, SQLite.Statement>()

  constructor (sqlite: SQLite.Database) {
    this.#sqlite = sqlite
  }

  #statement (sql: string): SQLite.Statement {
    let statement = this.#statements.get(sql)
    if (statement === undefined) {
      statement = this.#sqlite.prepare(sql)
      this.#statements.set(sql, statement)
    }
    return statement
  }

  loadOrder (orderId: string): OrderRowState | undefined {
    return this.#statement(`SELECT ${summaryColumns} FROM orders WHERE order_id = ?`).get(orderId) as OrderRowState | undefined
  }

  allOrders (): OrderRowState[] {
    return this.#statement(`SELECT ${summaryColumns} FROM orders ORDER BY order_id`).all() as OrderRowState[]
  }

  upsertOrder (values: ReadonlyArray<string | number | null>): void {
    this.#statement(orderUpsertSql).run(values)
  }

  readCheckpoint (): { last_position: number, context: string } | undefined {
    return this.#statement('SELECT last_position, context FROM projections WHERE name = ?').get(ordersProjection) as { last_position: number, context: string } | undefined
  }

  writeCheckpoint (position: number, context: string): void {
    this.#statement(`INSERT INTO projections (name, last_position, context) VALUES (?, ?, ?)
      ON CONFLICT (name) DO UPDATE SET last_position = excluded.last_position, context = excluded.context`).run(ordersProjection, position, context)
  }

  reportsByTransaction (transactionId: string, gateway: string): ReportRow[] {
    return this.#statement(`SELECT position, type, schema_version, data, metadata, recorded_at FROM events
      WHERE json_extract(data, '$.transactionId') = ? AND json_extract(data, '$.gateway') = ? AND type = '${reportType}'
      ORDER BY position`).all(transactionId, gateway) as ReportRow[]
  }

  streamsAnchoredTo (transactionId: string, gateway: string): string[] {
    return this.#statement(`SELECT DISTINCT anchor.stream_id FROM events AS anchor WHERE ${anchorsTo('?', '?')} ORDER BY 1`).pluck().all(transactionId, gateway) as string[]
  }

  reportGateways (): Set<string> {
    // One index seek per gateway: the streams' ids, not their (maybe many) events. '~unattributed;' is the first id after every '~unattributed:…'.
    const next = this.#statement('SELECT stream_id FROM events WHERE stream_id > ? AND stream_id < ? ORDER BY stream_id LIMIT 1').pluck()
    const end = `${unattributedStreamPrefix.slice(0, -1)};`
    const gateways = new Set<string>()
    for (let stream = next.get(unattributedStreamPrefix, end) as string | undefined; stream !== undefined; stream = next.get(stream, end) as string | undefined) {
      gateways.add(stream.slice(unattributedStreamPrefix.length))
    }
    return gateways
  }

  endpoints (): EndpointRow[] {
    return this.#statement('SELECT id, events, enabled, created_position FROM endpoints ORDER BY id').all() as EndpointRow[]
  }

  insertEndpoint (row: { id: string, url: string, events: string | null, description: string | null, enabled: number, createdPosition: number, at: string }): void {
    this.#statement(`INSERT INTO endpoints (id, url, events, description, enabled, disabled_reason, created_position, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?)`).run(row.id, row.url, row.events, row.description, row.enabled, row.createdPosition, row.at, row.at)
  }

  updateEndpoint (row: { id: string, url: string, events: string | null, description: string | null, enabled: number, at: string }): void {
    this.#statement(`UPDATE endpoints SET url = ?, events = ?, description = ?, enabled = ?,
      disabled_reason = CASE WHEN ? = 1 THEN NULL ELSE disabled_reason END, updated_at = ? WHERE id = ?`).run(row.url, row.events, row.description, row.enabled, row.enabled, row.at, row.id)
  }

  disableEndpoint (id: string, reason: string | null, at: string): void {
    this.#statement('UPDATE endpoints SET enabled = 0, disabled_reason = ?, updated_at = ? WHERE id = ?').run(reason, at, id)
  }

  touchEndpoint (id: string, at: string): void {
    this.#statement('UPDATE endpoints SET updated_at = ? WHERE id = ?').run(at, id)
  }

  deleteEndpoint (id: string, at: string): void {
    this.#statement('DELETE FROM endpoints WHERE id = ?').run(id)
    this.#statement(dropDeliveriesSql('?', '?')).run(at, id)
  }

  lastMessageVersion (orderId: string): number | null {
    return this.#statement('SELECT max(version) FROM outbox WHERE order_id = ?').pluck().get(orderId) as number | null
  }

  insertMessage (message: { messageId: string, type: string, orderId: string, position: number, version: number, payload: string, createdAt: string }): number {
    return Number(this.#statement(`INSERT INTO outbox (message_id, type, order_id, position, version, payload, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?)`).run(message.messageId, message.type, message.orderId, message.position, message.version, message.payload, message.createdAt).lastInsertRowid)
  }

  insertDelivery (delivery: NewDelivery): void {
    this.#statement(`INSERT INTO outbound_deliveries (message_seq, endpoint_id, order_id, state, attempts, next_attempt_at, created_at, updated_at)
      VALUES (?, ?, ?, 'pending', 0, ?, ?, ?)`).run(delivery.message, delivery.endpointId, delivery.orderId, delivery.due, delivery.createdAt, delivery.createdAt)
  }
}

/** The orders columns, in the order orderRowValues gives them. */
export const orderColumns = [
  'order_id', 'status', 'needs_review', 'anomalies', 'expected_amount', 'expected_currency', 'paid_amount',
  'refunded_amount', 'currency', 'gateway', 'gateway_trade_no', 'duplicate_count', 'version', 'last_position',
  'first_seen_at', 'updated_at', 'state'
] as const

/** Writes one order row (orderRowValues), whether new or not: the live projector's and rebuild's. */
export const orderUpsertSql = `INSERT INTO orders (${orderColumns.join(', ')}) VALUES (${orderColumns.map(() => '?').join(', ')})
  ON CONFLICT (order_id) DO UPDATE SET ${orderColumns.slice(1).map(column => `${column} = excluded.${column}`).join(', ')}`

/** A deleted endpoint's undelivered messages are dead-lettered with it: nothing stays pending for an endpoint that is gone. */
export function dropDeliveriesSql (at: string, endpointId: string): string {
  return `UPDATE outbound_deliveries SET state = 'dead', last_error = 'endpoint deleted', updated_at = ${at}
    WHERE endpoint_id = ${endpointId} AND state IN ('pending', 'failed')`
}
