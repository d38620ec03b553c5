import type SQLite from 'better-sqlite3'
import type { EventMetadata } from '../orders/events.js'

/**
 * Events the log stores per order and delivery id (gateway + deliveryId, the
 * fold's delivery key): the first delivery and up to 31 repeats. A repeat
 * beyond them is acked (the delivery is already durable) and counted in
 * deliveries.unstored, but not appended, so a captured callback replayed
 * without end costs a counter, not an event each time. 32 covers every
 * gateway's whole retry schedule (Alipay 8 notifications in 25 hours, WeChat
 * Pay 15, Stripe about 16 over 3 days).
 */
export const maxStoredDeliveries = 32

/**
 * The deliveries table as the writers of the events table keep it (EventLog,
 * import), in their transaction. Counted here rather than by a trigger: a
 * trigger parses each event's metadata JSON again, ~10 µs per append.
 */
export class DeliveryCounts {
  readonly #stored: SQLite.Statement<[string, string, string], number>
  readonly #countStored: SQLite.Statement
  readonly #countUnstored: SQLite.Statement

  constructor (sqlite: SQLite.Database) {
    this.#stored = sqlite.prepare('SELECT stored FROM deliveries WHERE stream_id = ? AND gateway = ? AND delivery_id = ?').pluck() as SQLite.Statement<[string, string, string], number>
    this.#countStored = sqlite.prepare(`INSERT INTO deliveries (stream_id, gateway, delivery_id, stored) VALUES (?, ?, ?, 1)
      ON CONFLICT (stream_id, gateway, delivery_id) DO UPDATE SET stored = stored + 1`)
    this.#countUnstored = sqlite.prepare(`UPDATE deliveries SET unstored = unstored + 1, last_unstored_at = ?
      WHERE stream_id = ? AND gateway = ? AND delivery_id = ?`)
  }

  /**
   * How many events of this delivery the log holds already (counting this
   * transaction's): 0 for a first delivery, maxStoredDeliveries or more when
   * a repeat is to be counted and not stored. 0 for an event without a delivery id.
   */
  storedCount (streamId: string, metadata: Partial<EventMetadata>): number {
    const key = deliveryKey(metadata)
    return key === undefined ? 0 : this.#stored.get(streamId, key.gateway, key.deliveryId) ?? 0
  }

  /** Counts an event appended. */
  stored (streamId: string, metadata: Partial<EventMetadata>): void {
    const key = deliveryKey(metadata)
    if (key !== undefined) this.#countStored.run(streamId, key.gateway, key.deliveryId)
  }

  /** Counts a repeat acked but not appended (storedCount reached maxStoredDeliveries). */
  unstored (streamId: string, metadata: Partial<EventMetadata>, at: string): void {
    const key = deliveryKey(metadata)
    if (key !== undefined) this.#countUnstored.run(at, streamId, key.gateway, key.deliveryId)
  }
}

/** The key deliveries counts an event under (none without a text deliveryId): as the migration that added the table counted the events before it. */
export function deliveryKey (metadata: Partial<EventMetadata>): { gateway: string, deliveryId: string } | undefined {
  if (typeof metadata.deliveryId !== 'string') return undefined
  return { gateway: typeof metadata.gateway === 'string' ? metadata.gateway : '', deliveryId: metadata.deliveryId }
}
