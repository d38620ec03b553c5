import type SQLite from 'better-sqlite3'
import type { RecordedEvent } from '../orders/events.js'
import type { CheckpointSigner } from './checkpoint-signature.js'
import { DeliveryCounts } from './deliveries.js'
import { readTail, type OnAppend } from './event-log.js'
import { chainHash } from './hash.js'
import { ExportLineError, type ExportSummary, type ImportedRow } from './ndjson.js'
import { insertRawBodySql } from './raw-bodies.js'
import { rowToEvent, type EventRow } from './read.js'
import { checkpointRecorder } from './signed-checkpoints.js'

/**
 * How a checked file goes into a database:
 * - `verbatim`: the file continues this database's chain (a full export into
 *   a fresh database, or `export --after <tail>`), so rows keep their
 *   positions and hashes, byte for byte; lines already in the database (same
 *   position and hash) are skipped.
 * - `reappend`: anything else (one order, a range that does not start at
 *   this tail): the events are appended after the tail as this database's own
 *   history, with new positions, stream versions and hashes, and their
 *   recorded time, data and metadata unchanged.
 */
export type ImportMode = 'verbatim' | 'reappend'

/** Picks the import mode for a file that passed ChainChecker. */
export function planImport (sqlite: SQLite.Database, summary: ExportSummary): ImportMode {
  const first = summary.first
  if (first === undefined || !summary.contiguous) return 'reappend'
  const tail = readTail(sqlite)
  if (first.position === tail.position + 1) return chainHash(tail.hash, first) === first.hash ? 'verbatim' : 'reappend'
  if (first.position > tail.position) return 'reappend'
  const stored = sqlite.prepare('SELECT hash FROM events WHERE position = ?').get(first.position) as { hash: string } | undefined
  return stored?.hash === first.hash ? 'verbatim' : 'reappend'
}

export interface ImportOptions {
  mode: ImportMode
  /** Runs in the transaction with each batch written (the projector). */
  onAppend?: OnAppend
  /** Called after a rollback, so whatever onAppend cached can be reset. */
  onRollback?: () => void
  /** Called with each row read, written or skipped (progress). */
  onRow?: () => void
  batchSize?: number
  /** This database's checkpoint key: the new tail is signed in the import's transaction, as the service signs its commits. */
  signer?: CheckpointSigner | undefined
  /** The time the signature is recorded at. */
  now?: Date
}

export interface ImportResult {
  mode: ImportMode
  written: number
  /** Lines whose event the database already holds (verbatim mode). */
  skipped: number
  /** Positions given to the written events in this database. */
  firstPosition: number | undefined
  lastPosition: number | undefined
}

/**
 * The import writer: the second writer of the events table, for databases no
 * service is running on (the CLI checks that first). Everything is written in
 * one transaction, so a file that fails half way (a line edited since it was
 * checked, a row this database holds differently) leaves nothing behind. The
 * projection is applied per batch inside the same transaction, as EventLog
 * does.
 */
export async function importRows (sqlite: SQLite.Database, rows: AsyncIterable<ImportedRow>, options: ImportOptions): Promise<ImportResult> {
  const batchSize = options.batchSize ?? 1000
  const insert = sqlite.prepare(`INSERT INTO events
    (position, stream_id, stream_version, type, schema_version, data, metadata, recorded_at, hash)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
  const insertBody = sqlite.prepare(insertRawBodySql)
  const deliveries = new DeliveryCounts(sqlite)
  const storedHash = sqlite.prepare('SELECT hash FROM events WHERE position = ?').pluck() as SQLite.Statement<[number], string>
  const streamVersion = sqlite.prepare('SELECT max(stream_version) FROM events WHERE stream_id = ?').pluck() as SQLite.Statement<[string], number | null>
  const result: ImportResult = { mode: options.mode, written: 0, skipped: 0, firstPosition: undefined, lastPosition: undefined }
  const recordCheckpoint = options.signer === undefined ? undefined : checkpointRecorder(sqlite, options.signer)
  const signedAt = (options.now ?? new Date()).toISOString()
  let batch: RecordedEvent[] = []
  const flush = (): void => {
    if (batch.length > 0) options.onAppend?.(batch)
    batch = []
  }

  sqlite.exec('BEGIN IMMEDIATE')
  try {
    let tail = readTail(sqlite)
    for await (const row of rows) {
      options.onRow?.()
      let stored: EventRow
      if (options.mode === 'verbatim') {
        if (row.position <= tail.position) {
          if (storedHash.get(row.position) !== row.hash) {
            throw new ExportLineError(row.line, `position ${row.position} differs from the event this database holds at that position`)
          }
          result.skipped++
          continue
        }
        if (row.position !== tail.position + 1 || chainHash(tail.hash, row) !== row.hash) {
          throw new ExportLineError(row.line, `position ${row.position} does not continue this database's chain at position ${tail.position}`)
        }
        stored = { position: row.position, stream_id: row.stream_id, stream_version: row.stream_version, type: row.type, schema_version: row.schema_version, data: row.data, metadata: row.metadata, recorded_at: row.recorded_at, hash: row.hash }
      } else {
        const position = tail.position + 1
        const fresh = { position, stream_id: row.stream_id, stream_version: (streamVersion.get(row.stream_id) ?? 0) + 1, type: row.type, schema_version: row.schema_version, data: row.data, metadata: row.metadata, recorded_at: row.recorded_at }
        stored = { ...fresh, hash: chainHash(tail.hash, fresh) }
      }
      if (row.body !== undefined) insertBody.run(row.body.sha256, row.body.encoding, row.body.text)
      insert.run(stored.position, stored.stream_id, stored.stream_version, stored.type, stored.schema_version, stored.data, stored.metadata, stored.recorded_at, stored.hash)
      tail = { position: stored.position, hash: stored.hash }
      result.firstPosition ??= stored.position
      result.lastPosition = stored.position
      result.written++
      // A checkpoint the file carries under this database's own key stays (Ed25519 is deterministic: the same signature).
      if (options.mode === 'verbatim' && row.checkpoint?.publicKey === options.signer?.publicKey) recordCheckpoint?.(tail, signedAt)
      const event = rowToEvent(stored)
      // Counted, never capped: a file that continues this chain keeps every event it holds.
      deliveries.stored(event.streamId, event.metadata)
      batch.push(event)
      if (batch.length >= batchSize) flush()
    }
    flush()
    if (result.written > 0) recordCheckpoint?.(tail, signedAt)
    sqlite.exec('COMMIT')
  } catch (error) {
    if (sqlite.inTransaction) sqlite.exec('ROLLBACK')
    options.onRollback?.()
    throw error
  }
  return result
}
