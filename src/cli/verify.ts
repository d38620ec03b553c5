import { existsSync } from 'node:fs'
import type { Command } from 'commander'
import type { SignatureReport } from '../event-log/signed-checkpoints.js'
import type { ChainBreak } from '../event-log/verify-chain.js'
import { dbOptionHelp, publicKey, requireDatabase, resolveDbPath, trustedPublicKey, usageError } from './options.js'
import { startProgress } from './progress.js'

interface VerifyOptions {
  db?: string
  publicKey?: string
}

function describeBreak (broken: ChainBreak): string {
  switch (broken.kind) {
    case 'gap': return `chain broken at position ${broken.expected}: it is missing (the next row is position ${broken.position}; a row was deleted)`
    case 'hash': return `chain broken at position ${broken.position}: its hash does not match its content or its predecessor (a row was edited, inserted or reordered)`
    case 'body': return `chain broken at position ${broken.position}: its raw body (sha256 ${broken.sha256}) is missing or was edited`
  }
}

function describeSignatures (report: SignatureReport, source: string | undefined, tail: number): string {
  const ignored = report.ignored === 0 ? '' : `; ${report.ignored} checkpoint(s) signed with other keys ignored`
  if (tail === 0) return 'verify signatures: the log is empty'
  if (report.valid === 0) {
    return `verify signatures: none (the log was written without a signing key${source === undefined ? '; pass --public-key to require them' : ''})${ignored}`
  }
  const by = report.trusted !== undefined
    ? `${report.trusted} (${source!})`
    : `${report.keys.join(', ')}, which nothing pins (pass --public-key, or run where the secrets file is)`
  const unsigned = report.unsigned === undefined ? '' : `; positions ${report.unsigned.first}-${report.unsigned.last} are not signed`
  return `verify signatures: positions 1-${report.coveredThrough} covered by ${report.valid} checkpoint(s) signed with ${by}${unsigned}${ignored}`
}

async function verifyDatabase (dbPath: string, pinned: string | undefined): Promise<boolean> {
  const [{ openDatabase }, { verifyChain }, { describeSignatureProblem, verifySignedCheckpoints }, { describeDifference, verifyProjection }] =
    await Promise.all([import('../db/database.js'), import('../event-log/verify-chain.js'), import('../event-log/signed-checkpoints.js'), import('../projection/verify-projection.js')])
  const trusted = await trustedPublicKey(dbPath, pinned)
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
    // The chain holds together; only a signature says it is the history the service wrote.
    const signatures = verifySignedCheckpoints(sqlite, { position: chain.lastPosition, hash: chain.lastHash }, trusted?.publicKey)
    if (signatures.problem !== undefined) {
      say(describeSignatureProblem(signatures.problem))
      return false
    }
    // The service signs every commit: with its key at hand, an unsigned tail is a finding, not a gap in coverage.
    if (signatures.unsigned !== undefined && trusted !== undefined) {
      const ignored = signatures.ignored === 0 ? '' : `; ${signatures.ignored} checkpoint(s) signed with other keys ignored`
      say(`${describeSignatureProblem({ kind: 'unsigned', ...signatures.unsigned })}; checked against ${trusted.publicKey} (${trusted.source})${ignored}`)
      return false
    }
    say(describeSignatures(signatures, trusted?.source, chain.lastPosition))
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

/** An export file on its own: what an auditor holding only the file and the public key can check. */
async function verifyFile (file: string, pinned: string | undefined): Promise<boolean> {
  const [{ checkExportFile }, { describeCoverage, ExportLineError }] = await Promise.all([import('./export-file.js'), import('../event-log/ndjson.js')])
  const progress = startProgress({ label: 'verify file', unit: 'lines' })
  try {
    const summary = await checkExportFile(file, () => { progress.increment() }, { publicKey: pinned })
    const span = summary.first === undefined ? 'empty' : `positions ${summary.first.position}-${summary.last!.position}`
    progress.finish(`${span}, every line's hash, chain link and event schema intact`)
    process.stdout.write(`${describeCoverage(summary)}\n`)
    return true
  } catch (error) {
    progress.stop()
    if (!(error instanceof ExportLineError)) throw error
    process.stdout.write(`${file} ${error.message}\n`)
    return false
  }
}

/** `paynotify verify`: the chain is intact, signed by the service's key, and the stored projection equals a fresh fold; or an export file on its own. */
export function registerVerifyCommand (program: Command): Command {
  return program.command('verify')
    .description('check the hash chain from position 1 to the end, its signed checkpoints, and that the stored projection equals a fresh fold of the log (read-only); or, given a file, an export on its own')
    .argument('[file]', 'an NDJSON export to check instead of a database')
    .option('--db <path>', dbOptionHelp)
    .option('--public-key <key>', 'the key signatures must carry (default for a database: its signing key, from PAYNOTIFY_SIGNING_KEY or the secrets file beside it)', publicKey)
    .addHelpText('after', `
Catches rows edited, inserted, reordered or deleted behind the service's back (the chain,
and the projection checkpoint against the log tail for a deleted last row), a history
rewritten with recomputed hashes (a signed checkpoint no longer matches, or the signatures
are gone or by another key) and a projection that drifted from the log.
With a file: every line's hash, its event against events/schemas, the chain between lines,
and its signed checkpoints; with --public-key every line must be covered by one signed with
that key (what an auditor needs: the file and \`paynotify public-key\`'s output).
Exit codes: 0 all good, 1 a difference was found (the first bad position, line or order is
named), 2 bad usage.`)
    .action(async function (this: Command, file: string | undefined, options: VerifyOptions) {
      if (file !== undefined) {
        if (options.db !== undefined) usageError(this, 'give a file or --db, not both')
        if (!existsSync(file)) usageError(this, `no file ${file}`)
        if (!await verifyFile(file, options.publicKey)) process.exitCode = 1
        return
      }
      const dbPath = await resolveDbPath(options.db)
      requireDatabase(this, dbPath)
      if (!await verifyDatabase(dbPath, options.publicKey)) process.exitCode = 1
    })
}
