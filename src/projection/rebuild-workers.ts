import { Worker } from 'node:worker_threads'
import { workerOptions, workerSource } from '../worker-source.js'
import type SQLite from 'better-sqlite3'
import type { OrderRange } from './fold-streams.js'
import type { ViewContext } from '../orders/order-fold.js'
import type { Cell, DiffTally } from './projection-diff.js'

/** What a fold worker sends the rebuild: a row change without the stored row (only the writer's input). */
export type WireChange = { kind: 'write', orderId: string, values: Cell[] } | { kind: 'delete', orderId: Cell }

export interface FoldWorkerData {
  path: string
  /** One Int32: batches of changes posted and not yet written (flow control, see maxBatchesInFlight). */
  inFlight: SharedArrayBuffer
}

export type ToFoldWorker = { kind: 'fold', range: OrderRange, context: ViewContext } | { kind: 'stop' }

export type FromFoldWorker =
  | { kind: 'changes', changes: WireChange[] }
  | { kind: 'progress', events: number }
  | { kind: 'folded', events: number, orders: number }

/**
 * A worker blocks when this many of its batches wait to be written, so a
 * rebuild that rewrites every row holds a few batches in memory, not the
 * whole projection, when the writer is slower than the fold.
 */
export const maxBatchesInFlight = 4

/**
 * Each worker's young generation. V8's default lets it grow to ~48 MB per
 * thread; most of what a fold allocates dies within a page of rows, so a
 * small one keeps the rebuild within its memory budget for a little more
 * scavenging (bench/NOTES.md).
 */
const youngGenerationMb = 8

const { entry } = workerSource(import.meta.url, 'rebuild-worker')

export interface FoldJob {
  context: ViewContext
  ranges: readonly OrderRange[]
  onEvents?: ((count: number) => void) | undefined
}

interface Thread {
  worker: Worker
  inFlight: Int32Array
}

type ThreadEvent = { kind: 'message', message: FromFoldWorker } | { kind: 'error', error: Error } | { kind: 'exit', code: number }

/**
 * The fold worker threads of one rebuild (rebuild-worker.ts). They start
 * loading and open their read connections as soon as they are created, so
 * that happens while the caller is still opening and migrating the
 * database; they read nothing until fold() hands them ranges.
 */
export class FoldWorkers {
  readonly #threads: Thread[] = []
  #handle: ((thread: Thread, event: ThreadEvent) => void) | undefined
  #early: Error | undefined

  constructor (path: string, count: number) {
    for (let i = 0; i < Math.max(1, count); i++) {
      const inFlight = new Int32Array(new SharedArrayBuffer(4))
      const workerData: FoldWorkerData = { path, inFlight: inFlight.buffer as SharedArrayBuffer }
      const thread = { worker: new Worker(entry, { workerData, ...workerOptions(entry), resourceLimits: { maxYoungGenerationSizeMb: youngGenerationMb } }), inFlight }
      this.#threads.push(thread)
      thread.worker.on('message', (message: FromFoldWorker) => { this.#dispatch(thread, { kind: 'message', message }) })
      thread.worker.on('error', error => { this.#dispatch(thread, { kind: 'error', error }) })
      thread.worker.on('exit', code => { this.#dispatch(thread, { kind: 'exit', code }) })
    }
  }

  /**
   * Folds `ranges`, each worker taking the next range when it finishes one,
   * and hands every batch of row changes to `write` on this thread as it
   * arrives. Resolves with the totals once every range is folded and the
   * workers have closed their connections and exited; rejects on the first
   * error (a worker's or `write`'s) after stopping the others. Once only.
   */
  async fold (job: FoldJob, write: (changes: WireChange[]) => void): Promise<DiffTally> {
    if (this.#handle !== undefined) throw new Error('these workers have folded already')
    const pending = [...job.ranges]
    const tally: DiffTally = { events: 0, orders: 0 }
    return await new Promise<DiffTally>((resolve, reject) => {
      let running = this.#threads.length
      let failed = false
      const fail = (error: unknown): void => {
        if (failed) return
        failed = true
        const rejectWith = (): void => { reject(error) }
        this.terminate().then(rejectWith, rejectWith)
      }
      const next = (thread: Thread): void => {
        const range = pending.shift()
        thread.worker.postMessage(range === undefined ? { kind: 'stop' } : { kind: 'fold', range, context: job.context } satisfies ToFoldWorker)
      }
      this.#handle = (thread, event) => {
        if (failed) return
        if (event.kind === 'error') {
          fail(event.error)
        } else if (event.kind === 'exit') {
          if (event.code !== 0) fail(new Error(`a rebuild worker exited with code ${event.code}`))
          else if (--running === 0 && pending.length > 0) fail(new Error('the rebuild workers stopped before every range was folded'))
          else if (running === 0) resolve(tally)
        } else {
          try {
            this.#receive(thread, event.message, tally, job, write, next)
          } catch (error) {
            fail(error)
          }
        }
      }
      if (this.#early !== undefined) {
        fail(this.#early)
        return
      }
      for (const thread of this.#threads) next(thread)
    })
  }

  get count (): number {
    return this.#threads.length
  }

  /** Stops every worker now (after an error, or when fold() is not to be called). */
  async terminate (): Promise<void> {
    await Promise.all(this.#threads.map(async thread => {
      // Wakes a worker waiting on its writer, which will not write anything more.
      Atomics.store(thread.inFlight, 0, 0)
      Atomics.notify(thread.inFlight, 0)
      await thread.worker.terminate()
    }))
  }

  #receive (thread: Thread, message: FromFoldWorker, tally: DiffTally, job: FoldJob, write: (changes: WireChange[]) => void, next: (thread: Thread) => void): void {
    switch (message.kind) {
      case 'changes':
        write(message.changes)
        Atomics.sub(thread.inFlight, 0, 1)
        Atomics.notify(thread.inFlight, 0)
        return
      case 'progress':
        tally.events += message.events
        job.onEvents?.(message.events)
        return
      case 'folded':
        tally.events += message.events
        job.onEvents?.(message.events)
        tally.orders += message.orders
        next(thread)
    }
  }

  // Before fold() a failure is kept for it to report (an exit then is a failure: nothing asked them to stop).
  #dispatch (thread: Thread, event: ThreadEvent): void {
    if (this.#handle !== undefined) {
      this.#handle(thread, event)
    } else if (event.kind === 'error') {
      this.#early ??= event.error
    } else if (event.kind === 'exit') {
      this.#early ??= new Error(`a rebuild worker exited with code ${event.code} before it was given work`)
    }
  }
}

/**
 * Splits the order ids of the log into about `parts` ranges of similar
 * numbers of events, at order boundaries (one order's events are never
 * split): the order ids of events sampled at evenly spaced positions, sorted
 * by SQLite, give the bounds. A few hundred lookups by position, where
 * stepping along the order id index would read all of it first.
 */
export function splitOrderRanges (sqlite: SQLite.Database, parts: number, samples = 256): OrderRange[] {
  // Positions are gap-free under one writer; a gap would only make one range a little larger.
  const last = sqlite.prepare('SELECT coalesce(max(position), 0) FROM events').pluck().get() as number
  const step = Math.max(1, Math.floor(last / samples))
  const ids = sqlite.prepare(`WITH RECURSIVE sample (position) AS (SELECT ? UNION ALL SELECT position + ? FROM sample WHERE position + ? <= ?)
    SELECT DISTINCT stream_id FROM sample JOIN events USING (position) ORDER BY stream_id`).pluck().all(step, step, step, last) as string[]
  const bounds: string[] = []
  for (let i = 1; i < parts; i++) {
    const bound = ids[Math.floor((i * ids.length) / parts)]
    // Skips the first id (nothing sorts before the first range's open start) and repeats.
    if (bound !== undefined && bound !== ids[0] && bound !== bounds[bounds.length - 1]) bounds.push(bound)
  }
  return [undefined, ...bounds].map((from, i) => ({ from, to: bounds[i] }))
}
