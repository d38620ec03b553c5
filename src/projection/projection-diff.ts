import type SQLite from 'better-sqlite3'
import { foldStreams, type OrderRange } from './fold-streams.js'
import type { ViewContext } from '../orders/order-fold.js'
import { SqliteProjectionStore } from './projection-store.js'
import { foldedRowValues, orderColumns } from './projector.js'
import { UnattributedReports } from './unattributed-reports.js'

export type Cell = string | number | null

/**
 * One orders row that is not what a fresh fold of the log gives:
 * `write` the row the fold gives (`stored` is the row there now, if any),
 * or `delete` a row whose order has no events.
 */
export type RowChange =
  | { kind: 'write', orderId: string, values: Cell[], stored: Cell[] | undefined }
  | { kind: 'delete', orderId: Cell, stored: Cell[] }

export interface DiffTally {
  events: number
  orders: number
}

export interface DiffOptions {
  range?: OrderRange | undefined
  /** Called once per event folded. */
  onEvent?: (() => void) | undefined
  /** Counts what was folded, as the walk goes. */
  tally?: DiffTally | undefined
  pageSize?: number | undefined
}

/**
 * Walks a fresh fold of the log (foldStreams) beside the stored orders rows,
 * both in order id order, and yields every row that differs from the fold,
 * in order id order: a merge join, so each stored row is read once, in index
 * order, and memory stays constant. The stored rows come in small pages (a
 * row is ~1 KB: large pages outlive V8's young generation), so the
 * caller may write the changes on the same connection between yields (a
 * page never holds a row the caller has yet to write).
 */
export function * projectionChanges (sqlite: SQLite.Database, context: ViewContext, options: DiffOptions = {}): Generator<RowChange> {
  const { range = {}, onEvent, tally = { events: 0, orders: 0 }, pageSize = 128 } = options
  const stored = storedRows(sqlite, range, pageSize)
  const reports = new UnattributedReports(new SqliteProjectionStore(sqlite))
  let row = stored()
  const count = (): void => {
    tally.events++
    onEvent?.()
  }
  for (const { orderId, state } of foldStreams(sqlite, { range, onEvent: count })) {
    tally.orders++
    while (row !== undefined && precedes(row[0]!, orderId)) {
      yield { kind: 'delete', orderId: row[0]!, stored: row }
      row = stored()
    }
    const values = foldedRowValues(state, context, reports.linkedTo(state.facts.values()))
    if (row !== undefined && row[0] === orderId) {
      if (!sameRow(row, values)) yield { kind: 'write', orderId, values, stored: row }
      row = stored()
    } else {
      yield { kind: 'write', orderId, values, stored: undefined }
    }
  }
  while (row !== undefined) {
    yield { kind: 'delete', orderId: row[0]!, stored: row }
    row = stored()
  }
}

/** A cursor over the stored rows of a range in order id order, read a page at a time: undefined after the last. */
function storedRows (sqlite: SQLite.Database, range: OrderRange, pageSize: number): () => Cell[] | undefined {
  const upTo = range.to === undefined ? '' : 'AND order_id < ?'
  const bounds = range.to === undefined ? [] : [range.to]
  const select = (from: '>=' | '>'): SQLite.Statement<unknown[], Cell[]> =>
    sqlite.prepare(`SELECT ${orderColumns.join(', ')} FROM orders WHERE order_id ${from} ? ${upTo} ORDER BY order_id LIMIT ?`).raw() as SQLite.Statement<unknown[], Cell[]>
  const after = select('>')
  let rows = select('>=').all(range.from ?? '', ...bounds, pageSize)
  let i = 0
  return () => {
    if (i === rows.length) {
      if (rows.length < pageSize) return undefined
      rows = after.all(rows[rows.length - 1]![0], ...bounds, pageSize)
      i = 0
    }
    return rows[i++]
  }
}

function sameRow (stored: readonly Cell[], values: readonly Cell[]): boolean {
  for (let i = 0; i < values.length; i++) if (stored[i] !== values[i]) return false
  return true
}

/**
 * Whether a stored order id sorts before `orderId` in SQLite's order (its
 * BINARY collation: UTF-8 bytes, then length). JavaScript compares UTF-16
 * code units, which differs for characters beyond U+FFFF against U+E000–U+FFFF;
 * a blob (the only other type a TEXT column keeps, besides NULL) sorts after text.
 */
export function precedes (stored: Cell, orderId: string): boolean {
  if (typeof stored !== 'string') return false
  const n = Math.min(stored.length, orderId.length)
  for (let i = 0; i < n; i++) {
    const a = stored.charCodeAt(i)
    const b = orderId.charCodeAt(i)
    if (a !== b) return utf8Rank(a) < utf8Rank(b)
  }
  return stored.length < orderId.length
}

// Surrogates (U+D800–DFFF: halves of characters ≥ U+10000) sort after U+E000–FFFF in UTF-8.
function utf8Rank (unit: number): number {
  return unit < 0xd800 ? unit : unit < 0xe000 ? unit + 0x2000 : unit - 0x800
}
