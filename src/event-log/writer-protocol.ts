import type { SynchronousMode } from '../db/database.js'
import type { NewEvent, PreparedEvent, Tail } from './event-log.js'
import { splitRawBody } from './raw-bodies.js'

/** What the writer thread is started with (workerData). */
export interface WriterSettings {
  path: string
  synchronous: SynchronousMode
  busyTimeoutMs: number
  maxBatchSize: number
  /** The checkpoint signing key (checkpoint-signature.ts), when the log is signed. */
  signingKey?: string | undefined
  /** The projector's outbox (projection/projector.ts), when the service delivers order.* messages. */
  outbox?: { firstDelayMs: number } | undefined
  /** A file the writer appends the WAL's synced length to, after each sync and before its acks (PAYNOTIFY_WAL_SYNC_LOG). */
  syncLog?: string | undefined
}

/**
 * The appends of one turn of the HTTP thread, flattened: `ids[i]` made
 * `counts[i]` events, whose streamId, type, data JSON, metadata JSON (as the
 * log stores it) and raw body text (null for none) follow one another in
 * `fields`. Strings and numbers only, the cheapest to copy.
 */
export type ToWriter =
  | { kind: 'append', ids: number[], counts: number[], fields: Array<string | null> }
  | { kind: 'close' }

/**
 * What the writer answers. A committed transaction reports, per event of its
 * appends in order, the stream version and hash it got (positions follow on
 * from `first`), or stream version 0 and hash '' for a repeat the log counted
 * but did not store; per append (`ids[i]`), how many of its events repeated
 * a delivery already in the log; and how long the transaction took. The HTTP
 * thread still holds the events themselves, so they are not sent back.
 */
export type FromWriter =
  | { kind: 'ready', tail: Tail }
  | { kind: 'committed', ids: number[], first: number, recordedAt: string, streamVersions: number[], hashes: string[], repeats: number[], seconds: number }
  | { kind: 'failed', ids: number[], message: string, code: string | undefined }
  | { kind: 'closed' }

/** Fields per event in an append message. */
export const fieldsPerEvent = 5

/** Each event's fields of an append message, in order (see ToWriter): the writer stores these exact strings. */
export function encodeEvents (events: readonly NewEvent[]): Array<string | null> {
  const fields: Array<string | null> = []
  for (const event of events) {
    const { metadata, body } = splitRawBody(event.metadata)
    fields.push(event.streamId, event.type, JSON.stringify(event.data), JSON.stringify(metadata), body?.text ?? null)
  }
  return fields
}

/** The event whose fields start at `fields[f]`, as the log writes it: the projector folds objects, so the JSON is parsed once, here. */
export function decodeEvent (fields: ReadonlyArray<string | null>, f: number): PreparedEvent {
  const dataJson = fields[f + 2]!
  const metadataJson = fields[f + 3]!
  const metadata = JSON.parse(metadataJson) as PreparedEvent['metadata']
  const text = fields[f + 4] ?? null
  return {
    streamId: fields[f]!,
    type: fields[f + 1] as PreparedEvent['type'],
    data: JSON.parse(dataJson) as PreparedEvent['data'],
    dataJson,
    metadata,
    metadataJson,
    body: text === null ? undefined : { sha256: metadata.raw!.bodySha256!, encoding: metadata.raw!.encoding, text }
  }
}
