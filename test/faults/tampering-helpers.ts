import SQLite from 'better-sqlite3'
import { chainHash, genesisHash } from '../../src/event-log/hash.js'
import type { EventRow } from '../../src/event-log/read.js'

// What the tampering tests (tampering.test.ts, tampering-signed.test.ts) do to a database behind the service's back.

/** A copy of the database with the immutability triggers dropped and `tamper` run on it. */
export function tamperedCopy (dbPath: string, copyPath: string, tamper: (db: SQLite.Database) => void): string {
  const source = new SQLite(dbPath, { readonly: true })
  source.prepare('VACUUM INTO ?').run(copyPath)
  source.close()
  const copy = new SQLite(copyPath)
  const triggers = copy.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'").pluck().all() as string[]
  for (const name of triggers) copy.exec(`DROP TRIGGER ${name}`)
  tamper(copy)
  copy.close()
  return copyPath
}

export function row (db: SQLite.Database, position: number): EventRow {
  return db.prepare('SELECT * FROM events WHERE position = ?').get(position) as EventRow
}

/**
 * The attack of issue 10 §4: whoever can write the database edits one event and recomputes
 * every hash after it, the chain checkpoint included, so the chain alone verifies.
 */
export function rewriteHistory (db: SQLite.Database, position: number, edit: (data: string) => string): void {
  let prev = position === 1 ? genesisHash : row(db, position - 1).hash
  for (const stored of db.prepare('SELECT * FROM events WHERE position >= ? ORDER BY position').all(position) as EventRow[]) {
    const data = stored.position === position ? edit(stored.data) : stored.data
    prev = chainHash(prev, { ...stored, data })
    db.prepare('UPDATE events SET data = ?, hash = ? WHERE position = ?').run(data, prev, stored.position)
  }
  db.prepare('UPDATE chain_checkpoints SET hash = (SELECT hash FROM events WHERE position = chain_checkpoints.position)').run()
}
