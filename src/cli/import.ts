import type { Command } from 'commander'
import type { ImportResult } from '../event-log/import.js'
import type { ExportSummary } from '../event-log/ndjson.js'
import { inputName, unreadableInput, withRereadableInput } from './input-file.js'
import { dbOptionHelp, refuseWhileServing, resolveDbPath, usageError } from './options.js'
import { startProgress } from './progress.js'

export interface ImportOutcome {
  summary: ExportSummary
  result: ImportResult
}

/**
 * Checks an export file, then writes it into a database (created and migrated
 * if needed) with the projection in the same transaction. Throws
 * ExportLineError for a broken file, before anything is written.
 */
export async function importFile (file: string, dbPath: string, log: (line: string) => void): Promise<ImportOutcome> {
  const [{ checkExportFile, readCheckedRows }, { importRows, planImport }, { openStore }] =
    await Promise.all([import('./export-file.js'), import('../event-log/import.js'), import('../store.js')])
  const check = startProgress({ label: 'check', unit: 'lines', summaryStream: process.stderr })
  let summary: ExportSummary
  try {
    summary = await checkExportFile(file, () => { check.increment() })
  } catch (error) {
    check.stop()
    throw error
  }
  check.finish('chain verified')
  // One transaction, one fsync: FULL costs nothing here.
  const store = await openStore(dbPath)
  try {
    const mode = planImport(store.sqlite, summary)
    const progress = startProgress({ label: 'import', total: summary.lines, summaryStream: process.stderr })
    let result: ImportResult
    try {
      result = await importRows(store.sqlite, readCheckedRows(file), {
        mode,
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
    .addHelpText('after', `
A file that continues the database's chain (a full export into a fresh database, or
\`export --after <tail>\`) is imported byte for byte: same positions and hashes. Any other
file (one order, a range) is re-appended after the tail with new positions and a new chain.
Exit codes: 0 imported, 1 the file is broken (the line is named) or cannot be written,
2 bad usage or the service is running on the database.`)
    .action(async function (this: Command, file: string, options: { db?: string, force: boolean }) {
      const unreadable = unreadableInput(file)
      if (unreadable !== undefined) usageError(this, unreadable)
      const dbPath = await resolveDbPath(options.db)
      refuseWhileServing(this, dbPath, options.force)
      const { ExportLineError } = await import('../event-log/ndjson.js')
      try {
        await withRereadableInput(file, async path => await importFile(path, dbPath, line => { process.stdout.write(`${line}\n`) }))
      } catch (error) {
        if (!(error instanceof ExportLineError)) throw error
        process.stderr.write(`paynotify import: ${inputName(file)} ${error.message}; nothing was imported\n`)
        process.exitCode = 1
      }
    })
}
