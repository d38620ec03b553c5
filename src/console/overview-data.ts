import type SQLite from 'better-sqlite3'
import { readChainCheckpoint } from '../event-log/chain-checkpoint.js'
import { latestSignedCheckpoint } from '../event-log/signed-checkpoints.js'

// What the overview reads. Every query is bounded and walks an index (EXPLAIN QUERY PLAN in
// test/console/overview.test.ts checks each): the page must stay cheap on a log of millions.

/**
 * Most events of the last hour the per-minute counts read. Each is a row
 * read and its metadata parsed (json_extract): ~1 µs apiece, so the cap
 * holds the page under ~100 ms however busy the hour was; past it the
 * counts cover the latest events only, and the page says from when.
 */
export const minuteScanCap = 50_000

/** Callbacks of one minute (`YYYY-MM-DDTHH:MM`, UTC) from one gateway. */
export interface MinuteCount { minute: string, gateway: string, count: number }

export interface CallbacksPerMinute {
  /** The first minute of the window, `YYYY-MM-DDTHH:MM`. */
  since: string
  counts: MinuteCount[]
  /** Set when the hour held more than minuteScanCap events: counts start at this event's time. */
  truncatedAt: string | null
}

/** The minute `at` falls in, as the log's ISO times spell it (`YYYY-MM-DDTHH:MM`). */
export function minuteOf (at: Date): string {
  return at.toISOString().slice(0, 16)
}

/**
 * Callbacks (events that carry the raw request they came in) per minute and
 * gateway over the 60 minutes ending with `now`'s: a range of the
 * events_recorded_at index, newest first, at most minuteScanCap rows.
 */
export function callbacksPerMinute (sqlite: SQLite.Database, now: Date): CallbacksPerMinute {
  const since = minuteOf(new Date(now.getTime() - 59 * 60_000))
  const counts = sqlite.prepare(`SELECT substr(recorded_at, 1, 16) AS minute, json_extract(metadata, '$.gateway') AS gateway, count(*) AS count
    FROM (SELECT recorded_at, metadata FROM events WHERE recorded_at >= ? ORDER BY recorded_at DESC LIMIT ?)
    WHERE json_type(metadata, '$.raw') IS NOT NULL
    GROUP BY minute, gateway`).all(since, minuteScanCap) as MinuteCount[]
  // The cap's edge: the oldest event it reached, when it stopped short of the window's start.
  const edge = sqlite.prepare('SELECT recorded_at FROM events WHERE recorded_at >= ? ORDER BY recorded_at DESC LIMIT 1 OFFSET ?')
    .get(since, minuteScanCap) as { recorded_at: string } | undefined
  return { since, counts, truncatedAt: edge === undefined ? null : edge.recorded_at }
}

/** Orders per status (the covering index orders_status), most first. */
export function ordersByStatus (sqlite: SQLite.Database): Array<{ status: string, count: number }> {
  return sqlite.prepare('SELECT status, count(*) AS count FROM orders GROUP BY status ORDER BY count DESC, status')
    .all() as Array<{ status: string, count: number }>
}

/** The last event of the log (the primary key's end), or undefined when it is empty. */
export function lastEvent (sqlite: SQLite.Database): { position: number, recordedAt: string } | undefined {
  const row = sqlite.prepare('SELECT position, recorded_at FROM events ORDER BY position DESC LIMIT 1').get() as { position: number, recorded_at: string } | undefined
  return row === undefined ? undefined : { position: row.position, recordedAt: row.recorded_at }
}

/** What is known to hold of the hash chain: the last start-time verification, and the last signed tail. */
export interface ChainStatus {
  /** Position 0 when no start has verified anything yet. */
  verified: { position: number, verifiedAt: string | null }
  signed: { position: number, signedAt: string } | null
}

export function chainStatus (sqlite: SQLite.Database): ChainStatus {
  const checkpoint = readChainCheckpoint(sqlite)
  const verifiedAt = checkpoint.position === 0
    ? null
    : (sqlite.prepare("SELECT verified_at FROM chain_checkpoints WHERE name = 'events'").get() as { verified_at: string } | undefined)?.verified_at ?? null
  const signed = latestSignedCheckpoint(sqlite)
  return {
    verified: { position: checkpoint.position, verifiedAt },
    signed: signed === undefined ? null : { position: signed.position, signedAt: signed.signed_at }
  }
}

/** One row of the recent deliveries list. */
export interface RecentEvent {
  position: number
  recordedAt: string
  type: string
  streamId: string
  gateway: string | null
}

/** The last `limit` events, newest first (the primary key, backwards). */
export function recentEvents (sqlite: SQLite.Database, limit: number): RecentEvent[] {
  return sqlite.prepare(`SELECT position, recorded_at AS recordedAt, type, stream_id AS streamId, json_extract(metadata, '$.gateway') AS gateway
    FROM events ORDER BY position DESC LIMIT ?`).all(limit) as RecentEvent[]
}

/** Whether the database takes the write lock now (what /readyz checks), waiting at most `waitMs` for another writer. */
export function takesWrites (sqlite: SQLite.Database, waitMs: number): boolean {
  // A transaction open on this very connection (an inline writer between statements) is a writer at work.
  if (sqlite.inTransaction) return true
  const timeout = sqlite.pragma('busy_timeout', { simple: true }) as number
  try {
    sqlite.pragma(`busy_timeout = ${Math.trunc(waitMs)}`)
    sqlite.exec('BEGIN IMMEDIATE')
    sqlite.exec('ROLLBACK')
    return true
  } catch {
    return false
  } finally {
    sqlite.pragma(`busy_timeout = ${timeout}`)
  }
}
