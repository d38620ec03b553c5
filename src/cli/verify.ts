import type { Command } from 'commander'
import type { ChainBreak } from '../event-log/verify-chain.js'
import { dbOptionHelp, requireDatabase, resolveDbPath } from './options.js'
import { startProgress } from './progress.js'

function describeBreak (broken: ChainBreak): string {
  switch (broken.kind) {
    case 'gap': return `chain broken at position ${broken.expected}: it is missing (the next row is position ${broken.position}; a row was deleted)`
    case 'hash': return `chain broken at position ${broken.position}: its hash does not match its content or its predecessor (a row was edited, inserted or reordered)`
    case 'body': return `chain broken at position ${broken.position}: its raw body (sha256 ${broken.sha256}) is missing or was edited`
  }
}

async function verifyDatabase (dbPath: string): Promise<boolean> {
  const [{ openDatabase }, { verifyChain }, { describeDifference, verifyProjection }] =
    await Promise.all([import('../db/database.js'), import('../event-log/verify-chain.js'), import('../orders/verify-projection.js')])
  const database = openDatabase(dbPath, { readonly: true })
  const say = (line: string): void => { process.stdout.write(`${line}\n`) }
  try {
    const { sqlite } = database
    const total = sqlite.prepare('SELECT count(*) FROM events').pluck().get() as number
    const chainProgress = startProgress({ label: 'verify chain', total })
    const chain = verifyChain(sqlite, undefined, checked => { chainProgress.update(checked) })
    if (!chain.ok) {
      chainProgress.stop()
      say(describeBreak(chain.firstBreak!))
      return false
    }
    chainProgress.update(chain.checked)
    chainProgress.finish(`intact, positions 1-${chain.lastPosition}`)
    const foldProgress = startProgress({ label: 'verify projection', total })
    const projection = verifyProjection(sqlite, chain.lastPosition, () => { foldProgress.increment() })
    if (!projection.ok) {
      foldProgress.stop()
      say(`projection differs: ${describeDifference(projection.difference!)}`)
      return false
    }
    foldProgress.finish(`${projection.orders} orders match a fresh fold, checkpoint at position ${chain.lastPosition}`)
    return true
  } finally {
    await database.close()
  }
}

/** `paynotify verify`: the chain is intact and the stored projection equals a fresh fold. */
export function registerVerifyCommand (program: Command): Command {
  return program.command('verify')
    .description('check the hash chain from position 1 to the end, and that the stored projection equals a fresh fold of the log (read-only)')
    .option('--db <path>', dbOptionHelp)
    .addHelpText('after', `
Catches rows edited, inserted, reordered or deleted behind the service's back (the chain,
and the projection checkpoint against the log tail for a deleted last row) and a projection
that drifted from the log. Exit codes: 0 all good, 1 a difference was found (the first bad
position or order is named), 2 bad usage.`)
    .action(async function (this: Command, options: { db?: string }) {
      const dbPath = await resolveDbPath(options.db)
      requireDatabase(this, dbPath)
      if (!await verifyDatabase(dbPath)) process.exitCode = 1
    })
}
