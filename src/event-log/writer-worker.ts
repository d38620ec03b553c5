// The writer thread: owns the write connection, the EventLog and the order
// projector, so appends, projection and COMMIT run beside the HTTP thread
// instead of on it. Started by writer-thread.ts.
//
// At synchronous=FULL the fsync is not in the COMMIT: the connection commits at
// NORMAL (the WAL frames are written, not yet synced), and the WAL is synced
// with fdatasync on libuv's pool while this thread builds and commits the next
// batches. A commit is answered (and so acked) only once a sync that started
// after it has returned: no ack before its WAL frames are on disk, and one
// sync covers every batch committed while the previous one ran.
// test/faults/power-loss.test.ts proves it.
import { appendFileSync, closeSync, fdatasync, fstatSync, openSync } from 'node:fs'
import { parentPort, workerData } from 'node:worker_threads'
import SQLite from 'better-sqlite3'
import { configureConnection } from '../db/database.js'
import type { RecordedEvent } from '../orders/events.js'
import { openProjectedLog } from '../projection/projected-log.js'
import { GroupCommitQueue, type PreparedEvent } from './event-log.js'
import { decodeEvent, fieldsPerEvent, type FromWriter, type ToWriter, type WriterSettings } from './writer-protocol.js'

const settings = workerData as WriterSettings
const port = parentPort!
const sqlite = new SQLite(settings.path, { fileMustExist: true })
const syncApart = settings.synchronous === 'FULL'
configureConnection(sqlite, { synchronous: syncApart ? 'NORMAL' : settings.synchronous, busyTimeoutMs: settings.busyTimeoutMs })
const { eventLog: log } = openProjectedLog(sqlite, { maxBatchSize: settings.maxBatchSize, signingKey: settings.signingKey, outbox: settings.outbox })

interface QueuedAppend { id: number, events: PreparedEvent[] }

// Whatever arrives while this turn's messages are read joins the batch.
const queue = new GroupCommitQueue<QueuedAppend>(settings.maxBatchSize, batch => { commit(batch) })

const post = (message: FromWriter): void => { port.postMessage(message) }

type Committed = FromWriter & { kind: 'committed' }
/** Committed transactions whose answers wait for the next sync of the WAL. */
let unsynced: Committed[] = []
/** The sync in flight, if any. */
let syncing: Promise<void> | undefined
let walFd: number | undefined

/** Answers `message` now (NORMAL: no sync before an ack) or once the WAL is synced past it. */
function answerCommitted (message: Committed): void {
  if (!syncApart) {
    post(message)
    return
  }
  unsynced.push(message)
  syncWal()
}

/** Starts a sync of the WAL for the commits waiting, unless one is in flight (its end starts the next). */
function syncWal (): void {
  if (syncing !== undefined || unsynced.length === 0) return
  const answers = unsynced
  unsynced = []
  // The WAL exists from the first commit on, and lives as long as this connection does.
  walFd ??= openSync(`${settings.path}-wal`, 'r')
  const fd = walFd
  // Its length now: what this sync makes durable (PAYNOTIFY_WAL_SYNC_LOG, for the power-loss test).
  const length = settings.syncLog === undefined ? 0 : fstatSync(fd).size
  syncing = new Promise(resolve => {
    fdatasync(fd, error => {
      syncing = undefined
      resolve()
      if (error !== null) {
        // Whether those frames reached the disk is unknown: none is acked, and the writer stops (the service with it).
        post({ kind: 'failed', ids: answers.flatMap(answer => answer.ids), message: `the WAL could not be synced: ${error.message}`, code: error.code })
        throw error
      }
      if (settings.syncLog !== undefined) appendFileSync(settings.syncLog, `${length}\n`)
      for (const answer of answers) post(answer)
      syncWal()
    })
  })
}

/** Every commit answered: waits for the sync in flight, then syncs what is left. */
async function drainSyncs (): Promise<void> {
  while (syncing !== undefined || unsynced.length > 0) {
    syncWal()
    await syncing
  }
}

/** Commits one batch and answers it. */
function commit (batch: QueuedAppend[]): void {
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
    answerCommitted({ kind: 'committed', ids, first: first?.position ?? 0, recordedAt: first?.recordedAt ?? '', streamVersions, hashes, repeats, seconds: written.report.seconds })
  } catch (error) {
    const cause = (error as Error).cause as { code?: string } | undefined
    post({ kind: 'failed', ids, message: (error as Error).message, code: cause?.code })
  }
}

port.on('message', (message: ToWriter) => {
  if (message.kind === 'append') {
    const { ids, counts, fields } = message
    let f = 0
    for (let i = 0; i < ids.length; i++) {
      const events: PreparedEvent[] = []
      for (let n = 0; n < counts[i]!; n++, f += fieldsPerEvent) events.push(decodeEvent(fields, f))
      queue.push({ id: ids[i]!, events })
    }
    return
  }
  queue.flush()
  // A failed sync stops the thread from its own callback; otherwise every commit is answered first.
  drainSyncs().then(() => {
    if (walFd !== undefined) closeSync(walFd)
    log.close()
    sqlite.close()
    post({ kind: 'closed' })
    port.close()
  }, () => {})
})

post({ kind: 'ready', tail: log.tail })
