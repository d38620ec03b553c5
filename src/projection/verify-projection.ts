import type SQLite from 'better-sqlite3'
import { deriveContext } from './fold-streams.js'
import { projectionChanges, type Cell } from './projection-diff.js'
import { orderColumns, ordersProjection } from './projector.js'

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
  const tally = { events: 0, orders: 0 }
  const report = (difference: ProjectionDifference | undefined): ProjectionReport =>
    difference === undefined ? { ok: true, ...tally } : { ok: false, ...tally, difference }
  const storedPosition = checkpoint?.last_position ?? 0
  if (storedPosition !== logTail) return report({ kind: 'checkpoint', stored: storedPosition, logTail })
  const context = deriveContext(sqlite)
  const expectedContext = JSON.stringify(context)
  if (checkpoint !== undefined && checkpoint.context !== expectedContext) {
    return report({ kind: 'context', stored: checkpoint.context, expected: expectedContext })
  }

  const changes = projectionChanges(sqlite, context, { tally, onEvent })
  const first = changes.next()
  changes.return(undefined)
  if (first.done !== true) {
    const change = first.value
    if (change.kind === 'delete') return report({ kind: 'extra', orderId: String(change.orderId) })
    const { orderId, stored, values } = change
    if (stored === undefined) return report({ kind: 'missing', orderId })
    const columns = orderColumns.flatMap((column, i) => stored[i] === values[i] ? [] : [{ column, stored: stored[i]!, expected: values[i]! }])
    return report({ kind: 'differs', orderId, columns })
  }
  // A NULL order id (a TEXT primary key allows one) sorts outside the ids the fold walks.
  const nullId = sqlite.prepare('SELECT EXISTS (SELECT 1 FROM orders WHERE order_id IS NULL)').pluck().get() === 1
  return report(nullId ? { kind: 'extra', orderId: 'NULL' } : undefined)
}
