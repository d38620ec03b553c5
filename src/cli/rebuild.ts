import type { Command } from 'commander'
import { rebuildProjections, type RebuildResult } from '../orders/rebuild.js'
import { openStore } from '../store.js'
import { dbOptionHelp, refuseWhileServing, requireDatabase, resolveDbPath } from './options.js'
import { startProgress } from './progress.js'

/** Rebuilds the projections of a database with progress; prints the summary line to `summaryStream`. */
export async function rebuildDatabase (dbPath: string, summaryStream: NodeJS.WritableStream = process.stdout): Promise<RebuildResult> {
  const store = await openStore(dbPath)
  try {
    const total = store.sqlite.prepare('SELECT count(*) FROM events').pluck().get() as number
    const progress = startProgress({ label: 'rebuild', total, summaryStream })
    let result: RebuildResult
    try {
      result = rebuildProjections(store.sqlite, () => { progress.increment() })
    } catch (error) {
      progress.stop()
      throw error
    }
    progress.finish(`${result.orders} orders, checkpoint at position ${result.lastPosition}`)
    return result
  } finally {
    await store.close()
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
