import { sql, type Kysely, type Selectable } from 'kysely'
import type { Database, OrdersTable } from '../db/database.js'
import type { Anomaly, OrderStatus, OrderView } from './order-fold.js'

export type OrderRow = Selectable<OrdersTable>

export function rowToView (row: OrderRow): OrderView {
  return {
    orderId: row.order_id,
    status: row.status as OrderStatus,
    needsReview: row.needs_review === 1,
    anomalies: JSON.parse(row.anomalies) as Anomaly[],
    expectedAmount: row.expected_amount,
    expectedCurrency: row.expected_currency,
    paidAmount: row.paid_amount,
    refundedAmount: row.refunded_amount,
    currency: row.currency,
    gateway: row.gateway,
    gatewayTradeNo: row.gateway_trade_no,
    duplicateCount: row.duplicate_count,
    version: row.version,
    lastPosition: row.last_position,
    firstSeenAt: row.first_seen_at,
    updatedAt: row.updated_at
  }
}

export async function findOrder (db: Kysely<Database>, orderId: string): Promise<OrderView | undefined> {
  const row = await db.selectFrom('orders').selectAll().where('order_id', '=', orderId).executeTakeFirst()
  return row === undefined ? undefined : rowToView(row)
}

/** Orders flagged needs_review, the review queue: an anomaly no review note resolved (the partial index orders_needs_review holds exactly these, so the count reads only them). */
export async function countOrdersNeedingReview (db: Kysely<Database>): Promise<number> {
  const row = await db.selectFrom('orders').select(eb => eb.fn.countAll<number>().as('count')).where('needs_review', '=', 1).executeTakeFirstOrThrow()
  return Number(row.count)
}

/** The times an order list can be bounded by. */
export type OrderTimeColumn = 'updated_at' | 'first_seen_at'

export interface OrderFilter {
  status?: string | undefined
  gateway?: string | undefined
  anomaly?: string | undefined
  needsReview?: boolean | undefined
  currency?: string | undefined
  /** Only these orders (a search's matches). */
  orderIds?: readonly string[] | undefined
  /** Which time `from` (inclusive) and `to` (exclusive) bound, both ISO-8601 UTC as stored; updated_at unless said. */
  timeColumn?: OrderTimeColumn | undefined
  from?: string | undefined
  to?: string | undefined
  /** Keyset cursor: the last order id of the previous page. */
  cursor?: string | undefined
  limit: number
}

/** One page of orders by order id; `nextCursor` is set when more may follow. The admin API and the console list through it. */
export async function listOrders (db: Kysely<Database>, filter: OrderFilter): Promise<{ orders: OrderView[], nextCursor: string | null }> {
  let q = db.selectFrom('orders').selectAll()
  if (filter.orderIds !== undefined) q = q.where('order_id', 'in', filter.orderIds)
  if (filter.status !== undefined) q = q.where('status', '=', filter.status)
  if (filter.gateway !== undefined) q = q.where('gateway', '=', filter.gateway)
  if (filter.currency !== undefined) q = q.where('currency', '=', filter.currency)
  if (filter.anomaly !== undefined) {
    const anomaly = filter.anomaly
    q = q.where(sql<boolean>`exists (select 1 from json_each(orders.anomalies) where json_each.value = ${anomaly})`)
  }
  // A literal, not a parameter: only then can SQLite use the partial index orders_needs_review.
  if (filter.needsReview !== undefined) q = q.where('needs_review', '=', sql.lit(filter.needsReview ? 1 : 0))
  const column = filter.timeColumn ?? 'updated_at'
  if (filter.from !== undefined) q = q.where(column, '>=', filter.from)
  if (filter.to !== undefined) q = q.where(column, '<', filter.to)
  if (filter.cursor !== undefined) q = q.where('order_id', '>', filter.cursor)
  const rows = await q.orderBy('order_id').limit(filter.limit + 1).execute()
  const page = rows.slice(0, filter.limit)
  return {
    orders: page.map(rowToView),
    nextCursor: rows.length > filter.limit ? page[page.length - 1]!.order_id : null
  }
}
