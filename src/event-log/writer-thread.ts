import { Worker } from 'node:worker_threads'
import { workerOptions, workerSource } from '../worker-source.js'
import { StoreUnavailableError } from '../errors.js'
import { currentSchemaVersion, type RecordedEvent } from '../orders/events.js'
import type { AppendResult, CommitObservable, CommitReport, EventAppender, NewEvent, Tail } from './event-log.js'
import { encodeEvents, type FromWriter, type ToWriter, type WriterSettings } from './writer-protocol.js'

export type { WriterSettings } from './writer-protocol.js'

interface Pending {
  events: readonly NewEvent[]
  resolve: (result: AppendResult) => void
  reject: (error: Error) => void
}

export interface WriterThreadOptions {
  /** Called once if the writer thread dies while the service still needs it (the service should stop). */
  onFatal?: (error: Error) => void
  /** The worker script; the tests start a misbehaving one to check how a dead writer is handled. */
  entry?: URL
}

const defaultEntry = workerSource(import.meta.url, 'writer-worker').entry

/**
 * The event log as the service runs it: EventLog and the order projector on
 * a worker thread that owns the write connection (writer-worker.ts), so the
 * HTTP thread only parses, verifies and acks while the writer appends,
 * projects and fsyncs on the other core. Same contract as EventLog.append:
 * one atomic append per caller, resolved only after its transaction
 * committed, a failed transaction rejects every caller in it. Appends made
 * in one turn of the HTTP thread's event loop travel in one message; the
 * writer commits whatever has arrived in one transaction per turn of its own
 * loop, so batches grow with load and an idle log commits at once.
 */
export class WriterThread implements EventAppender, CommitObservable {
  readonly #worker: Worker
  readonly #pending = new Map<number, Pending>()
  readonly #onFatal: ((error: Error) => void) | undefined
  readonly #commitListeners = new Set<(report: CommitReport) => void>()
  #outbox: { ids: number[], counts: number[], fields: Array<string | null> } = { ids: [], counts: [], fields: [] }
  #scheduled = false
  #nextId = 1
  #tail: Tail
  #batches = 0
  #closing: Promise<void> | undefined
  #dead: Error | undefined

  private constructor (worker: Worker, tail: Tail, options: WriterThreadOptions) {
    this.#worker = worker
    this.#tail = tail
    this.#onFatal = options.onFatal
    worker.on('message', (message: FromWriter) => { this.#receive(message) })
    worker.on('error', error => { this.#die(error) })
    worker.on('exit', code => { this.#die(new Error(`the writer thread exited with code ${code}`)) })
  }

  /** Starts the writer on an existing, migrated database file; resolves when it is ready to append. */
  static async start (settings: WriterSettings, options: WriterThreadOptions = {}): Promise<WriterThread> {
    const entry = options.entry ?? defaultEntry
    const worker = new Worker(entry, { workerData: settings, ...workerOptions(entry) })
    const tail = await new Promise<Tail>((resolve, reject) => {
      const onError = (error: Error): void => { settle(); reject(new StoreUnavailableError(`the writer thread did not start: ${error.message}`, { cause: error })) }
      const onExit = (code: number): void => { onError(new Error(`exit code ${code}`)) }
      const onMessage = (message: FromWriter): void => {
        settle()
        if (message.kind === 'ready') resolve(message.tail)
        else reject(new StoreUnavailableError(`the writer thread did not start: it sent ${message.kind}`))
      }
      // Only our own listeners: Worker keeps internal ones (removeAllListeners would stop its port).
      const settle = (): void => {
        worker.off('error', onError)
        worker.off('exit', onExit)
        worker.off('message', onMessage)
      }
      worker.on('error', onError)
      worker.on('exit', onExit)
      worker.on('message', onMessage)
    })
    return new WriterThread(worker, tail, options)
  }

  /** Position and hash of the last committed event. */
  get tail (): Tail {
    return { ...this.#tail }
  }

  /** Transactions the writer committed or attempted, as answered so far. */
  get batches (): number {
    return this.#batches
  }

  async append (events: readonly NewEvent[]): Promise<RecordedEvent[]> {
    return (await this.appendWithRepeats(events)).recorded
  }

  appendWithRepeats (events: readonly NewEvent[]): Promise<AppendResult> {
    if (this.#closing !== undefined) return Promise.reject(new StoreUnavailableError('event log is closed'))
    if (this.#dead !== undefined) return Promise.reject(new StoreUnavailableError('the event store writer stopped', { cause: this.#dead }))
    return new Promise((resolve, reject) => {
      // Encoded here, where the objects are, before anything is queued: an event that cannot be encoded fails its own append only.
      const fields = encodeEvents(events)
      const id = this.#nextId++
      this.#pending.set(id, { events, resolve, reject })
      const outbox = this.#outbox
      outbox.ids.push(id)
      outbox.counts.push(events.length)
      for (const field of fields) outbox.fields.push(field)
      if (!this.#scheduled) {
        this.#scheduled = true
        // After this turn's I/O callbacks: every request parsed meanwhile goes in the same message.
        setImmediate(() => { this.#send() })
      }
    })
  }

  /** The writer's commits, as it reports them (its batch sizes and commit times). */
  observeCommits (listener: (report: CommitReport) => void): () => void {
    this.#commitListeners.add(listener)
    return () => { this.#commitListeners.delete(listener) }
  }

  /** Lets every append already made commit and be answered, then stops the writer. */
  async close (): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#dead !== undefined) return
      this.#send()
      const closed = new Promise<void>(resolve => {
        this.#worker.on('message', (message: FromWriter) => { if (message.kind === 'closed') resolve() })
        this.#worker.once('exit', () => { resolve() })
      })
      this.#post({ kind: 'close' })
      await closed
      await this.#worker.terminate()
    })()
    await this.#closing
  }

  #post (message: ToWriter): void {
    this.#worker.postMessage(message)
  }

  #send (): void {
    this.#scheduled = false
    if (this.#outbox.ids.length === 0 || this.#dead !== undefined) return
    const outbox = this.#outbox
    this.#outbox = { ids: [], counts: [], fields: [] }
    this.#post({ kind: 'append', ...outbox })
  }

  #receive (message: FromWriter): void {
    if (message.kind === 'committed') {
      this.#batches++
      let position = message.first
      let index = 0
      for (let i = 0; i < message.ids.length; i++) {
        const pending = this.#take(message.ids[i]!)
        // Built from the caller's own events: only what the log assigned came back from the writer.
        const recorded: RecordedEvent[] = []
        for (const event of pending.events) {
          const streamVersion = message.streamVersions[index]!
          const hash = message.hashes[index++]!
          // A repeat the log counted but did not store (maxStoredDeliveries).
          if (streamVersion === 0) continue
          this.#tail = { position, hash }
          recorded.push({
            streamId: event.streamId,
            type: event.type,
            data: event.data,
            metadata: event.metadata,
            position: position++,
            streamVersion,
            schemaVersion: currentSchemaVersion,
            recordedAt: message.recordedAt,
            hash
          } as RecordedEvent)
        }
        pending.resolve({ recorded, repeats: message.repeats[i]! })
      }
      const report: CommitReport = { events: message.streamVersions.length, seconds: message.seconds }
      for (const listener of this.#commitListeners) listener(report)
    } else if (message.kind === 'failed') {
      this.#batches++
      const cause = Object.assign(new Error(message.message), { code: message.code })
      for (const id of message.ids) this.#take(id).reject(new StoreUnavailableError('the event store could not commit; retry later', { cause }))
    }
  }

  #take (id: number): Pending {
    const pending = this.#pending.get(id)!
    this.#pending.delete(id)
    return pending
  }

  #die (error: Error): void {
    if (this.#dead !== undefined) return
    const expected = this.#closing !== undefined && this.#pending.size === 0
    this.#dead = error
    const failure = new StoreUnavailableError('the event store writer stopped', { cause: error })
    for (const pending of this.#pending.values()) pending.reject(failure)
    this.#pending.clear()
    if (!expected) this.#onFatal?.(error)
  }
}
