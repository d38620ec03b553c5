import type { EventsTable } from '../db/database.js'
import { currentSchemaVersion, type RecordedEvent } from '../orders/events.js'
import { maxStoredDeliveries } from './deliveries.js'
import type { PreparedEvent, Tail } from './event-log.js'
import { chainHash } from './hash.js'
import type { RawBody } from './raw-bodies.js'

/** An events row as the writers insert it. */
export type EventRow = EventsTable

/**
 * What sequenceAppends needs of a store, inside the transaction that holds
 * the log's tail: SQLite answers and writes at once (EventLog); PostgreSQL
 * answers from what it read under the head lock and writes the rows
 * afterwards, in a few statements (pg-event-log.ts).
 */
export interface SequenceStore {
  /** Events of this delivery the log holds, this batch's included (DeliveryCounts.storedCount). */
  storedCount: (event: PreparedEvent) => number
  /** Counts an event stored under its delivery. */
  stored: (event: PreparedEvent) => void
  /** Counts a repeat acked and not stored. */
  unstored: (event: PreparedEvent, at: string) => void
  /** The stream's last version in the log before this batch (0 for a new stream). */
  streamVersion: (streamId: string) => number
  /** Writes an event's raw body (if stored apart) and its row. */
  insert: (row: EventRow, body: RawBody | undefined) => void
}

export interface Sequenced {
  /** Each caller's events, in the order given: null for a repeat counted and not stored. */
  perCaller: Array<Array<RecordedEvent | null>>
  /** Per caller, how many events repeated a delivery already held. */
  repeats: number[]
  /** Every event stored, in log order. */
  all: RecordedEvent[]
  tail: Tail
}

/**
 * Gives a batch of appends (one entry per caller) their positions, stream
 * versions and chain hashes after `before`: the one rule both stores follow,
 * so they write the same log from the same appends.
 */
export function sequenceAppends (appends: ReadonlyArray<readonly PreparedEvent[]>, before: Tail, recordedAt: string, store: SequenceStore): Sequenced {
  const versions = new Map<string, number>()
  let { position, hash } = before
  const all: RecordedEvent[] = []
  const repeats = appends.map(() => 0)
  const perCaller = appends.map((events, caller) => events.map(event => {
    // Counted in this transaction too: a repeat is left out only once the copies it repeats commit with it or before it.
    const copies = store.storedCount(event)
    if (copies > 0) repeats[caller]!++
    if (copies >= maxStoredDeliveries) {
      store.unstored(event, recordedAt)
      return null
    }
    store.stored(event)
    const streamVersion = (versions.get(event.streamId) ?? store.streamVersion(event.streamId)) + 1
    versions.set(event.streamId, streamVersion)
    position += 1
    const row: EventRow = {
      position,
      stream_id: event.streamId,
      stream_version: streamVersion,
      type: event.type,
      schema_version: currentSchemaVersion,
      data: event.dataJson,
      metadata: event.metadataJson,
      recorded_at: recordedAt,
      hash: ''
    }
    hash = chainHash(hash, row)
    row.hash = hash
    store.insert(row, event.body)
    // Spelled out rather than spread: on Node 20 `{ ...event, position, … }` costs microseconds per event.
    const recorded = {
      streamId: event.streamId,
      type: event.type,
      data: event.data,
      metadata: event.metadata,
      position,
      streamVersion,
      schemaVersion: currentSchemaVersion,
      recordedAt,
      hash
    } as RecordedEvent
    all.push(recorded)
    return recorded
  }))
  return { perCaller, repeats, all, tail: { position, hash } }
}
