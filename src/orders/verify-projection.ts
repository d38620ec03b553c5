import type SQLite from 'better-sqlite3'
import { deriveContext, foldStreams } from './fold-streams.js'
import { orderRowValues, ordersProjection } from './projector.js'
import { orderColumns } from './rebuild.js'

type Cell = string | number | null

export type ProjectionDifference =
  | { kind: 'checkpoint', stored: number, logTail: number }
  | { kind: 'context', stored: string, expected: string }
  | { kind: 'missing', orderId: string }
  | { kind: 'extra', orderId: string }
  | { kind: 'differs', orderId: string, columns: Array<{ column: string, stored: Cell, expected: Cell }> }

export interface ProjectionReport {
  ok: boolean
  events: number
  orders: number
  /** The first difference found, in order id order. */
  difference?: ProjectionDifference
}

/** One line for a person: what differs and where. */
export function describeDifference (difference: ProjectionDifference): string {
  switch (difference.kind) {
    case 'checkpoint':
      return `projection checkpoint is at position ${difference.stored} but the log ends at position ${difference.logTail}`
    case 'context':
      return `projection context is ${difference.stored} but the log gives ${difference.expected}`
    case 'missing':
      return `order ${difference.orderId} has events but no row in the orders projection`
    case 'extra':
      return `order ${difference.orderId} is in the orders projection but has no events`
    case 'differs':
      return `order ${difference.orderId} differs from a fresh fold: ` + difference.columns
        .map(c => `${c.column} stored ${truncate(c.stored)}, fold gives ${truncate(c.expected)}`).join('; ')
  }
}

function truncate (value: Cell): string {
  const text = JSON.stringify(value)
  return text.length > 120 ? `${text.slice(0, 117)}...` : text
}

/**
 * Compares the stored projection with a fresh fold of the log, read-only and
 * in constant memory (one order at a time): the checkpoint must equal the log
 * tail (a deleted or appended last row shows here), the context must match,
 * and every order row must equal, column by column, the row the fold gives.
 */
export function verifyProjection (sqlite: SQLite.Database, logTail: number, onEvent?: () => void): ProjectionReport {
  const checkpoint = sqlite.prepare('SELECT last_position, context FROM projections WHERE name = ?')
    .get(ordersProjection) as { last_position: number, context: string } | undefined
  const report = (difference: ProjectionDifference | undefined, events = 0, orders = 0): ProjectionReport =>
    difference === undefined ? { ok: true, events, orders } : { ok: false, events, orders, difference }
  const storedPosition = checkpoint?.last_position ?? 0
  if (storedPosition !== logTail) return report({ kind: 'checkpoint', stored: storedPosition, logTail })
  const context = deriveContext(sqlite)
  const expectedContext = JSON.stringify(context)
  if (checkpoint !== undefined && checkpoint.context !== expectedContext) {
    return report({ kind: 'context', stored: checkpoint.context, expected: expectedContext })
  }

  const load = sqlite.prepare(`SELECT ${orderColumns.join(', ')} FROM orders WHERE order_id = ?`).raw() as SQLite.Statement<[string], Cell[]>
  let events = 0
  let orders = 0
  for (const { orderId, state } of foldStreams(sqlite, () => { events++; onEvent?.() })) {
    orders++
    const stored = load.get(orderId)
    if (stored === undefined) return report({ kind: 'missing', orderId }, events, orders)
    const expected = orderRowValues(state, context)
    const columns = orderColumns.flatMap((column, i) => stored[i] === expected[i] ? [] : [{ column, stored: stored[i]!, expected: expected[i]! }])
    if (columns.length > 0) return report({ kind: 'differs', orderId, columns }, events, orders)
  }
  const extra = sqlite.prepare(`SELECT order_id FROM orders o WHERE NOT EXISTS
    (SELECT 1 FROM events e WHERE e.stream_id = o.order_id) ORDER BY order_id LIMIT 1`).pluck().get() as string | undefined
  if (extra !== undefined) return report({ kind: 'extra', orderId: extra }, events, orders)
  return report(undefined, events, orders)
}
