import type SQLite from 'better-sqlite3'
import type { Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import type { RecordedEvent } from '../orders/events.js'
import { foldStreamUpTo } from '../projection/fold-streams.js'
import { foldInto } from '../orders/order-fold.js'
import { readStream, rowToEvent } from './read.js'

export type TimelineEntry = RecordedEvent & (
  | { outcome: 'applied' }
  | { outcome: 'duplicate', duplicateReason: 'delivery' | 'fact', duplicateOf: number })

export interface TimelinePage {
  entries: TimelineEntry[]
  /** The streamVersion to pass as the next page's cursor; null on the last page. */
  nextCursor: number | null
  /** The order has no event at all. */
  unknown: boolean
  /** Repeats of the order's deliveries acked but not stored (maxStoredDeliveries). */
  unstoredRepeats: number
}

/**
 * One page of an order's timeline: the events after stream version `cursor`,
 * each marked applied or duplicate exactly as a fold of the whole history
 * marks it. The events before the page are folded first (in pages, without
 * their raw bodies), so memory holds one page and the fold state, however
 * long the history.
 */
export async function readTimelinePage (sqlite: SQLite.Database, db: Kysely<Database>, orderId: string, cursor: number, limit: number): Promise<TimelinePage> {
  const state = foldStreamUpTo(sqlite, orderId, cursor)
  const rows = await readStream(db, orderId, cursor, limit + 1)
  const entries = rows.slice(0, limit).map((row): TimelineEntry => {
    const event = rowToEvent(row)
    const outcome = foldInto(state, event)
    return outcome.kind === 'applied'
      ? { ...event, outcome: 'applied' }
      : { ...event, outcome: 'duplicate', duplicateReason: outcome.reason, duplicateOf: outcome.duplicateOf }
  })
  const unstored = sqlite.prepare('SELECT coalesce(sum(unstored), 0) FROM deliveries WHERE stream_id = ?').pluck().get(orderId) as number
  return {
    entries,
    nextCursor: rows.length > limit ? entries[entries.length - 1]!.streamVersion : null,
    unknown: entries.length === 0 && state.version === 0,
    unstoredRepeats: unstored
  }
}
