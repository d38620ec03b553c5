import type { Command } from 'commander'
import type { ImportResult } from '../event-log/import.js'
import type { CheckpointSigner } from '../event-log/checkpoint-signature.js'
import type { ExportSummary } from '../event-log/ndjson.js'
import { inputName, unreadableInput, withRereadableInput } from './input-file.js'
import { dbOptionHelp, localSigner, publicKey, refuseWhileServing, resolveDbPath, usageError } from './options.js'
import { startProgress } from './progress.js'

export interface ImportOutcome {
  summary: ExportSummary
  result: ImportResult
}

export interface ImportFileOptions {
  /** Every line must be covered by a checkpoint signed with this key (--public-key). */
  publicKey?: string | undefined
  /** The database's own key: the imported tail is signed with it. */
  signer?: CheckpointSigner | undefined
}

/**
 * Checks an export file (its chain, every event against the catalogue's
 * schemas, its signatures), then writes it into a database (created and
 * migrated if needed) with the projection in the same transaction. Throws
 * ExportLineError for a broken file, before anything is written.
 */
export async function importFile (file: string, dbPath: string, log: (line: string) => void, options: ImportFileOptions = {}): Promise<ImportOutcome> {
  const [{ checkExportFile, readCheckedRows }, { importRows, planImport }, { openStore }, { describeCoverage }] =
    await Promise.all([import('./export-file.js'), import('../event-log/import.js'), import('../store.js'), import('../event-log/ndjson.js')])
  const check = startProgress({ label: 'check', unit: 'lines', summaryStream: process.stderr })
  const checkOptions = { publicKey: options.publicKey }
  let summary: ExportSummary
  try {
    summary = await checkExportFile(file, () => { check.increment() }, checkOptions)
  } catch (error) {
    check.stop()
    throw error
  }
  check.finish('chain and schemas verified')
  process.stderr.write(`${describeCoverage(summary)}\n`)
  // One transaction, one fsync: FULL costs nothing here.
  const store = await openStore(dbPath)
  try {
    const mode = planImport(store.sqlite, summary)
    const progress = startProgress({ label: 'import', total: summary.lines, summaryStream: process.stderr })
    let result: ImportResult
    try {
      result = await importRows(store.sqlite, readCheckedRows(file, checkOptions), {
        mode,
        signer: options.signer,
        onAppend: events => { store.projector.apply(events) },
        onRollback: () => { store.projector.reload() },
        onRow: () => { progress.increment() }
      })
    } catch (error) {
      progress.stop()
      throw error
    }
    progress.finish(`${result.written} written, ${result.skipped} already present`)
    log(describeImport(summary, result))
    return { summary, result }
  } finally {
    await store.close()
  }
}

function describeImport (summary: ExportSummary, result: ImportResult): string {
  if (summary.first === undefined) return 'the file holds no events: nothing imported'
  const source = `positions ${summary.first.position}-${summary.last!.position} of the file`
  const span = result.written === 0 ? 'nothing new' : `positions ${result.firstPosition}-${result.lastPosition}`
  const unproven = summary.unanchored ? ` (the first line has no prevHash: its link to the log before position ${summary.first!.position} is unproven)` : ''
  if (result.mode === 'verbatim') {
    return `imported ${result.written} events as recorded (${span}, same positions and hashes: the file continues this database's chain)` +
      (result.skipped > 0 ? `; ${result.skipped} already present` : '')
  }
  return `re-appended ${result.written} events as ${span} with a new hash chain: ${source} do not continue this database's chain, ` +
    'so they are this database\'s own history now (recorded times, data and metadata unchanged)' + unproven
}

/** `paynotify import file.ndjson`: verify an export's chain and append it to a database. */
export function registerImportCommand (program: Command): Command {
  return program.command('import')
    .description("verify an export's hash chain and append it to a database (nothing is written if any line is broken)")
    .argument('<file>', 'NDJSON export (paynotify export, the admin NDJSON stream, events/*.ndjson); - reads stdin')
    .option('--db <path>', dbOptionHelp)
    .option('--force', 'write even though a service is running on the database', false)
    .option('--public-key <key>', 'refuse the file unless every line is covered by a checkpoint signed with this key (`paynotify public-key` on the service prints it)', publicKey)
    .addHelpText('after', `
Every line is checked on its own (hash, and the event against events/schemas) and
against the line before it; a signed checkpoint in the file must verify, and with
--public-key it must be by that key and cover every line (a full or --after export is
covered; one order's lines are not). The new tail is signed with the database's own key
(PAYNOTIFY_SIGNING_KEY, else its secrets file) when it has one.
A file that continues the database's chain (a full export into a fresh database, or
\`export --after <tail>\`) is imported byte for byte: same positions and hashes. Any other
file (one order, a range) is re-appended after the tail with new positions and a new chain.
Exit codes: 0 imported, 1 the file is broken (the line is named) or cannot be written,
2 bad usage or the service is running on the database.`)
    .action(async function (this: Command, file: string, options: { db?: string, force: boolean, publicKey?: string }) {
      const unreadable = unreadableInput(file)
      if (unreadable !== undefined) usageError(this, unreadable)
      const dbPath = await resolveDbPath(options.db)
      refuseWhileServing(this, dbPath, options.force)
      const { ExportLineError } = await import('../event-log/ndjson.js')
      const local = await localSigner(dbPath)
      try {
        await withRereadableInput(file, async path => await importFile(path, dbPath, line => { process.stdout.write(`${line}\n`) }, { publicKey: options.publicKey, signer: local?.signer }))
      } catch (error) {
        if (!(error instanceof ExportLineError)) throw error
        process.stderr.write(`paynotify import: ${inputName(file)} ${error.message}; nothing was imported\n`)
        process.exitCode = 1
      }
    })
}
