import type { SynchronousMode } from '../db/database.js'
import type { NewEvent } from './event-log.js'

/** What the writer thread is started with (workerData). */
export interface WriterSettings {
  path: string
  synchronous: SynchronousMode
  busyTimeoutMs: number
  maxBatchSize: number
}

/** One caller's append, numbered by the HTTP thread. */
export interface WireAppend {
  id: number
  events: readonly NewEvent[]
}

export type ToWriter =
  | { kind: 'append', appends: WireAppend[] }
  | { kind: 'close' }

/**
 * What the writer answers. A committed transaction reports, per event of its
 * appends in order, the stream version and hash it got (positions follow on
 * from `first`); the HTTP thread still holds the events themselves, so they
 * are not sent back.
 */
export type FromWriter =
  | { kind: 'ready', tail: Tail }
  | { kind: 'committed', ids: number[], first: number, recordedAt: string, streamVersions: number[], hashes: string[] }
  | { kind: 'failed', ids: number[], message: string, code: string | undefined }
  | { kind: 'closed' }

export interface Tail {
  position: number
  hash: string
}
