import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { ChainChecker, parseExportLine, type ExportSummary, type ImportedRow } from '../event-log/ndjson.js'

/**
 * Reads an export file line by line in constant memory, each line parsed,
 * checked on its own and against the line before it (ChainChecker). Throws
 * ExportLineError naming the first bad line. Blank lines are skipped.
 * Import reads a file twice (check everything, then write) and checks it
 * both times, so a file changed in between cannot slip through.
 */
export async function * readCheckedRows (path: string, checker = new ChainChecker()): AsyncGenerator<ImportedRow> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY })
  let line = 0
  for await (const text of lines) {
    line++
    if (text.trim() === '') continue
    const row = parseExportLine(text, line)
    checker.add(row)
    yield row
  }
}

/** Checks a whole file before anything is written from it. */
export async function checkExportFile (path: string, onRow?: () => void): Promise<ExportSummary> {
  const checker = new ChainChecker()
  const rows = readCheckedRows(path, checker)
  while (!(await rows.next()).done) onRow?.()
  return checker.summary()
}
