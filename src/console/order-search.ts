import { sql, type Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import { MalformedError } from '../errors.js'
import { isOrderStream } from '../orders/events.js'
import { Anomaly, OrderStatus, type OrderView } from '../orders/order-fold.js'
import { countOrdersNeedingReview, listOrders, rowToView } from '../orders/queries.js'

/**
 * The console's order list: the admin API's filters (status, anomaly, needs
 * review, gateway) plus currency, a time range and a search, keyset paged by
 * order id through listOrders (src/orders/queries.ts), as the admin API's.
 */

export const timeFields = { updated: 'updated_at', first_seen: 'first_seen_at' } as const
export type TimeField = keyof typeof timeFields

export const orderGateways = ['generic', 'alipay', 'wechatpay', 'stripe', 'standard'] as const

export interface ConsoleOrderFilter {
  status?: OrderStatus | undefined
  anomaly?: Anomaly | undefined
  needsReview?: boolean | undefined
  gateway?: string | undefined
  currency?: string | undefined
  /** Which time `from` and `to` bound. */
  timeField: TimeField
  /** ISO-8601 UTC, inclusive. */
  from?: string | undefined
  /** ISO-8601 UTC, exclusive. */
  to?: string | undefined
  /** An order id, a gateway transaction id or a delivery id. */
  search?: string | undefined
}

const listQueryFields = ['status', 'anomaly', 'review', 'gateway', 'currency', 'time', 'from', 'to', 'q', 'cursor', 'format'] as const
/** The query string of the list page and the export, as the filter form sends it. */
export type OrderListQuery = Partial<Record<typeof listQueryFields[number], string>>

// At most this many orders match one search: a transaction id or delivery id names a handful.
const maxSearchMatches = 1000

function oneOf<T extends string> (values: readonly T[], value: string | undefined, field: string): T | undefined {
  if (value === undefined || value === '') return undefined
  if (!(values as readonly string[]).includes(value)) throw new MalformedError(`must be one of ${values.join(', ')}`, field)
  return value as T
}

/**
 * A time from the filter form: a datetime-local value (no zone: UTC, as every
 * time the console shows) or a full ISO-8601 time, in the stored form.
 */
export function parseFilterTime (value: string | undefined, field: string): string | undefined {
  if (value === undefined || value === '') return undefined
  const local = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?$/.test(value)
  const time = local ? new Date(`${value}Z`) : /^\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:\d{2})$/.test(value) ? new Date(value) : undefined
  if (time === undefined || Number.isNaN(time.getTime())) throw new MalformedError('must be a date and time such as 2026-06-01T10:00', field)
  return time.toISOString()
}

/** Reads and checks the list's query string; a value out of range is a 400 naming its field. */
export function parseOrderFilter (query: OrderListQuery): ConsoleOrderFilter {
  // A field given twice arrives as an array: refused here, before any field is read as a string.
  for (const field of listQueryFields) {
    const value = query[field]
    if (value !== undefined && typeof value !== 'string') throw new MalformedError('must be given once', field)
  }
  const review = oneOf(['yes', 'no'], query.review, 'review')
  const currency = query.currency === undefined || query.currency === '' ? undefined : query.currency.toUpperCase()
  if (currency !== undefined && !/^[A-Z]{3}$/.test(currency)) throw new MalformedError('must be a three-letter currency code', 'currency')
  const search = query.q?.trim()
  if (search !== undefined && search.length > 256) throw new MalformedError('must be at most 256 characters', 'q')
  return {
    status: oneOf(Object.values(OrderStatus), query.status, 'status'),
    anomaly: oneOf(Object.values(Anomaly), query.anomaly, 'anomaly'),
    needsReview: review === undefined ? undefined : review === 'yes',
    gateway: oneOf(orderGateways, query.gateway, 'gateway'),
    currency,
    timeField: oneOf(Object.keys(timeFields) as TimeField[], query.time, 'time') ?? 'updated',
    from: parseFilterTime(query.from, 'from'),
    to: parseFilterTime(query.to, 'to'),
    search: search === '' ? undefined : search
  }
}

/**
 * The orders a search term names: the order id itself, the orders whose
 * events carry it as the gateway's transaction id (through the
 * events_transaction index; an order's gateway_trade_no is always one of its
 * own events' transaction ids, so this finds those too), else the orders
 * that received a delivery with that id (the deliveries table).
 */
export async function ordersMatching (db: Kysely<Database>, term: string): Promise<string[]> {
  const ids = new Set<string>()
  const order = await db.selectFrom('orders').select('order_id').where('order_id', '=', term).executeTakeFirst()
  if (order !== undefined) ids.add(order.order_id)
  const byTransaction = await sql<{ stream_id: string }>`SELECT DISTINCT stream_id FROM events
    WHERE json_extract(data, '$.transactionId') = ${term} LIMIT ${maxSearchMatches}`.execute(db)
  for (const row of byTransaction.rows) if (isOrderStream(row.stream_id)) ids.add(row.stream_id)
  // No index has deliveries by delivery id alone: a scan of the table (1M events, 924k
  // deliveries: ~140 ms, bench/console.js), so only when the term named no order otherwise.
  if (ids.size === 0) {
    const byDelivery = await db.selectFrom('deliveries').select('stream_id').distinct()
      .where('delivery_id', '=', term).limit(maxSearchMatches).execute()
    for (const row of byDelivery) if (isOrderStream(row.stream_id)) ids.add(row.stream_id)
  }
  return [...ids]
}

/**
 * The orders of a filter after `cursor` (an order id), in order id order, at
 * most `limit`; `nextCursor` is set when more may follow.
 */
export async function listConsoleOrders (db: Kysely<Database>, filter: ConsoleOrderFilter, cursor: string | undefined, limit: number): Promise<{ orders: OrderView[], nextCursor: string | null }> {
  const { search, timeField, ...rest } = filter
  let orderIds: string[] | undefined
  if (search !== undefined) {
    orderIds = await ordersMatching(db, search)
    if (orderIds.length === 0) return { orders: [], nextCursor: null }
  }
  return await listOrders(db, { ...rest, orderIds, timeColumn: timeFields[timeField], cursor, limit })
}

export interface ReviewQueuePage {
  orders: OrderView[]
  /** `<first_seen_at>|<order_id>` of the page's last order, when more may follow. */
  nextCursor: string | null
  total: number
}

/**
 * Orders needing review, oldest first (by the time their first event was
 * recorded, then order id). Only the flagged orders are read, through the
 * partial index orders_needs_review.
 */
export async function listReviewQueue (db: Kysely<Database>, cursor: string | undefined, limit: number): Promise<ReviewQueuePage> {
  let q = db.selectFrom('orders').selectAll().where('needs_review', '=', sql.lit(1))
  if (cursor !== undefined) {
    const at = cursor.indexOf('|')
    if (at === -1) throw new MalformedError('is not a cursor of this list', 'cursor')
    const seen = cursor.slice(0, at)
    const id = cursor.slice(at + 1)
    q = q.where(sql<boolean>`(coalesce(first_seen_at, ''), order_id) > (${seen}, ${id})`)
  }
  const rows = await q.orderBy(sql`coalesce(first_seen_at, '')`).orderBy('order_id').limit(limit + 1).execute()
  const page = rows.slice(0, limit)
  const last = page[page.length - 1]
  const total = await countOrdersNeedingReview(db)
  return {
    orders: page.map(rowToView),
    nextCursor: rows.length > limit && last !== undefined ? `${last.first_seen_at ?? ''}|${last.order_id}` : null,
    total
  }
}
