import type SQLite from 'better-sqlite3'
import { StoreUnavailableError } from '../errors.js'
import { currentSchemaVersion, type DomainEvent, type EventMetadata, type RecordedEvent } from '../orders/events.js'
import type { CheckpointSigner } from './checkpoint-signature.js'
import { chainHash, genesisHash } from './hash.js'
import { checkpointRecorder } from './signed-checkpoints.js'
import { DeliveryCounts, maxStoredDeliveries } from './deliveries.js'
import { insertRawBodySql, splitRawBody, type RawBody } from './raw-bodies.js'

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
  readonly #commit: (batch: T[]) => void
  #queue: T[] = []
  #scheduled = false

  constructor (maxEvents: number, commit: (batch: T[]) => void) {
    this.#maxEvents = Math.max(1, maxEvents)
    this.#commit = commit
  }

  push (append: T): void {
    this.#queue.push(append)
    if (!this.#scheduled) {
      this.#scheduled = true
      setImmediate(() => { this.flush() })
    }
  }

  /** Commits everything queued now, batch after batch. */
  flush (): void {
    this.#scheduled = false
    while (this.#queue.length > 0) {
      let count = 1
      let size = this.#queue[0]!.events.length
      while (count < this.#queue.length && size + this.#queue[count]!.events.length <= this.#maxEvents) size += this.#queue[count++]!.events.length
      this.#commit(this.#queue.splice(0, count))
    }
  }
}

/**
 * The only writer of the events table. Appends are group-committed: callers
 * queue, and the queue is written in one BEGIN IMMEDIATE transaction per turn
 * of the event loop, so one fsync serves every request that arrived while the
 * previous batch was committing. An idle log commits at once (no timer);
 * under load batches grow by themselves. Each caller resolves only after its
 * batch committed; a failed batch rejects every caller in it and writes none.
 */
export class EventLog implements EventAppender, CommitObservable {
  readonly #sqlite: SQLite.Database
  readonly #onAppend: OnAppend | undefined
  readonly #onRollback: (() => void) | undefined
  readonly #clock: () => Date
  readonly #insert: SQLite.Statement
  readonly #insertBody: SQLite.Statement
  readonly #streamVersion: SQLite.Statement<[string], { v: number | null }>
  readonly #recordCheckpoint: ((tail: Tail, signedAt: string) => void) | undefined
  readonly #deliveries: DeliveryCounts
  readonly #commitListeners = new Set<(report: CommitReport) => void>()
  readonly #queue: GroupCommitQueue<PendingAppend>
  #closed = false
  #tail: Tail
  #batches = 0

  constructor (sqlite: SQLite.Database, options: EventLogOptions = {}) {
    this.#sqlite = sqlite
    this.#queue = new GroupCommitQueue(options.maxBatchSize ?? 1024, batch => { this.#commit(batch) })
    this.#onAppend = options.onAppend
    this.#onRollback = options.onRollback
    this.#clock = options.clock ?? (() => new Date())
    this.#insert = sqlite.prepare(`INSERT INTO events
      (position, stream_id, stream_version, type, schema_version, data, metadata, recorded_at, hash)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
    this.#insertBody = sqlite.prepare(insertRawBodySql)
    this.#streamVersion = sqlite.prepare('SELECT max(stream_version) AS v FROM events WHERE stream_id = ?')
    this.#recordCheckpoint = options.signer === undefined ? undefined : checkpointRecorder(sqlite, options.signer)
    this.#deliveries = new DeliveryCounts(sqlite)
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

  /** Appends the events of one request atomically; resolves after they are durable. */
  async append (events: readonly NewEvent[]): Promise<RecordedEvent[]> {
    return (await this.appendWithRepeats(events)).recorded
  }

  appendWithRepeats (events: readonly NewEvent[]): Promise<AppendResult> {
    if (this.#closed) return Promise.reject(new StoreUnavailableError('event log is closed'))
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

  /** Writes what is queued, then refuses new appends. */
  close (): void {
    this.#queue.flush()
    this.#closed = true
  }

  #commit (batch: PendingAppend[]): void {
    let written: { appends: CommittedAppend[], report: CommitReport }
    try {
      written = this.commitNow(batch.map(pending => pending.events))
    } catch (error) {
      for (const pending of batch) pending.reject(error as Error)
      return
    }
    batch.forEach((pending, i) => {
      const { events, repeats } = written.appends[i]!
      pending.resolve({ recorded: events.filter((event): event is RecordedEvent => event !== null), repeats })
    })
    for (const listener of this.#commitListeners) listener(written.report)
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
  commitNow (appends: ReadonlyArray<readonly PreparedEvent[]>): { appends: CommittedAppend[], report: CommitReport } {
    if (this.#closed) throw new StoreUnavailableError('event log is closed')
    const recordedAt = this.#clock().toISOString()
    const before = this.#tail
    this.#batches++
    const started = performance.now()
    const repeats = appends.map(() => 0)
    try {
      const written = this.#sqlite.transaction(() => {
        const versions = new Map<string, number>()
        let { position, hash } = before
        const all: RecordedEvent[] = []
        const perCaller = appends.map((events, caller) => events.map(event => {
          // Counted in this transaction too: a repeat is left out only once the copies it repeats commit with it or before it.
          const copies = this.#deliveries.storedCount(event.streamId, event.metadata)
          if (copies > 0) repeats[caller]!++
          if (copies >= maxStoredDeliveries) {
            this.#deliveries.unstored(event.streamId, event.metadata, recordedAt)
            return null
          }
          this.#deliveries.stored(event.streamId, event.metadata)
          if (event.body !== undefined) this.#insertBody.run(event.body.sha256, event.body.encoding, event.body.text)
          const streamVersion = (versions.get(event.streamId) ?? this.#streamVersion.get(event.streamId)?.v ?? 0) + 1
          versions.set(event.streamId, streamVersion)
          position += 1
          const row = {
            position,
            stream_id: event.streamId,
            stream_version: streamVersion,
            type: event.type,
            schema_version: currentSchemaVersion,
            data: event.dataJson,
            metadata: event.metadataJson,
            recorded_at: recordedAt
          }
          hash = chainHash(hash, row)
          this.#insert.run(row.position, row.stream_id, row.stream_version, row.type, row.schema_version, row.data, row.metadata, row.recorded_at, hash)
          // Spelled out rather than spread: on Node 20 `{ ...event, position, … }` costs microseconds per event.
          const recorded = {
            streamId: event.streamId,
            type: event.type,
            data: event.data,
            metadata: event.metadata,
            position,
            streamVersion,
            schemaVersion: currentSchemaVersion,
            recordedAt,
            hash
          } as RecordedEvent
          all.push(recorded)
          return recorded
        }))
        this.#onAppend?.(all)
        if (position > before.position) this.#recordCheckpoint?.({ position, hash }, recordedAt)
        this.#tail = { position, hash }
        return perCaller
      }).immediate()
      const events = appends.reduce((sum, events) => sum + events.length, 0)
      return {
        appends: written.map((events, caller) => ({ events, repeats: repeats[caller]! })),
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
