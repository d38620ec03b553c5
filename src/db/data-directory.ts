import { mkdirSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'

/** The directory a fresh install keeps its database in (PAYNOTIFY_DB's default is ./data/paynotify.db). */
export const defaultDataDirectory = './data'

/** The database's directory is missing (and is not the default one), or is not a directory. */
export class DatabaseDirectoryError extends Error {}

/**
 * Makes sure the directory a database file goes in exists before anything is
 * written there. Only the default ./data (of the current directory) is
 * created: any other missing directory is most likely a typo in PAYNOTIFY_DB
 * or --db, and creating it would start an empty database nobody looks at.
 */
export function prepareDatabaseDirectory (dbPath: string): void {
  if (dbPath === ':memory:') return
  const dir = resolve(dirname(dbPath))
  let isDirectory: boolean
  try {
    isDirectory = statSync(dir).isDirectory()
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    if (dir !== resolve(defaultDataDirectory)) {
      throw new DatabaseDirectoryError(`the directory of the database ${dbPath} does not exist: create ${dir} first (only the default ${defaultDataDirectory} is created for you)`)
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    return
  }
  if (!isDirectory) throw new DatabaseDirectoryError(`the directory of the database ${dbPath} is not a directory: ${dir}`)
}
