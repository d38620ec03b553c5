// A rebuild's fold worker (rebuild-workers.ts starts it): folds the ranges of
// order ids it is sent on a read connection of its own and posts the rows
// that differ from the stored projection to the thread that writes them.
import { parentPort, workerData } from 'node:worker_threads'
import SQLite from 'better-sqlite3'
import { projectionChanges, type DiffTally } from './projection-diff.js'
import { maxBatchesInFlight, type FoldWorkerData, type FromFoldWorker, type ToFoldWorker, type WireChange } from './rebuild-workers.js'
import type { OrderRange } from './fold-streams.js'
import type { ViewContext } from '../orders/order-fold.js'

const port = parentPort!
const { path, inFlight: shared } = workerData as FoldWorkerData
const inFlight = new Int32Array(shared)
const batchSize = 256
const progressEvery = 8192

const sqlite = new SQLite(path, { readonly: true, fileMustExist: true })
// Pages are read once, in index order: a small cache keeps the worker lean at no cost in speed.
sqlite.pragma('cache_size = -2048')

function post (message: FromFoldWorker): void {
  port.postMessage(message)
}

function fold (range: OrderRange, context: ViewContext): void {
  const tally: DiffTally = { events: 0, orders: 0 }
  let reported = 0
  let batch: WireChange[] = []
  const flush = (): void => {
    if (batch.length === 0) return
    // Wait (this thread only) while the writer is behind, so unwritten rows do not pile up in memory.
    for (let waiting = Atomics.load(inFlight, 0); waiting >= maxBatchesInFlight; waiting = Atomics.load(inFlight, 0)) {
      Atomics.wait(inFlight, 0, waiting)
    }
    Atomics.add(inFlight, 0, 1)
    post({ kind: 'changes', changes: batch })
    batch = []
  }
  const onEvent = (): void => {
    if (tally.events - reported < progressEvery) return
    post({ kind: 'progress', events: tally.events - reported })
    reported = tally.events
  }
  for (const change of projectionChanges(sqlite, context, { range, tally, onEvent })) {
    batch.push(change.kind === 'write'
      ? { kind: 'write', orderId: change.orderId, values: change.values }
      : { kind: 'delete', orderId: change.orderId })
    if (batch.length >= batchSize) flush()
  }
  flush()
  post({ kind: 'folded', events: tally.events - reported, orders: tally.orders })
}

port.on('message', (message: ToFoldWorker) => {
  if (message.kind === 'fold') {
    fold(message.range, message.context)
    return
  }
  sqlite.close()
  port.close()
})
