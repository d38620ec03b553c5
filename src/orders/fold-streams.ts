import type SQLite from 'better-sqlite3'
import { rowToEvent, type EventRow } from '../event-log/read.js'
import { evolve, initialOrderState, type OrderState, type ViewContext } from './order-fold.js'

export interface FoldedStream {
  orderId: string
  state: OrderState
}

/** The ViewContext a fresh fold of the whole log gives (what OrderProjector reaches live). */
export function deriveContext (sqlite: SQLite.Database): ViewContext {
  const placed = sqlite.prepare("SELECT EXISTS (SELECT 1 FROM events WHERE type = 'OrderPlaced') AS placed").get() as { placed: number }
  return { ordersRegistered: placed.placed === 1 }
}

/**
 * Folds the log one order at a time, in order id order, and yields each
 * order's final state. Memory stays constant in the size of the log: rows
 * come in pages along the (stream_id, stream_version) unique index, and only
 * the current order's state is held. Pages (not one long iterator) leave the
 * connection free for the caller to write between yields.
 */
export function * foldStreams (sqlite: SQLite.Database, onEvent?: () => void, pageSize = 4096): Generator<FoldedStream> {
  // The raw request is the bulk of metadata and only replay needs it: leaving it in SQLite saves a third of the read.
  const page = sqlite.prepare(`SELECT position, stream_id, stream_version, type, schema_version, data,
      json_remove(metadata, '$.raw') AS metadata, recorded_at, hash
    FROM events WHERE (stream_id, stream_version) > (?, ?)
    ORDER BY stream_id, stream_version LIMIT ?`) as SQLite.Statement<[string, number, number], EventRow>
  let current: FoldedStream | undefined
  let after: [string, number] = ['', 0]
  for (;;) {
    const rows = page.all(after[0], after[1], pageSize)
    for (const row of rows) {
      if (current !== undefined && current.orderId !== row.stream_id) {
        yield current
        current = undefined
      }
      current ??= { orderId: row.stream_id, state: initialOrderState(row.stream_id) }
      current.state = evolve(current.state, rowToEvent(row)).state
      onEvent?.()
    }
    if (rows.length < pageSize) break
    const last = rows[rows.length - 1]!
    after = [last.stream_id, last.stream_version]
  }
  if (current !== undefined) yield current
}
