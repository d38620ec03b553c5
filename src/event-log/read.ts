import type SQLite from 'better-sqlite3'
import { sql, type Kysely, type Selectable } from 'kysely'
import type { Database, EventsTable } from '../db/database.js'
import { upcastEvent, type EventMetadata, type RecordedEvent } from '../orders/events.js'
import { eventsWithBodiesSql, rawBodyRefSql, withRawBody } from './raw-bodies.js'

/**
 * A stored row, and the raw body its metadata refers to by hash when it was
 * read with it (raw-bodies.ts): null when the row refers to none, or to one
 * the database does not hold.
 */
export type EventRow = Selectable<EventsTable> & { raw_body?: string | null, raw_encoding?: string | null }

/** Decodes a stored row, upcasting old schema versions to the current shape; a body read with it goes back in metadata.raw. */
export function rowToEvent (row: EventRow): RecordedEvent {
  const { type, data } = upcastEvent(row.type, row.schema_version, JSON.parse(row.data))
  // Spelled out rather than spread: on Node 20 `{ ...event, position, … }` costs microseconds per row (rebuild, verify).
  return {
    type,
    data,
    position: row.position,
    streamId: row.stream_id,
    streamVersion: row.stream_version,
    schemaVersion: row.schema_version,
    metadata: JSON.parse(withRawBody(row.metadata, row.raw_body)) as EventMetadata,
    recordedAt: row.recorded_at,
    hash: row.hash
  } as RecordedEvent
}

export interface EventQuery {
  after?: number | undefined
  limit: number
  type?: string | undefined
  gateway?: string | undefined
  from?: string | undefined
  to?: string | undefined
  streamId?: string | undefined
}

// The join that brings each row's raw body with it; a row without a reference matches nothing.
const bodyRef = sql.raw<string>(rawBodyRefSql('events.metadata'))

/** One page of the global log, in position order, raw bodies included. */
export async function readEvents (db: Kysely<Database>, query: EventQuery): Promise<EventRow[]> {
  let q = db.selectFrom('events')
    .leftJoin('raw_bodies', join => join.on('raw_bodies.sha256', '=', bodyRef))
    .selectAll('events').select('raw_bodies.body as raw_body')
    .where('position', '>', query.after ?? 0)
  if (query.streamId !== undefined) q = q.where('stream_id', '=', query.streamId)
  if (query.type !== undefined) q = q.where('type', '=', query.type)
  if (query.gateway !== undefined) q = q.where(sql<string>`json_extract(events.metadata, '$.gateway')`, '=', query.gateway)
  if (query.from !== undefined) q = q.where('recorded_at', '>=', query.from)
  if (query.to !== undefined) q = q.where('recorded_at', '<', query.to)
  return await q.orderBy('position').limit(query.limit).execute()
}

/** Up to `limit` events of one order after stream version `after`, in stream order, raw bodies included. */
export async function readStream (db: Kysely<Database>, streamId: string, after: number, limit: number): Promise<EventRow[]> {
  return await db.selectFrom('events')
    .leftJoin('raw_bodies', join => join.on('raw_bodies.sha256', '=', bodyRef))
    .selectAll('events').select('raw_bodies.body as raw_body')
    .where('stream_id', '=', streamId).where('stream_version', '>', after)
    .orderBy('stream_version').limit(limit).execute()
}

/**
 * Iterates rows in position order without holding them all in memory
 * (export, verify, rebuild), each with the raw body it refers to and that
 * body's encoding.
 */
export function iterateRows (sqlite: SQLite.Database, after = 0): IterableIterator<EventRow> {
  const events = eventsWithBodiesSql(sqlite)
  return sqlite.prepare(`SELECT e.*, ${events.body} AS raw_body, ${events.encoding} AS raw_encoding FROM ${events.from}
    WHERE e.position > ? ORDER BY e.position`).iterate(after) as IterableIterator<EventRow>
}
