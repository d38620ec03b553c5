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

export interface OrderFilter {
  status?: string | undefined
  gateway?: string | undefined
  anomaly?: string | undefined
  needsReview?: boolean | undefined
  /** Keyset cursor: the last order id of the previous page. */
  cursor?: string | undefined
  limit: number
}

/** One page of orders by order id; `nextCursor` is set when more may follow. */
export async function listOrders (db: Kysely<Database>, filter: OrderFilter): Promise<{ orders: OrderView[], nextCursor: string | null }> {
  let q = db.selectFrom('orders').selectAll()
  if (filter.status !== undefined) q = q.where('status', '=', filter.status)
  if (filter.gateway !== undefined) q = q.where('gateway', '=', filter.gateway)
  if (filter.anomaly !== undefined) {
    const anomaly = filter.anomaly
    q = q.where(sql<boolean>`exists (select 1 from json_each(orders.anomalies) where json_each.value = ${anomaly})`)
  }
  // A literal, not a parameter: only then can SQLite use the partial index orders_needs_review.
  if (filter.needsReview !== undefined) q = q.where('needs_review', '=', sql.lit(filter.needsReview ? 1 : 0))
  if (filter.cursor !== undefined) q = q.where('order_id', '>', filter.cursor)
  const rows = await q.orderBy('order_id').limit(filter.limit + 1).execute()
  const page = rows.slice(0, filter.limit)
  return {
    orders: page.map(rowToView),
    nextCursor: rows.length > filter.limit ? page[page.length - 1]!.order_id : null
  }
}
