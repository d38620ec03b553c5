import type SQLite from 'better-sqlite3'
import { createCheckpointSigner } from '../event-log/checkpoint-signature.js'
import { EventLog } from '../event-log/event-log.js'
import { SqliteProjectionStore } from './projection-store.js'
import { OrderProjector, type ProjectorOptions } from './projector.js'

export interface ProjectedLogOptions {
  maxBatchSize?: number | undefined
  clock?: (() => Date) | undefined
  /** Sign the tail of every commit with this key (secrets.ts); without one the log is unsigned. */
  signingKey?: string | undefined
  outbox?: ProjectorOptions['outbox']
}

/**
 * The one place the event log and the order projector are wired: every
 * append projects in its own transaction, and a rolled-back batch makes the
 * projector forget what it cached. store.ts (the CLI, the inline writer) and
 * the writer thread both open their log through it.
 */
export function openProjectedLog (sqlite: SQLite.Database, options: ProjectedLogOptions = {}): { eventLog: EventLog, projector: OrderProjector } {
  const projector = new OrderProjector(new SqliteProjectionStore(sqlite), { outbox: options.outbox })
  const eventLog = new EventLog(sqlite, {
    maxBatchSize: options.maxBatchSize,
    clock: options.clock,
    onAppend: events => { projector.apply(events) },
    onRollback: () => { projector.reload() },
    signer: options.signingKey === undefined ? undefined : createCheckpointSigner(options.signingKey)
  })
  return { eventLog, projector }
}
