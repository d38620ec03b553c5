import type SQLite from 'better-sqlite3'
import { genesisHash } from './hash.js'
import { eventsWithBodiesSql, withRawBodySql } from './raw-bodies.js'
import { formatCheckpoint, signedCheckpointsBetween } from './signed-checkpoints.js'

export interface ExportSelection {
  /** Only this order's events. */
  streamId?: string | undefined
  /** Only events after this position. */
  after?: number | undefined
  /** From the first event recorded at or after this time (ISO-8601 UTC). */
  from?: string | undefined
  /** Up to the last event recorded before this time. */
  to?: string | undefined
}

export interface ExportRange {
  /** First and last position selected; empty when first > last. */
  first: number
  last: number
  /** Events selected (positions are gap-free, so a range count is exact). */
  count: number
}

/**
 * Resolves a selection to one unbroken position range (intersected with one
 * order, if asked). Time bounds pick the first position recorded at or after
 * `from` and the last recorded before `to`, rather than filtering each row:
 * an export is then always a gap-free slice of the log whose lines chain to
 * each other, which is what lets import prove nothing was dropped.
 */
export function resolveExportRange (sqlite: SQLite.Database, selection: ExportSelection): ExportRange {
  const scalar = (sql: string, ...params: unknown[]): number | null =>
    sqlite.prepare(sql).pluck().get(...params) as number | null
  let first = Math.max(1, (selection.after ?? 0) + 1)
  let last = scalar('SELECT max(position) FROM events') ?? 0
  if (selection.from !== undefined) first = Math.max(first, scalar('SELECT min(position) FROM events WHERE recorded_at >= ?', selection.from) ?? last + 1)
  if (selection.to !== undefined) last = Math.min(last, scalar('SELECT max(position) FROM events WHERE recorded_at < ?', selection.to) ?? 0)
  if (first > last) return { first, last, count: 0 }
  if (selection.streamId === undefined) return { first, last, count: last - first + 1 }
  const stream = sqlite.prepare('SELECT min(position) AS first, max(position) AS last, count(*) AS count FROM events WHERE stream_id = ? AND position BETWEEN ? AND ?')
    .get(selection.streamId, first, last) as { first: number | null, last: number | null, count: number }
  return stream.count === 0 ? { first, last, count: 0 } : { first: stream.first!, last: stream.last!, count: stream.count }
}

// One export line up to its prevHash, built by SQLite: formatting in SQL and taking one string
// per row costs about half of reading nine columns and formatting them here (bench/NOTES.md,
// export). json_quote escapes exactly as JSON.stringify does; formatExportLine in ndjson.ts is
// the reference the tests hold this to. A raw body stored by hash goes back in the metadata,
// so the line carries what `replay --to` re-sends (raw-bodies.ts).
const lineHead = (body: string): string => `'{"position":' || e.position || ',"streamId":' || json_quote(e.stream_id) ||
  ',"streamVersion":' || e.stream_version || ',"type":' || json_quote(e.type) || ',"schemaVersion":' || e.schema_version ||
  ',"data":' || e.data || ',"metadata":' || ${withRawBodySql('e.metadata', body)} || ',"recordedAt":' || json_quote(e.recorded_at) || ',"prevHash":"'`

const lineTail = (prevHash: string, hash: string, checkpoint = ''): string => `${prevHash}","hash":"${hash}"${checkpoint}}\n`

// Rows fetched per query: one call into SQLite per page instead of one per row.
const pageSize = 1024

/**
 * The export lines of a range, in position order; each line's prevHash is the
 * hash of the line before it, and a line whose position the service signed
 * carries that signed checkpoint (one every 1,024 positions at least, and
 * the log's tail), so the file proves itself to whoever holds the public
 * key. The caller must finish or return() the iterator
 * (an order's lines come from one SQLite read; a range's from pages of
 * positions, which is safe because logged events never change).
 */
export function * exportLines (sqlite: SQLite.Database, range: ExportRange, streamId?: string): Generator<string> {
  if (range.count === 0) return
  // Sparse (one row per 1,024 positions): read up front rather than joined to every row.
  const signed = signedCheckpointsBetween(sqlite, range.first, range.last)
  const checkpoint = (position: number): string => {
    const row = signed.get(position)
    return row === undefined ? '' : formatCheckpoint({ publicKey: row.public_key, signature: row.signature })
  }
  const events = eventsWithBodiesSql(sqlite)
  if (streamId !== undefined) {
    // An order's events are scattered: each line looks up the hash just before it (primary key, cheap).
    const rows = sqlite.prepare(`SELECT ${lineHead(events.body)}, coalesce((SELECT p.hash FROM events p WHERE p.position = e.position - 1), ?), e.hash, e.position
      FROM ${events.from} WHERE e.stream_id = ? AND e.position BETWEEN ? AND ? ORDER BY e.stream_version`).raw()
      .iterate(genesisHash, streamId, range.first, range.last) as IterableIterator<[string, string, string, number]>
    for (const [head, prevHash, hash, position] of rows) yield head + lineTail(prevHash, hash, checkpoint(position))
    return
  }
  let prevHash = range.first === 1
    ? genesisHash
    : (sqlite.prepare('SELECT hash FROM events WHERE position = ?').pluck().get(range.first - 1) as string)
  const page = sqlite.prepare(`SELECT ${lineHead(events.body)}, e.hash, e.position FROM ${events.from} WHERE e.position BETWEEN ? AND ? ORDER BY e.position`).raw()
  for (let from = range.first; from <= range.last; from += pageSize) {
    const rows = page.all(from, Math.min(range.last, from + pageSize - 1)) as Array<[string, string, number]>
    for (const [head, hash, position] of rows) {
      yield head + lineTail(prevHash, hash, checkpoint(position))
      prevHash = hash
    }
  }
}

/** A piece of an export: whole lines, UTF-8. */
export interface ExportChunk {
  bytes: Buffer
  lines: number
}

/**
 * The export lines of a range as chunks of about `size` bytes, each line
 * encoded straight into its chunk's buffer (encoding one long string per
 * chunk cost more than reading the row). Every chunk has a buffer of its own:
 * a stream holds on to a written buffer until it is flushed.
 */
export function * exportChunks (sqlite: SQLite.Database, range: ExportRange, streamId?: string, size = 1 << 16): Generator<ExportChunk> {
  let bytes = Buffer.allocUnsafe(2 * size)
  let used = 0
  let lines = 0
  for (const line of exportLines(sqlite, range, streamId)) {
    // A UTF-16 code unit never takes more than 3 bytes of UTF-8.
    const room = 3 * line.length
    if (used + room > bytes.length) {
      if (used > 0) yield { bytes: bytes.subarray(0, used), lines }
      bytes = Buffer.allocUnsafe(Math.max(2 * size, room))
      used = 0
      lines = 0
    }
    used += bytes.write(line, used)
    lines++
    if (used >= size) {
      yield { bytes: bytes.subarray(0, used), lines }
      bytes = Buffer.allocUnsafe(2 * size)
      used = 0
      lines = 0
    }
  }
  if (used > 0) yield { bytes: bytes.subarray(0, used), lines }
}
