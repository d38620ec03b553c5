import type SQLite from 'better-sqlite3'
import { StoreUnavailableError } from '../errors.js'
import type { DomainEvent, EventMetadata, RecordedEvent } from '../orders/events.js'
import type { CheckpointSigner } from './checkpoint-signature.js'
import { genesisHash } from './hash.js'
import { checkpointRecorder } from './signed-checkpoints.js'
import { DeliveryCounts } from './deliveries.js'
import { insertRawBodySql, splitRawBody, type RawBody } from './raw-bodies.js'
import { sequenceAppends, type SequenceStore } from './sequence.js'

/** An event to append; the log assigns position, stream version, time and hash. */
export type NewEvent = DomainEvent & {
  streamId: string
  metadata: EventMetadata
}

/**
 * An event ready to write: its data and metadata both as the objects the
 * projector folds and as the JSON the log stores (the metadata as
 * splitRawBody leaves it), and its raw body apart when it is stored apart.
 * prepareEvent makes one of a NewEvent; the writer thread makes its own from
 * what crossed to it (writer-worker.ts).
 */
export interface PreparedEvent {
  streamId: string
  type: DomainEvent['type']
  data: DomainEvent['data']
  dataJson: string
  metadata: EventMetadata
  metadataJson: string
  body: RawBody | undefined
}

export function prepareEvent (event: NewEvent): PreparedEvent {
  const split = splitRawBody(event.metadata)
  return {
    streamId: event.streamId,
    type: event.type,
    data: event.data,
    dataJson: JSON.stringify(event.data),
    metadata: event.metadata,
    metadataJson: JSON.stringify(split.metadata),
    body: split.body
  }
}

/**
 * Runs inside the append transaction with the events just written, so the
 * projection commits (or rolls back) together with them.
 */
export type OnAppend = (events: readonly RecordedEvent[]) => void

export interface EventLogOptions {
  /** Most events written in one transaction; 1 commits every request on its own (the naive baseline in bench/). */
  maxBatchSize?: number
  onAppend?: OnAppend
  /** Called after a batch rolled back, so whatever onAppend cached can be reset. */
  onRollback?: () => void
  clock?: () => Date
  /** Signs the tail of every batch in its transaction (signed-checkpoints.ts); without it the log is unsigned. */
  signer?: CheckpointSigner
}

/** Position and hash of the last event of a log (position 0 and the genesis hash when it is empty). */
export interface Tail { position: number, hash: string }

export function readTail (sqlite: SQLite.Database): Tail {
  const row = sqlite.prepare('SELECT position, hash FROM events ORDER BY position DESC LIMIT 1').get() as Tail | undefined
  return row ?? { position: 0, hash: genesisHash }
}

/** One append as committed: the events stored, and how many of those given repeated a delivery already in the log. */
export interface AppendResult {
  recorded: RecordedEvent[]
  /**
   * Events whose delivery (order, gateway and deliveryId) the log held
   * before them, stored or counted: a gateway's retry. The notify route
   * counts a callback made only of repeats as a duplicate (metrics.ts).
   */
  repeats: number
}

/** One caller's events as commitNow wrote them: null for a repeat counted and not stored (maxStoredDeliveries). */
export interface CommittedAppend {
  events: Array<RecordedEvent | null>
  repeats: number
}

/** One committed transaction, for metrics: the events its appends carried and how long it took. */
export interface CommitReport {
  /** Events of the batch's appends, repeats counted and not stored included (what PAYNOTIFY_BATCH_MAX bounds). */
  events: number
  /** From BEGIN IMMEDIATE to the end of COMMIT: the lock wait, the inserts, the projection and the fsync. */
  seconds: number
}

/** What the routes need of the log: the in-process EventLog and the writer thread both provide it. */
export interface EventAppender {
  /**
   * Appends the events of one request atomically; resolves after they are
   * durable, with the events stored: a repeat beyond maxStoredDeliveries is
   * counted, not stored, and left out.
   */
  append: (events: readonly NewEvent[]) => Promise<RecordedEvent[]>
  /** append, also telling how many of the events repeated a delivery already in the log. */
  appendWithRepeats: (events: readonly NewEvent[]) => Promise<AppendResult>
}

/** The writers' commits as they happen (EventLog, WriterThread): metrics.ts counts batch sizes and commit times. */
export interface CommitObservable {
  /** Calls `listener` after every committed transaction; returns a function that stops it. */
  observeCommits: (listener: (report: CommitReport) => void) => () => void
}

interface PendingAppend {
  events: readonly PreparedEvent[]
  resolve: (result: AppendResult) => void
  reject: (error: Error) => void
}

/**
 * Group commit, for the in-process EventLog and the writer thread alike:
 * appends queue, and the queue is committed on the next turn of the event
 * loop (setImmediate: after the I/O callbacks of this turn, so every request
 * parsed meanwhile joins), in transactions of at most `maxEvents` events.
 * An append is never split (each is atomic) and always fits (an oversized
 * one commits alone). Idle, it commits at once (no timer); under load the
 * batches grow by themselves while the previous one commits.
 */
export class GroupCommitQueue<T extends { events: readonly unknown[] }> {
  readonly #maxEvents: number
  readonly #commit: (batch: T[]) => void | Promise<void>
  #queue: T[] = []
  #scheduled = false
  #committing: Promise<void> | undefined

  /**
   * `commit` writes one batch. When it returns a promise (a store whose I/O
   * is asynchronous: pg-event-log.ts), the next batch waits for it, and
   * everything queued meanwhile joins that next batch; it must not reject.
   */
  constructor (maxEvents: number, commit: (batch: T[]) => void | Promise<void>) {
    this.#maxEvents = Math.max(1, maxEvents)
    this.#commit = commit
  }

  push (append: T): void {
    this.#queue.push(append)
    if (!this.#scheduled && this.#committing === undefined) {
      this.#scheduled = true
      setImmediate(() => { this.flush() })
    }
  }

  /** Commits everything queued now, batch after batch (an asynchronous commit: each after the one before). */
  flush (): void {
    this.#scheduled = false
    while (this.#queue.length > 0 && this.#committing === undefined) {
      let count = 1
      let size = this.#queue[0]!.events.length
      while (count < this.#queue.length && size + this.#queue[count]!.events.length <= this.#maxEvents) size += this.#queue[count++]!.events.length
      const committing = this.#commit(this.#queue.splice(0, count))
      if (committing !== undefined) {
        const next = (): void => {
          this.#committing = undefined
          this.flush()
        }
        this.#committing = committing.then(next, next)
      }
    }
  }

  /** Resolves once nothing is queued and no commit is in flight. */
  async drained (): Promise<void> {
    this.flush()
    while (this.#committing !== undefined) await this.#committing
  }
}

/** A batch as a writer committed it: each caller's events, and the transaction's report. */
export interface WrittenBatch { appends: CommittedAppend[], report: CommitReport }

/**
 * What every writer of the log shares: appends are prepared (a bad event
 * fails its own append only), queued and group-committed (GroupCommitQueue),
 * and each caller resolves only after its batch committed; a failed batch
 * rejects every caller in it and writes none. A writer supplies writeBatch:
 * synchronous on SQLite (EventLog), asynchronous on PostgreSQL (PgEventLog).
 */
export abstract class QueuedEventWriter implements EventAppender, CommitObservable {
  readonly #commitListeners = new Set<(report: CommitReport) => void>()
  readonly #queue: GroupCommitQueue<PendingAppend>
  protected closed = false

  constructor (maxBatchSize: number | undefined) {
    this.#queue = new GroupCommitQueue(maxBatchSize ?? 1024, batch => this.#commit(batch))
  }

  /** Writes these appends (one entry per caller) in one transaction. */
  protected abstract writeBatch (appends: ReadonlyArray<readonly PreparedEvent[]>): WrittenBatch | Promise<WrittenBatch>

  /** Appends the events of one request atomically; resolves after they are durable. */
  async append (events: readonly NewEvent[]): Promise<RecordedEvent[]> {
    return (await this.appendWithRepeats(events)).recorded
  }

  appendWithRepeats (events: readonly NewEvent[]): Promise<AppendResult> {
    if (this.closed) return Promise.reject(new StoreUnavailableError('event log is closed'))
    let prepared: PreparedEvent[]
    try {
      // Before anything is queued: an event that cannot be encoded fails its own append only.
      prepared = events.map(prepareEvent)
    } catch (error) {
      return Promise.reject(error)
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ events: prepared, resolve, reject })
    })
  }

  observeCommits (listener: (report: CommitReport) => void): () => void {
    this.#commitListeners.add(listener)
    return () => { this.#commitListeners.delete(listener) }
  }

  /** Writes what is queued now (an asynchronous writer: see drained). */
  protected flush (): void {
    this.#queue.flush()
  }

  /** Resolves once everything queued is written. */
  protected async drained (): Promise<void> {
    await this.#queue.drained()
  }

  #commit (batch: PendingAppend[]): void | Promise<void> {
    const fail = (error: unknown): void => { for (const pending of batch) pending.reject(error as Error) }
    let written: WrittenBatch | Promise<WrittenBatch>
    try {
      written = this.writeBatch(batch.map(pending => pending.events))
    } catch (error) {
      fail(error)
      return
    }
    if (written instanceof Promise) return written.then(done => { this.#settle(batch, done) }, fail)
    this.#settle(batch, written)
  }

  #settle (batch: PendingAppend[], written: WrittenBatch): void {
    batch.forEach((pending, i) => {
      const { events, repeats } = written.appends[i]!
      pending.resolve({ recorded: events.filter((event): event is RecordedEvent => event !== null), repeats })
    })
    for (const listener of this.#commitListeners) listener(written.report)
  }
}

/**
 * The only writer of the events table on SQLite. Appends are group-committed:
 * callers queue, and the queue is written in one BEGIN IMMEDIATE transaction
 * per turn of the event loop, so one fsync serves every request that arrived
 * while the previous batch was committing. An idle log commits at once (no
 * timer); under load batches grow by themselves.
 */
export class EventLog extends QueuedEventWriter {
  readonly #sqlite: SQLite.Database
  readonly #onAppend: OnAppend | undefined
  readonly #onRollback: (() => void) | undefined
  readonly #clock: () => Date
  readonly #recordCheckpoint: ((tail: Tail, signedAt: string) => void) | undefined
  readonly #sequenceStore: SequenceStore
  #tail: Tail
  #batches = 0

  constructor (sqlite: SQLite.Database, options: EventLogOptions = {}) {
    super(options.maxBatchSize)
    this.#sqlite = sqlite
    this.#onAppend = options.onAppend
    this.#onRollback = options.onRollback
    this.#clock = options.clock ?? (() => new Date())
    this.#recordCheckpoint = options.signer === undefined ? undefined : checkpointRecorder(sqlite, options.signer)
    const deliveries = new DeliveryCounts(sqlite)
    const insert = sqlite.prepare(`INSERT INTO events
      (position, stream_id, stream_version, type, schema_version, data, metadata, recorded_at, hash)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
    const insertBody = sqlite.prepare(insertRawBodySql)
    const streamVersion = sqlite.prepare('SELECT max(stream_version) AS v FROM events WHERE stream_id = ?').pluck() as SQLite.Statement<[string], number | null>
    this.#sequenceStore = {
      storedCount: event => deliveries.storedCount(event.streamId, event.metadata),
      stored: event => { deliveries.stored(event.streamId, event.metadata) },
      unstored: (event, at) => { deliveries.unstored(event.streamId, event.metadata, at) },
      streamVersion: streamId => streamVersion.get(streamId) ?? 0,
      insert: (row, body) => {
        if (body !== undefined) insertBody.run(body.sha256, body.encoding, body.text)
        insert.run(row.position, row.stream_id, row.stream_version, row.type, row.schema_version, row.data, row.metadata, row.recorded_at, row.hash)
      }
    }
    this.#tail = readTail(sqlite)
  }

  /** Position and hash of the last committed event. */
  get tail (): Tail {
    return { ...this.#tail }
  }

  /** Number of transactions committed or attempted (for benchmarks and tests). */
  get batches (): number {
    return this.#batches
  }

  /** Writes what is queued, then refuses new appends. */
  close (): void {
    this.flush()
    this.closed = true
  }

  protected writeBatch (appends: ReadonlyArray<readonly PreparedEvent[]>): WrittenBatch {
    return this.commitNow(appends)
  }

  /**
   * Writes these appends (one entry per caller) in one BEGIN IMMEDIATE
   * transaction now, with onAppend inside it, and returns each caller's
   * events as recorded, in the order given (null for a repeat beyond
   * maxStoredDeliveries, counted and not stored), with the transaction's
   * report for the caller to pass on (observeCommits listeners are not
   * called). Throws StoreUnavailableError after a rollback. The writer
   * thread drives its batches through this; append() queues into it.
   */
  commitNow (appends: ReadonlyArray<readonly PreparedEvent[]>): WrittenBatch {
    if (this.closed) throw new StoreUnavailableError('event log is closed')
    const recordedAt = this.#clock().toISOString()
    const before = this.#tail
    this.#batches++
    const started = performance.now()
    try {
      const written = this.#sqlite.transaction(() => {
        const sequenced = sequenceAppends(appends, before, recordedAt, this.#sequenceStore)
        this.#onAppend?.(sequenced.all)
        if (sequenced.tail.position > before.position) this.#recordCheckpoint?.(sequenced.tail, recordedAt)
        this.#tail = sequenced.tail
        return sequenced
      }).immediate()
      const events = appends.reduce((sum, events) => sum + events.length, 0)
      return {
        appends: written.perCaller.map((events, caller) => ({ events, repeats: written.repeats[caller]! })),
        report: { events, seconds: (performance.now() - started) / 1000 }
      }
    } catch (cause) {
      // Re-read rather than trust memory: another writer may be why the batch failed.
      this.#tail = this.#safeReadTail(before)
      this.#onRollback?.()
      throw new StoreUnavailableError('the event store could not commit; retry later', { cause })
    }
  }

  #safeReadTail (fallback: Tail): Tail {
    try {
      return readTail(this.#sqlite)
    } catch {
      return fallback
    }
  }
}
