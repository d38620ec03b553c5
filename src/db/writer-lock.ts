import { existsSync } from 'node:fs'
import SQLite from 'better-sqlite3'
import { prepareDatabaseDirectory } from './data-directory.js'

/**
 * The service's claim on a database. WAL mode lets any number of connections
 * open the file, and an idle service holds no SQLite lock, so "is the service
 * running on this file?" cannot be asked of the database itself. Instead the
 * service holds an exclusive transaction on a small companion SQLite file for
 * its whole life: an OS file lock, released by the kernel however the
 * process ends (no stale PID files, no lease to refresh). Commands that write
 * behind the service's back (rebuild, import) try the same lock with no wait.
 */
export interface WriterLock {
  readonly path: string
  release: () => void
}

export class WriterLockedError extends Error {}

export function writerLockPath (dbPath: string): string {
  return `${dbPath}.lock`
}

function tryLock (connection: SQLite.Database): boolean {
  connection.pragma('busy_timeout = 0')
  try {
    // The file holds no data, so no journal file either (the pragma itself needs the lock: BUSY when held).
    connection.pragma('journal_mode = MEMORY')
    connection.exec('BEGIN EXCLUSIVE')
    return true
  } catch (error) {
    if ((error as { code?: string }).code === 'SQLITE_BUSY') return false
    throw error
  }
}

/** Takes the lock for the service's lifetime; throws WriterLockedError if another process holds it. */
export function acquireWriterLock (dbPath: string): WriterLock {
  const path = writerLockPath(dbPath)
  if (dbPath === ':memory:') return { path, release: () => {} }
  prepareDatabaseDirectory(dbPath)
  const connection = new SQLite(path)
  if (!tryLock(connection)) {
    connection.close()
    throw new WriterLockedError(`another paynotify service is running on ${dbPath} (it holds ${path})`)
  }
  let held = true
  return {
    path,
    release () {
      if (!held) return
      held = false
      connection.exec('ROLLBACK')
      connection.close()
    }
  }
}

/** True while a running service holds the lock on this database. */
export function isWriterLocked (dbPath: string): boolean {
  const path = writerLockPath(dbPath)
  // No file: no service has ever run on this database.
  if (!existsSync(path)) return false
  const connection = new SQLite(path, { fileMustExist: true })
  try {
    const free = tryLock(connection)
    if (free) connection.exec('ROLLBACK')
    return !free
  } finally {
    connection.close()
  }
}
