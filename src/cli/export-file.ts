import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { ChainChecker, parseExportLine, requireSigned, type ChainCheckerOptions, type ExportSummary, type ImportedRow } from '../event-log/ndjson.js'

/**
 * Reads an export file line by line in constant memory, each line parsed,
 * checked on its own and against the line before it (ChainChecker). Throws
 * ExportLineError naming the first bad line. Blank lines are skipped.
 * Import reads a file twice (check everything, then write) and checks it
 * both times, so a file changed in between cannot slip through. With a
 * pinned key, a file not wholly covered by its signatures fails at its end.
 */
export async function * readCheckedRows (path: string, options: ChainCheckerOptions = {}, checker = new ChainChecker(options)): AsyncGenerator<ImportedRow> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY })
  let line = 0
  for await (const text of lines) {
    line++
    if (text.trim() === '') continue
    const row = parseExportLine(text, line)
    checker.add(row)
    yield row
  }
  requireSigned(checker.summary())
}

/** Checks a whole file before anything is written from it. */
export async function checkExportFile (path: string, onRow?: () => void, options: ChainCheckerOptions = {}): Promise<ExportSummary> {
  const checker = new ChainChecker(options)
  const rows = readCheckedRows(path, options, checker)
  while (!(await rows.next()).done) onRow?.()
  return checker.summary()
}
