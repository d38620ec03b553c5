import type SQLite from 'better-sqlite3'
import { deriveContext } from './fold-streams.js'
import type { ViewContext } from '../orders/order-fold.js'
import { projectionChanges, type DiffTally } from './projection-diff.js'
import { orderUpsertSql, ordersProjection } from './projector.js'
import { splitOrderRanges, type FoldWorkers, type WireChange } from './rebuild-workers.js'

export interface RebuildResult {
  events: number
  orders: number
  /** The checkpoint written: the last position of the log. */
  lastPosition: number
  context: ViewContext
  /** Order rows written because they differed from the fold (or were missing). */
  written: number
  /** Order rows deleted because their order has no events. */
  deleted: number
}

/**
 * Folds the order projection again from the log, in one transaction: readers
 * see the old rows or the new ones, never a half-built table, and a failure
 * leaves the old projection in place. Rows come out byte-identical to what
 * OrderProjector writes live (same orderRowValues, same context), which
 * `paynotify verify` and the tests check. Only rows that differ from the fold
 * are written (projectionChanges): the result is the table a drop-and-refill
 * gives, without rewriting and re-indexing the rows that were right.
 */
export function rebuildProjections (sqlite: SQLite.Database, onEvent?: () => void): RebuildResult {
  return sqlite.transaction((): RebuildResult => {
    const rebuild = startRebuild(sqlite)
    const tally: DiffTally = { events: 0, orders: 0 }
    for (const change of projectionChanges(sqlite, rebuild.context, { onEvent, tally })) rebuild.apply(change)
    return rebuild.finish(tally)
  }).immediate()
}

export interface ParallelRebuildOptions {
  /** Called with the number of events folded since the last call. */
  onEvents?: ((count: number) => void) | undefined
}

/**
 * rebuildProjections with the fold spread over worker threads, each folding
 * its own ranges of order ids on a read connection of its own, while this
 * thread holds the write transaction and writes the rows that differ. The
 * workers read the last committed state, which is this transaction's view of
 * the log: it began IMMEDIATE, so no other connection can commit until it
 * ends. `workers` must be on the database `sqlite` has open.
 */
export async function rebuildProjectionsInParallel (sqlite: SQLite.Database, workers: FoldWorkers, options: ParallelRebuildOptions = {}): Promise<RebuildResult> {
  sqlite.exec('BEGIN IMMEDIATE')
  try {
    const rebuild = startRebuild(sqlite)
    const ranges = splitOrderRanges(sqlite, workers.count * 4)
    const tally = await workers.fold({ context: rebuild.context, ranges, onEvents: options.onEvents }, changes => {
      for (const change of changes) rebuild.apply(change)
    })
    const result = rebuild.finish(tally)
    sqlite.exec('COMMIT')
    return result
  } catch (error) {
    if (sqlite.inTransaction) sqlite.exec('ROLLBACK')
    throw error
  }
}

interface Rebuild {
  context: ViewContext
  apply: (change: WireChange) => void
  finish: (tally: DiffTally) => RebuildResult
}

/**
 * The writing half of a rebuild, inside its transaction. An empty orders
 * table (a first rebuild, or one after the rows were dropped) is filled
 * without its secondary indexes, which are created again from their own
 * definitions once the rows are in: a sorted build instead of a random
 * insert per row and index.
 */
function startRebuild (sqlite: SQLite.Database): Rebuild {
  const context = deriveContext(sqlite)
  const empty = sqlite.prepare('SELECT NOT EXISTS (SELECT 1 FROM orders)').pluck().get() === 1
  const indexes = empty
    ? sqlite.prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'orders' AND sql IS NOT NULL")
      .all() as Array<{ name: string, sql: string }>
    : []
  for (const { name } of indexes) sqlite.exec(`DROP INDEX "${name.replaceAll('"', '""')}"`)

  const upsert = sqlite.prepare(orderUpsertSql)
  const remove = sqlite.prepare('DELETE FROM orders WHERE order_id = ?')
  const checkpoint = sqlite.prepare(`INSERT INTO projections (name, last_position, context) VALUES (?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET last_position = excluded.last_position, context = excluded.context`)
  const tail = sqlite.prepare('SELECT coalesce(max(position), 0) FROM events').pluck() as SQLite.Statement<[], number>
  let written = 0
  let deleted = 0
  return {
    context,
    apply (change) {
      if (change.kind === 'write') {
        upsert.run(change.values)
        written++
      } else {
        deleted += remove.run(change.orderId).changes
      }
    },
    finish ({ events, orders }) {
      // A NULL order id (a TEXT primary key allows one) sorts outside every range the diff walks.
      deleted += sqlite.prepare('DELETE FROM orders WHERE order_id IS NULL').run().changes
      for (const { sql } of indexes) sqlite.exec(sql)
      const lastPosition = tail.get()!
      checkpoint.run(ordersProjection, lastPosition, JSON.stringify(context))
      return { events, orders, lastPosition, context, written, deleted }
    }
  }
}
