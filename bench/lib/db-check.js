import { createRequire } from 'node:module'
import { join } from 'node:path'
import { root } from './machine.js'

const require = createRequire(join(root, 'package.json'))
const SQLite = require('better-sqlite3')

/** Rows in the events table, through a read-only connection of its own (WAL lets it read while the server writes). */
export function countEvents (dbPath) {
  const sqlite = new SQLite(dbPath, { readonly: true, fileMustExist: true })
  try {
    return sqlite.prepare('SELECT count(*) AS n FROM events').get().n
  } finally {
    sqlite.close()
  }
}

/**
 * After a run: recompute the hash chain with the service's own verifyChain,
 * and count the transactions that wrote positions after `afterPosition` (one
 * recorded_at per batch, so distinct values are the commits, give or take
 * two batches in one millisecond).
 */
export async function checkLog (dbPath, afterPosition) {
  const { verifyChain } = await import(join(root, 'dist', 'event-log', 'verify-chain.js'))
  const sqlite = new SQLite(dbPath, { readonly: true, fileMustExist: true })
  try {
    const chain = verifyChain(sqlite)
    const commits = sqlite.prepare('SELECT count(DISTINCT recorded_at) AS n FROM events WHERE position > ?').get(afterPosition).n
    return { chainOk: chain.ok, checked: chain.checked, firstBreak: chain.firstBreak ?? null, commits }
  } finally {
    sqlite.close()
  }
}
