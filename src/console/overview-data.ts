import type SQLite from 'better-sqlite3'
import { readChainCheckpoint } from '../event-log/chain-checkpoint.js'
import { latestSignedCheckpoint } from '../event-log/signed-checkpoints.js'

// What the overview reads. Every query is bounded and walks an index (EXPLAIN QUERY PLAN in
// test/console/overview.test.ts checks each): the page must stay cheap on a log of millions.

/**
 * Most events one look at the last hour reads. Each is a row read and its
 * metadata parsed (json_extract): ~6 µs apiece on a busy 2-core machine,
 * so a look costs at most ~120 ms; past the cap the counts cover the latest
 * events only, and the page says from when.
 */
export const minuteScanCap = 20_000

/** Callbacks of one minute (`YYYY-MM-DDTHH:MM`, UTC) from one gateway. */
export interface MinuteCount { minute: string, gateway: string, count: number }

export interface CallbacksPerMinute {
  /** The first minute of the window, `YYYY-MM-DDTHH:MM`. */
  since: string
  counts: MinuteCount[]
  /** Set when more events arrived between two looks than the cap: counts start at this event's time. */
  truncatedAt: string | null
}

/** The minute `at` falls in, as the log's ISO times spell it (`YYYY-MM-DDTHH:MM`). */
export function minuteOf (at: Date): string {
  return at.toISOString().slice(0, 16)
}

/**
 * Callbacks (events that carry the raw request they came in) per minute
 * and gateway over the 60 minutes ending with the current one, kept by one
 * process between looks: each look reads only the events appended since
 * the last (a range of the primary key), so a page seen often costs little
 * however busy the hour. The first look finds where the hour starts on the
 * events_recorded_at index. A look reads at most minuteScanCap events.
 */
export class CallbackMinutes {
  readonly #sqlite: SQLite.Database
  readonly #cap: number
  readonly #counts = new Map<string, Map<string, number>>()
  /** The last position counted; undefined before the first look. */
  #position: number | undefined
  #truncatedAt: string | null = null

  constructor (sqlite: SQLite.Database, cap = minuteScanCap) {
    this.#sqlite = sqlite
    this.#cap = cap
  }

  read (now: Date): CallbacksPerMinute {
    const since = minuteOf(new Date(now.getTime() - 59 * 60_000))
    for (const minute of this.#counts.keys()) if (minute < since) this.#counts.delete(minute)
    if (this.#truncatedAt !== null && this.#truncatedAt < since) this.#truncatedAt = null
    const tail = (this.#sqlite.prepare('SELECT position FROM events ORDER BY position DESC LIMIT 1').get() as { position: number } | undefined)?.position ?? 0
    // The log's times rise with its positions (one writer stamps each batch): the hour starts at its first event.
    let from = this.#position ?? ((this.#sqlite.prepare('SELECT position FROM events WHERE recorded_at >= ? ORDER BY recorded_at, position LIMIT 1')
      .get(since) as { position: number } | undefined)?.position ?? tail + 1) - 1
    if (tail - from > this.#cap) {
      from = tail - this.#cap
      this.#counts.clear()
      this.#truncatedAt = (this.#sqlite.prepare('SELECT recorded_at FROM events WHERE position = ?').get(from + 1) as { recorded_at: string }).recorded_at
    }
    if (tail > from) {
      const rows = this.#sqlite.prepare(`SELECT substr(recorded_at, 1, 16) AS minute, json_extract(metadata, '$.gateway') AS gateway, count(*) AS count
        FROM events WHERE position > ? AND position <= ? AND recorded_at >= ? AND json_type(metadata, '$.raw') IS NOT NULL
        GROUP BY minute, gateway`).all(from, tail, since) as MinuteCount[]
      for (const { minute, gateway, count } of rows) {
        const byGateway = this.#counts.get(minute) ?? new Map<string, number>()
        byGateway.set(gateway, (byGateway.get(gateway) ?? 0) + count)
        this.#counts.set(minute, byGateway)
      }
    }
    this.#position = Math.max(from, tail)
    const counts: MinuteCount[] = []
    for (const [minute, byGateway] of this.#counts) for (const [gateway, count] of byGateway) counts.push({ minute, gateway, count })
    return { since, counts, truncatedAt: this.#truncatedAt }
  }
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

/** What taking the write lock said: taken (and let go), held by the writer at this instant, or refused (read-only, I/O error). */
export type WriteCheck = 'writable' | 'busy' | 'refused'

/**
 * Takes the write lock and lets it go, as /readyz does, but without
 * waiting: busy_timeout sleeps on this (the HTTP) thread, and a page
 * should not. A writer committing at that instant shows as busy.
 */
export function checkWrites (sqlite: SQLite.Database): WriteCheck {
  // A transaction open on this very connection (an inline writer between statements) is a writer at work.
  if (sqlite.inTransaction) return 'busy'
  const timeout = sqlite.pragma('busy_timeout', { simple: true }) as number
  try {
    sqlite.pragma('busy_timeout = 0')
    sqlite.exec('BEGIN IMMEDIATE')
    sqlite.exec('ROLLBACK')
    return 'writable'
  } catch (error) {
    return (error as { code?: string }).code === 'SQLITE_BUSY' ? 'busy' : 'refused'
  } finally {
    sqlite.pragma(`busy_timeout = ${timeout}`)
  }
}
