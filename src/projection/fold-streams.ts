import type SQLite from 'better-sqlite3'
import { isOrderStream, upcastEvent, type EventMetadata } from '../orders/events.js'
import { foldInto, startFolding, type FoldEvent, type FoldingState, type ViewContext } from '../orders/order-fold.js'

export interface FoldedStream {
  orderId: string
  state: FoldingState
}

/** The ViewContext a fresh fold of the whole log gives (what OrderProjector reaches live). */
export function deriveContext (sqlite: SQLite.Database): ViewContext {
  const placed = sqlite.prepare("SELECT EXISTS (SELECT 1 FROM events WHERE type = 'OrderPlaced') AS placed").get() as { placed: number }
  return { ordersRegistered: placed.placed === 1 }
}

/** A range of order ids: `from` included, `to` excluded; either end open when absent. */
export interface OrderRange {
  from?: string | undefined
  to?: string | undefined
}

export interface FoldStreamsOptions {
  /** Called once per event folded. */
  onEvent?: (() => void) | undefined
  range?: OrderRange | undefined
  pageSize?: number | undefined
}

// What the fold reads of a row, and nothing more. The metadata JSON is mostly the raw
// request (only replay needs it): SQLite extracts the two fields the fold keys on, as a
// two-element JSON array (one parse of the metadata in SQLite and a tiny one here: the
// cheapest of the ways measured, bench/NOTES.md).
const columns = `position, stream_id, stream_version, type, schema_version, data,
  json_extract(metadata, '$.gateway', '$.deliveryId'), recorded_at`
type Row = [position: number, streamId: string, streamVersion: number, type: string, schemaVersion: number,
  data: string, deliveryKeys: string, recordedAt: string]

/**
 * Folds the log one order at a time, in order id order, and yields each
 * order's final state (the streams of unattributed reports are read, not folded). Memory stays constant in the size of the log: rows
 * come in pages along the (stream_id, stream_version) unique index, and only
 * the current order's state is held (folded in place: nothing else sees it
 * until it is yielded). Pages (not one long iterator) leave the connection
 * free for the caller to write between yields; small ones die young in V8's
 * heap (pages of 4096 rows lived long enough to be promoted: more GC time
 * and a larger heap, bench/NOTES.md).
 */
export function * foldStreams (sqlite: SQLite.Database, options: FoldStreamsOptions = {}): Generator<FoldedStream> {
  const { onEvent, range = {}, pageSize = 256 } = options
  const upTo = range.to === undefined ? '' : 'AND stream_id < ?'
  const page = sqlite.prepare(`SELECT ${columns} FROM events
    WHERE (stream_id, stream_version) > (?, ?) ${upTo}
    ORDER BY stream_id, stream_version LIMIT ?`).raw() as SQLite.Statement<unknown[], Row>
  const bounds = range.to === undefined ? [] : [range.to]
  const metadata = sqlite.prepare('SELECT metadata FROM events WHERE position = ?').pluck() as SQLite.Statement<[number], string>
  const metadataOf = (position: number): EventMetadata => JSON.parse(metadata.get(position)!) as EventMetadata
  let current: FoldedStream | undefined
  // Row values: (from, 0) is before the first version of `from`, so `from` itself is included.
  let afterId = range.from ?? ''
  let afterVersion = 0
  for (;;) {
    const rows = page.all(afterId, afterVersion, ...bounds, pageSize)
    for (const row of rows) {
      // Unattributed reports are no order's: orderView joins them to the orders they name (projection-diff.ts).
      if (!isOrderStream(row[1])) {
        onEvent?.()
        continue
      }
      if (current !== undefined && current.orderId !== row[1]) {
        yield current
        current = undefined
      }
      current ??= { orderId: row[1], state: startFolding(row[1]) }
      foldInto(current.state, decode(row, metadataOf))
      onEvent?.()
    }
    if (rows.length < pageSize) break
    const last = rows[rows.length - 1]!
    afterId = last[1]
    afterVersion = last[2]
  }
  if (current !== undefined) yield current
}

/**
 * One order's state after its events up to stream version `upTo`, folded in
 * pages like foldStreams (constant memory however long the order's history):
 * where a page of its timeline starts.
 */
export function foldStreamUpTo (sqlite: SQLite.Database, orderId: string, upTo: number, pageSize = 256): FoldingState {
  const page = sqlite.prepare(`SELECT ${columns} FROM events
    WHERE stream_id = ? AND stream_version > ? AND stream_version <= ?
    ORDER BY stream_version LIMIT ?`).raw() as SQLite.Statement<unknown[], Row>
  const metadata = sqlite.prepare('SELECT metadata FROM events WHERE position = ?').pluck() as SQLite.Statement<[number], string>
  const metadataOf = (position: number): EventMetadata => JSON.parse(metadata.get(position)!) as EventMetadata
  const state = startFolding(orderId)
  let after = 0
  for (;;) {
    const rows = page.all(orderId, after, upTo, pageSize)
    for (const row of rows) foldInto(state, decode(row, metadataOf))
    if (rows.length < pageSize) return state
    after = rows[rows.length - 1]![2]
  }
}

function decode (row: Row, metadataOf: (position: number) => EventMetadata): FoldEvent {
  const { type, data } = upcastEvent(row[3], row[4], JSON.parse(row[5]))
  const [gateway, deliveryId] = JSON.parse(row[6]) as unknown[]
  return { type, data, position: row[0], recordedAt: row[7], metadata: exact(gateway, deliveryId) ?? metadataOf(row[0]) } as FoldEvent
}

/**
 * The two fields as JSON.parse of the whole metadata gives them, or undefined
 * when SQLite's extraction might not: a value that is not a string (missing,
 * a number SQLite formats its own way), or text with U+FFFD, which is what an
 * escaped lone surrogate becomes on its way through SQLite's UTF-8. (The log's
 * metadata is JSON.stringify output, so it has no duplicate keys, where the
 * two would pick different ones.)
 */
function exact (gateway: unknown, deliveryId: unknown): FoldEvent['metadata'] | undefined {
  if (typeof gateway !== 'string' || typeof deliveryId !== 'string') return undefined
  if (gateway.includes('\uFFFD') || deliveryId.includes('\uFFFD')) return undefined
  return { gateway, deliveryId }
}
