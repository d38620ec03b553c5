import { Worker } from 'node:worker_threads'
import type SQLite from 'better-sqlite3'
import type { OrderRange } from './fold-streams.js'
import type { ViewContext } from './order-fold.js'
import type { Cell, DiffTally } from './projection-diff.js'

/** What a fold worker sends the rebuild: a row change without the stored row (only the writer's input). */
export type WireChange = { kind: 'write', orderId: string, values: Cell[] } | { kind: 'delete', orderId: Cell }

export interface FoldWorkerData {
  path: string
  context: ViewContext
  /** One Int32: batches of changes posted and not yet written (flow control, see maxBatchesInFlight). */
  inFlight: SharedArrayBuffer
}

export type ToFoldWorker = { kind: 'fold', range: OrderRange } | { kind: 'stop' }

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

// Under tap's TypeScript loader this module is the .ts source, and the worker inherits the loader.
const entry = new URL(import.meta.url.endsWith('.ts') ? './rebuild-worker.ts' : './rebuild-worker.js', import.meta.url)

export interface FoldJob {
  path: string
  context: ViewContext
  ranges: readonly OrderRange[]
  workers: number
  onEvents?: ((count: number) => void) | undefined
}

/**
 * Folds `ranges` on worker threads (rebuild-worker.ts), each taking the next
 * range when it finishes one, and hands every batch of row changes to
 * `write` on this thread as it arrives. Resolves with the totals once every
 * range is folded and the workers have closed their connections; rejects on
 * the first error (a worker's or `write`'s) after stopping the others.
 */
export async function foldOnWorkers (job: FoldJob, write: (changes: WireChange[]) => void): Promise<DiffTally> {
  const pending = [...job.ranges]
  const tally: DiffTally = { events: 0, orders: 0 }
  const count = Math.max(1, Math.min(job.workers, pending.length))
  const workers: Worker[] = []
  return await new Promise<DiffTally>((resolve, reject) => {
    let failed = false
    let running = count
    const fail = (error: unknown): void => {
      if (failed) return
      failed = true
      const rejectWith = (): void => { reject(error) }
      Promise.all(workers.map(async worker => await worker.terminate())).then(rejectWith, rejectWith)
    }
    const next = (worker: Worker): void => {
      const range = pending.shift()
      worker.postMessage(range === undefined ? { kind: 'stop' } : { kind: 'fold', range } satisfies ToFoldWorker)
    }
    for (let i = 0; i < count; i++) {
      const inFlight = new Int32Array(new SharedArrayBuffer(4))
      const workerData: FoldWorkerData = { path: job.path, context: job.context, inFlight: inFlight.buffer as SharedArrayBuffer }
      const worker = new Worker(entry, { workerData, resourceLimits: { maxYoungGenerationSizeMb: youngGenerationMb } })
      workers.push(worker)
      worker.on('message', (message: FromFoldWorker) => {
        if (failed) return
        try {
          switch (message.kind) {
            case 'changes':
              write(message.changes)
              Atomics.sub(inFlight, 0, 1)
              Atomics.notify(inFlight, 0)
              return
            case 'progress':
              tally.events += message.events
              job.onEvents?.(message.events)
              return
            case 'folded':
              tally.events += message.events
              job.onEvents?.(message.events)
              tally.orders += message.orders
              next(worker)
          }
        } catch (error) {
          fail(error)
        }
      })
      worker.on('error', fail)
      worker.on('exit', code => {
        if (failed) return
        if (code !== 0) {
          fail(new Error(`a rebuild worker exited with code ${code}`))
        } else if (--running === 0) {
          if (pending.length > 0) fail(new Error('the rebuild workers stopped before every range was folded'))
          else resolve(tally)
        }
      })
      next(worker)
    }
  })
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
