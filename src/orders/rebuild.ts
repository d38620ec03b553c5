import type SQLite from 'better-sqlite3'
import { deriveContext, foldStreams } from './fold-streams.js'
import type { ViewContext } from './order-fold.js'
import { orderRowValues, ordersProjection } from './projector.js'

/** The orders columns in the order orderRowValues gives them. */
export const orderColumns = [
  'order_id', 'status', 'needs_review', 'anomalies', 'expected_amount', 'expected_currency', 'paid_amount',
  'refunded_amount', 'currency', 'gateway', 'gateway_trade_no', 'duplicate_count', 'version', 'last_position',
  'first_seen_at', 'updated_at', 'state'
] as const

export interface RebuildResult {
  events: number
  orders: number
  /** The checkpoint written: the last position of the log. */
  lastPosition: number
  context: ViewContext
}

/**
 * Drops the order projection and folds it again from the log, in one
 * transaction: readers see the old rows or the new ones, never a half-built
 * table, and a failure leaves the old projection in place. Rows come out
 * byte-identical to what OrderProjector writes live (same orderRowValues,
 * same context), which `paynotify verify` and the tests check.
 */
export function rebuildProjections (sqlite: SQLite.Database, onEvent?: () => void): RebuildResult {
  const insert = sqlite.prepare(`INSERT INTO orders (${orderColumns.join(', ')}) VALUES (${orderColumns.map(() => '?').join(', ')})`)
  const checkpoint = sqlite.prepare(`INSERT INTO projections (name, last_position, context) VALUES (?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET last_position = excluded.last_position, context = excluded.context`)
  const tail = sqlite.prepare('SELECT coalesce(max(position), 0) FROM events').pluck() as SQLite.Statement<[], number>
  return sqlite.transaction((): RebuildResult => {
    sqlite.prepare('DELETE FROM orders').run()
    const context = deriveContext(sqlite)
    let events = 0
    let orders = 0
    const count = (): void => {
      events++
      onEvent?.()
    }
    for (const { state } of foldStreams(sqlite, count)) {
      insert.run(orderRowValues(state, context))
      orders++
    }
    const lastPosition = tail.get()!
    checkpoint.run(ordersProjection, lastPosition, JSON.stringify(context))
    return { events, orders, lastPosition, context }
  }).immediate()
}
