import type pg from 'pg'
import type { ExportRange } from './export.js'
import { genesisHash } from './hash.js'
import { formatExportLine } from './ndjson.js'
import type { EventRow } from './read.js'

type Query = Pick<pg.Pool, 'query'>

// The raw body a row's metadata names by hash (raw-bodies.ts rawBodyRef), in PostgreSQL's SQL: the
// 64 hex digits after `"bodySha256":"`. A body is stored as bytea (the UTF-8 bytes of its text).
const bodyRef = "substring(e.metadata FROM '\"bodySha256\":\"([0-9a-f]{64})\"')"
// The body comes back as bytes and is decoded here: a text value cannot hold the U+0000 a body may.
const rowsSql = `SELECT e.*, b.body AS raw_bytes, b.encoding AS raw_encoding
  FROM events e LEFT JOIN raw_bodies b ON b.sha256 = ${bodyRef}`

/**
 * The rows after `after` up to `last`, in position order, each with the raw
 * body it refers to, in pages by position (keyset): each page is its own
 * snapshot, and since positions are given under the head lock in commit
 * order (pg-event-log.ts), every snapshot holds a prefix of the log, so no
 * page can miss a row a later page would have had to show.
 */
export async function * pgEventRows (db: Query, after = 0, last = Number.MAX_SAFE_INTEGER, pageSize = 1000): AsyncGenerator<EventRow> {
  for (let from = after; from < last;) {
    const { rows } = await db.query<EventRow & { raw_bytes: Buffer | null }>(`${rowsSql} WHERE e.position > $1 AND e.position <= $2 ORDER BY e.position LIMIT $3`, [from, last, pageSize])
    if (rows.length === 0) return
    for (const { raw_bytes: bytes, ...row } of rows) yield { ...row, raw_body: bytes === null ? null : bytes.toString('utf8') }
    from = rows[rows.length - 1]!.position
  }
}

/** The export range of the whole log after `after`, as resolveExportRange gives it on SQLite. */
export async function pgExportRange (db: Query, after = 0): Promise<ExportRange> {
  const { rows: [head] } = await db.query<{ position: number }>('SELECT position FROM log_head WHERE id = 1')
  const first = after + 1
  const last = head!.position
  return first > last ? { first, last, count: 0 } : { first, last, count: last - first + 1 }
}

/** The export lines of a range, formatted as SQLite's export formats them (formatExportLine is the reference both are held to). */
export async function * pgExportLines (db: Query, range: ExportRange): AsyncGenerator<string> {
  if (range.count === 0) return
  const { rows: signed } = await db.query<{ position: number, public_key: string, signature: string }>(
    'SELECT position, public_key, signature FROM signed_checkpoints WHERE position BETWEEN $1 AND $2', [range.first, range.last])
  const checkpoints = new Map(signed.map(row => [row.position, { publicKey: row.public_key, signature: row.signature }]))
  let prevHash = genesisHash
  if (range.first > 1) {
    const { rows: [previous] } = await db.query<{ hash: string }>('SELECT hash FROM events WHERE position = $1', [range.first - 1])
    prevHash = previous!.hash
  }
  for await (const row of pgEventRows(db, range.first - 1, range.last)) {
    yield formatExportLine(row, prevHash, checkpoints.get(row.position))
    prevHash = row.hash
  }
}
