import { openDatabase, type DatabaseOptions, type OpenDatabase } from './db/database.js'
import { migrateToLatest } from './db/migrate.js'
import { EventLog } from './event-log/event-log.js'
import { OrderProjector } from './orders/projector.js'

export interface StoreOptions extends DatabaseOptions {
  batchMaxSize?: number
  clock?: () => Date
}

export interface Store extends OpenDatabase {
  eventLog: EventLog
  projector: OrderProjector
}

/**
 * Opens the database, brings its schema up to date, and wires the event log
 * to the order projector so every append projects in its own transaction.
 */
export async function openStore (path: string, options: StoreOptions = {}): Promise<Store> {
  const database = openDatabase(path, options)
  try {
    await migrateToLatest(database.db)
  } catch (error) {
    await database.close()
    throw error
  }
  const projector = new OrderProjector(database.sqlite)
  const eventLog = new EventLog(database.sqlite, {
    maxBatchSize: options.batchMaxSize,
    clock: options.clock,
    onAppend: events => { projector.apply(events) },
    onRollback: () => { projector.reload() }
  })
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
