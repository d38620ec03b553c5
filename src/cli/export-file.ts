import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { ChainChecker, parseExportLine, type ExportSummary, type ImportedRow } from '../event-log/ndjson.js'

/** Reads an export file line by line (constant memory), each line parsed and checked on its own. Blank lines are skipped. */
export async function * readExportRows (path: string): AsyncGenerator<ImportedRow> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY })
  let line = 0
  for await (const text of lines) {
    line++
    if (text.trim() === '') continue
    yield parseExportLine(text, line)
  }
}

/**
 * Checks a whole file before anything is written from it: every line's own
 * hash and the links between lines (ChainChecker). Throws ExportLineError
 * naming the first bad line.
 */
export async function checkExportFile (path: string, onRow?: () => void): Promise<ExportSummary> {
  const checker = new ChainChecker()
  for await (const row of readExportRows(path)) {
    checker.add(row)
    onRow?.()
  }
  return checker.summary()
}
