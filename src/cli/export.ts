import { createWriteStream, fchmodSync } from 'node:fs'
import { once } from 'node:events'
import type { Writable } from 'node:stream'
import type { Command } from 'commander'
import { dbOptionHelp, isoTime, orderId, position, requireDatabase, resolveDbPath } from './options.js'
import { startProgress } from './progress.js'

interface ExportOptions {
  db?: string
  out?: string
  order?: string
  after: number
  from?: string
  to?: string
}

// Lines are written in chunks of about this size (one write per chunk, not per line), and the
// file stream holds a few of them, so reading goes on while the previous chunk is being written.
const chunkSize = 1 << 16

async function exportLog (command: Command, options: ExportOptions): Promise<void> {
  const dbPath = await resolveDbPath(options.db)
  requireDatabase(command, dbPath)
  const [{ default: SQLite }, { exportChunks, resolveExportRange }] = await Promise.all([import('better-sqlite3'), import('../event-log/export.js')])
  // Read-only: export runs beside the service (WAL readers never block its writer). A bare
  // connection, not openDatabase: a read needs only the busy timeout, and not loading Kysely
  // saves ~0.3 s of every export's start.
  const sqlite = new SQLite(dbPath, { readonly: true, fileMustExist: true, timeout: 5000 })
  // 0600: an export holds every raw callback as received; a file that existed is made private too.
  const out: Writable = options.out === undefined ? process.stdout : createWriteStream(options.out, { highWaterMark: 4 * chunkSize, mode: 0o600 }).on('open', fd => { fchmodSync(fd, 0o600) })
  let outputError: Error | undefined
  out.on('error', error => { outputError = error })
  const range = resolveExportRange(sqlite, { streamId: options.order, after: options.after, from: options.from, to: options.to })
  const progress = startProgress({ label: 'export', total: range.count, summaryStream: process.stderr })
  try {
    for (const chunk of exportChunks(sqlite, range, options.order, chunkSize)) {
      if (outputError !== undefined) throw outputError
      const more = out.write(chunk.bytes)
      progress.increment(chunk.lines)
      if (!more) await once(out, 'drain')
    }
    if (outputError !== undefined) throw outputError
    if (out !== process.stdout) {
      out.end()
      await once(out, 'finish')
    }
  } catch (error) {
    progress.stop()
    // A reader that went away (`export | head`) is not a failure of the export.
    if ((error as NodeJS.ErrnoException).code === 'EPIPE') return
    throw error
  } finally {
    sqlite.close()
  }
  const span = range.count === 0 ? 'nothing selected' : `positions ${range.first}-${range.last}`
  progress.finish(`${span}${options.order === undefined ? '' : ` of order ${options.order}`} → ${options.out ?? 'stdout'}`)
}

/**
 * `paynotify export`: the log (or one order, or a range) as NDJSON, one
 * event per line with the hash of the event before it (see events/README.md).
 * Streams in constant memory with backpressure; opens the database read-only.
 */
export function registerExportCommand (program: Command): Command {
  return program.command('export')
    .description('write the event log as NDJSON, one event per line with its hash chain (read-only: safe beside a running service)')
    .option('--db <path>', dbOptionHelp)
    .option('--out <file>', 'write to this file (default: stdout)')
    .option('--order <id>', "only this order's events", orderId)
    .option('--after <position>', 'only events after this log position', position, 0)
    .option('--from <time>', 'from the first event recorded at or after this ISO-8601 time', isoTime)
    .option('--to <time>', 'up to the last event recorded before this ISO-8601 time', isoTime)
    .addHelpText('after', `
Each line: {"position","streamId","streamVersion","type","schemaVersion","data","metadata",
"recordedAt","prevHash","hash"} with hash = sha256 chain over the stored event, so every
line can be checked on its own and \`paynotify import\` proves nothing was edited or dropped.
Lines the service signed also carry "checkpoint" (its Ed25519 signature and public key):
\`paynotify verify <file> --public-key <key>\` proves the file to whoever holds the key.
The file is created with mode 0600.
A progress bar (on a TTY) and the summary go to stderr.
Exit codes: 0 exported, 1 error reading the database, 2 bad usage.`)
    .action(async function (this: Command, options: ExportOptions) {
      await exportLog(this, options)
    })
}
