// The writer thread: owns the write connection, the EventLog and the order
// projector, so appends, projection and COMMIT (with its fsync) run beside
// the HTTP thread instead of on it. Started by writer-thread.ts.
import { parentPort, workerData } from 'node:worker_threads'
import SQLite from 'better-sqlite3'
import { configureConnection } from '../db/database.js'
import type { RecordedEvent } from '../orders/events.js'
import { OrderProjector } from '../orders/projector.js'
import { createCheckpointSigner } from './checkpoint-signature.js'
import { EventLog, takeBatch, type EncodedEvent } from './event-log.js'
import type { FromWriter, ToWriter, WriterSettings } from './writer-protocol.js'

const settings = workerData as WriterSettings
const port = parentPort!
const sqlite = new SQLite(settings.path, { fileMustExist: true })
configureConnection(sqlite, { synchronous: settings.synchronous, busyTimeoutMs: settings.busyTimeoutMs })
const projector = new OrderProjector(sqlite, { outbox: settings.outbox })
const log = new EventLog(sqlite, {
  maxBatchSize: settings.maxBatchSize,
  onAppend: events => { projector.apply(events) },
  onRollback: () => { projector.reload() },
  signer: settings.signingKey === undefined ? undefined : createCheckpointSigner(settings.signingKey)
})

interface QueuedAppend { id: number, events: EncodedEvent[] }

const queue: QueuedAppend[] = []
let scheduled = false

const post = (message: FromWriter): void => { port.postMessage(message) }

/** Commits what is queued, one transaction per batch, and answers each. */
function flush (): void {
  scheduled = false
  while (queue.length > 0) {
    const batch = takeBatch(queue, settings.maxBatchSize)
    const ids = batch.map(append => append.id)
    try {
      const written = log.commitNow(batch.map(append => append.events))
      const streamVersions: number[] = []
      const hashes: string[] = []
      const repeats: number[] = []
      let first: RecordedEvent | undefined
      for (const { events, repeats: repeated } of written.appends) {
        repeats.push(repeated)
        for (const event of events) {
          first ??= event ?? undefined
          streamVersions.push(event?.streamVersion ?? 0)
          hashes.push(event?.hash ?? '')
        }
      }
      post({ kind: 'committed', ids, first: first?.position ?? 0, recordedAt: first?.recordedAt ?? '', streamVersions, hashes, repeats, seconds: written.report.seconds })
    } catch (error) {
      const cause = (error as Error).cause as { code?: string } | undefined
      post({ kind: 'failed', ids, message: (error as Error).message, code: cause?.code })
    }
  }
}

port.on('message', (message: ToWriter) => {
  if (message.kind === 'append') {
    const { ids, counts, fields } = message
    let f = 0
    for (let i = 0; i < ids.length; i++) {
      const events: EncodedEvent[] = []
      for (let n = 0; n < counts[i]!; n++, f += 5) {
        events.push({ encoded: true, streamId: fields[f]!, type: fields[f + 1] as EncodedEvent['type'], data: fields[f + 2]!, metadata: fields[f + 3]!, body: fields[f + 4] ?? null })
      }
      queue.push({ id: ids[i]!, events })
    }
    if (!scheduled) {
      scheduled = true
      // Whatever else arrives while this turn's messages are read joins the batch; under load the
      // batch grows by itself while the previous one commits, and an idle writer commits at once.
      setImmediate(flush)
    }
    return
  }
  flush()
  log.close()
  sqlite.close()
  post({ kind: 'closed' })
  port.close()
})

post({ kind: 'ready', tail: log.tail })
