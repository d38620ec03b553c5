import type SQLite from 'better-sqlite3'
import { chainHash, genesisHash, type ChainedRow } from '../event-log/hash.js'

/** What the event log view filters on: a type, and recorded times in [from, to) (ISO, UTC). */
export interface LogFilter {
  type?: string | undefined
  from?: string | undefined
  to?: string | undefined
}

/** One event of a page, with the chain check the page made of it. */
export interface LogRow {
  position: number
  recordedAt: string
  type: string
  streamId: string
  gateway: string | null
  hash: string
  /** The hash of position - 1 (genesis before position 1): what this event's hash chains onto. */
  prevHash: string
  /** Whether sha256(prevHash ‖ this event as stored) is its stored hash. */
  hashMatches: boolean
}

export interface LogPage {
  rows: LogRow[]
  /** The cursor of the next page (its `after`), or null on the last one. */
  nextAfter: number | null
  /** The cursor of the page before this one (0 for the range's first page), or null when this is the first. */
  previousAfter: number | null
}

type StoredRow = ChainedRow & { hash: string, gateway: string | null }

/**
 * The positions a time range can hold: the log's times rise with its
 * positions (one writer stamps each batch from its clock), so the first
 * event at or after `from` and the last before `to` bound the range, each
 * found on the events_recorded_at index. The range is then read by
 * position, with the times still checked row by row, so a clock stepped
 * back never shows an event outside the range (it can only hide one).
 * Null when the range holds no event.
 */
function positionRange (sqlite: SQLite.Database, filter: LogFilter): { low: number, high: number } | null {
  let low = 0
  let high = Number.MAX_SAFE_INTEGER
  if (filter.from !== undefined) {
    const first = sqlite.prepare('SELECT position FROM events WHERE recorded_at >= ? ORDER BY recorded_at, position LIMIT 1').get(filter.from) as { position: number } | undefined
    if (first === undefined) return null
    low = first.position - 1
  }
  if (filter.to !== undefined) {
    const last = sqlite.prepare('SELECT position FROM events WHERE recorded_at < ? ORDER BY recorded_at DESC, position DESC LIMIT 1').get(filter.to) as { position: number } | undefined
    if (last === undefined) return null
    high = last.position
  }
  return low < high ? { low, high } : null
}

function conditions (filter: LogFilter): { sql: string, params: string[] } {
  const parts: string[] = []
  const params: string[] = []
  if (filter.type !== undefined) {
    parts.push('type = ?')
    params.push(filter.type)
  }
  if (filter.from !== undefined) {
    parts.push('recorded_at >= ?')
    params.push(filter.from)
  }
  if (filter.to !== undefined) {
    parts.push('recorded_at < ?')
    params.push(filter.to)
  }
  return { sql: parts.map(part => ` AND ${part}`).join(''), params }
}

/**
 * Up to `size` events after position `after` that pass the filter, in
 * position order, each with the hash it chains onto and whether its hash
 * holds. Bounded: a position range of the primary key, or of
 * events_type_position with a type, read up to size + 1 rows.
 */
export function readLogPage (sqlite: SQLite.Database, filter: LogFilter, after: number, size: number): LogPage {
  const range = positionRange(sqlite, filter)
  if (range === null) return { rows: [], nextAfter: null, previousAfter: null }
  const where = conditions(filter)
  const start = Math.max(after, range.low)
  const stored = sqlite.prepare(`SELECT position, stream_id, stream_version, type, schema_version, data, metadata, recorded_at, hash,
      json_extract(metadata, '$.gateway') AS gateway
    FROM events WHERE position > ? AND position <= ?${where.sql} ORDER BY position LIMIT ?`)
    .all(start, range.high, ...where.params, size + 1) as StoredRow[]
  const more = stored.length > size
  const page = more ? stored.slice(0, size) : stored
  const before = page.length === 0
    ? []
    : sqlite.prepare(`SELECT position FROM events WHERE position > ? AND position < ?${where.sql} ORDER BY position DESC LIMIT ?`)
      .all(range.low, page[0]!.position, ...where.params, size) as Array<{ position: number }>
  return {
    rows: withPrevHashes(sqlite, page),
    nextAfter: more ? page[page.length - 1]!.position : null,
    // The page before starts where the range does when it is the range's first: no cursor then.
    previousAfter: before.length === 0 ? null : Math.max(0, before[before.length - 1]!.position - 1) > range.low ? before[before.length - 1]!.position - 1 : 0
  }
}

/** Each row with the hash of the position before it (read for the rows whose predecessor is not on the page) and its check. */
function withPrevHashes (sqlite: SQLite.Database, page: readonly StoredRow[]): LogRow[] {
  const hashes = new Map(page.map(row => [row.position, row.hash]))
  hashes.set(0, genesisHash)
  const missing = page.map(row => row.position - 1).filter(position => !hashes.has(position))
  if (missing.length > 0) {
    const rows = sqlite.prepare(`SELECT position, hash FROM events WHERE position IN (${missing.map(() => '?').join(', ')})`).all(...missing) as Array<{ position: number, hash: string }>
    for (const row of rows) hashes.set(row.position, row.hash)
  }
  return page.map(row => {
    // A missing predecessor is a gap in the log: nothing to chain onto, so the check fails.
    const prevHash = hashes.get(row.position - 1) ?? ''
    return {
      position: row.position,
      recordedAt: row.recorded_at,
      type: row.type,
      streamId: row.stream_id,
      gateway: row.gateway,
      hash: row.hash,
      prevHash,
      hashMatches: prevHash !== '' && chainHash(prevHash, row) === row.hash
    }
  })
}
