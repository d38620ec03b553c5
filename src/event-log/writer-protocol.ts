import type { SynchronousMode } from '../db/database.js'
import type { Tail } from './event-log.js'

/** What the writer thread is started with (workerData). */
export interface WriterSettings {
  path: string
  synchronous: SynchronousMode
  busyTimeoutMs: number
  maxBatchSize: number
  /** The checkpoint signing key (checkpoint-signature.ts), when the log is signed. */
  signingKey?: string | undefined
  /** The projector's outbox (orders/projector.ts), when the service delivers order.* messages. */
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
