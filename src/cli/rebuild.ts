import { statSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import type { Command } from 'commander'
import type { RebuildResult } from '../projection/rebuild.js'
import { dbOptionHelp, refuseWhileServing, requireDatabase, resolveDbPath } from './options.js'
import { startProgress } from './progress.js'

export interface RebuildOptions {
  /**
   * Worker threads that fold; 0 folds on this thread. Default: 2 when the
   * database file holds at least `parallelFromBytes` and the machine has 2
   * cores, else 0 (starting a worker costs more than it saves on a small log).
   */
  workers?: number
}

// About 15,000 events (a log with its projection takes ~1.1 KB per event).
const parallelFromBytes = 16 << 20

/** Rebuilds the projections of a database with progress; prints the summary line to `summaryStream`. */
export async function rebuildDatabase (dbPath: string, summaryStream: NodeJS.WritableStream = process.stdout, options: RebuildOptions = {}): Promise<RebuildResult> {
  const count = options.workers ?? (statSync(dbPath).size >= parallelFromBytes && availableParallelism() >= 2 ? 2 : 0)
  // The workers load and open their connections while this thread loads Kysely (~0.3 s) and migrates.
  const { FoldWorkers } = await import('../projection/rebuild-workers.js')
  const workers = count > 0 ? new FoldWorkers(dbPath, count) : undefined
  try {
    // Loaded here, not at start-up: main.ts imports this file for the command's definition only.
    const [{ openDatabase }, { migrateToLatest }, { rebuildProjections, rebuildProjectionsInParallel }] = await Promise.all([
      import('../db/database.js'), import('../db/migrate.js'), import('../projection/rebuild.js')
    ])
    const database = openDatabase(dbPath)
    try {
      await migrateToLatest(database.db)
      // The last position is the event count (gap-free under one writer), read without count(*)'s scan of an index.
      const total = database.sqlite.prepare('SELECT coalesce(max(position), 0) FROM events').pluck().get() as number
      const progress = startProgress({ label: 'rebuild', total, summaryStream })
      let result: RebuildResult
      try {
        result = workers !== undefined
          ? await rebuildProjectionsInParallel(database.sqlite, workers, { onEvents: n => { progress.increment(n) } })
          : rebuildProjections(database.sqlite, () => { progress.increment() })
      } catch (error) {
        progress.stop()
        throw error
      }
      progress.finish(`${result.orders} orders, checkpoint at position ${result.lastPosition}`)
      return result
    } finally {
      await database.close()
    }
  } finally {
    // Already gone after a fold; stopped here when something failed before or during it.
    await workers?.terminate()
  }
}

/** `paynotify rebuild`: drop the projections and fold them again from the log. */
export function registerRebuildCommand (program: Command): Command {
  return program.command('rebuild')
    .description('drop every projection and rebuild it from the event log (one transaction)')
    .option('--db <path>', dbOptionHelp)
    .option('--force', 'rebuild even though a service is running on the database (its writes wait, or fail with 503 and are retried by the gateway)', false)
    .addHelpText('after', `
The rebuilt order rows are byte-identical to what the live projector writes; \`paynotify verify\`
checks that without writing. Exit codes: 0 rebuilt, 1 error, 2 bad usage or the service
is running on the database (stop it, or pass --force).`)
    .action(async function (this: Command, options: { db?: string, force: boolean }) {
      const dbPath = await resolveDbPath(options.db)
      requireDatabase(this, dbPath)
      refuseWhileServing(this, dbPath, options.force)
      await rebuildDatabase(dbPath)
    })
}
