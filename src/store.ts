import { openDatabase, type DatabaseOptions, type OpenDatabase } from './db/database.js'
import { migrateToLatest } from './db/migrate.js'
import type { CommitObservable, EventAppender, EventLog, Tail } from './event-log/event-log.js'
import { WriterThread, type WriterThreadOptions } from './event-log/writer-thread.js'
import { openProjectedLog } from './projection/projected-log.js'
import type { OrderProjector, ProjectorOptions } from './projection/projector.js'

export interface StoreOptions extends DatabaseOptions {
  batchMaxSize?: number
  clock?: () => Date
  /** Sign the tail of every commit with this key (secrets.ts); a store without one writes an unsigned log. */
  signingKey?: string | undefined
  /** Write the outbox of order.* messages with every change (the service does; projection/projector.ts). */
  outbox?: ProjectorOptions['outbox']
}

/** What the service needs of a store: reads on `sqlite`/`db`, appends through `eventLog`. */
export interface ServiceStore extends OpenDatabase {
  eventLog: EventAppender & CommitObservable & { readonly tail: Tail, readonly batches: number }
}

/** A store whose log and projector run on this thread, on the `sqlite` connection. */
export interface Store extends ServiceStore {
  eventLog: EventLog
  projector: OrderProjector
}

async function openMigrated (path: string, options: DatabaseOptions): Promise<OpenDatabase> {
  const database = openDatabase(path, options)
  try {
    await migrateToLatest(database.db)
  } catch (error) {
    await database.close()
    throw error
  }
  return database
}

/**
 * Opens the database, brings its schema up to date, and wires the event log
 * to the order projector so every append projects in its own transaction.
 * Everything runs on the caller's thread (the CLI, the tests, in-memory databases).
 */
export async function openStore (path: string, options: StoreOptions = {}): Promise<Store> {
  const database = await openMigrated(path, options)
  const { eventLog, projector } = openProjectedLog(database.sqlite, { maxBatchSize: options.batchMaxSize, clock: options.clock, signingKey: options.signingKey, outbox: options.outbox })
  return {
    ...database,
    eventLog,
    projector,
    close: async () => {
      eventLog.close()
      await database.close()
    }
  }
}

/**
 * The store `serve` runs: the same log and projector on a writer thread with
 * its own connection (event-log/writer-thread.ts), and this thread's
 * connection left for reads (admin API, health, the start-time chain check).
 * Needs a database file: an in-memory database cannot be shared with a thread.
 */
export async function openThreadedStore (path: string, options: StoreOptions & WriterThreadOptions & { syncLog?: string | undefined } = {}): Promise<ServiceStore> {
  const database = await openMigrated(path, options)
  let writer: WriterThread
  try {
    writer = await WriterThread.start({
      path,
      synchronous: options.synchronous ?? 'FULL',
      busyTimeoutMs: options.busyTimeoutMs ?? 5000,
      maxBatchSize: Math.max(1, options.batchMaxSize ?? 1024),
      signingKey: options.signingKey,
      outbox: options.outbox,
      syncLog: options.syncLog
    }, { onFatal: options.onFatal, entry: options.entry })
  } catch (error) {
    await database.close()
    throw error
  }
  return {
    ...database,
    eventLog: writer,
    close: async () => {
      await writer.close()
      await database.close()
    }
  }
}
