import { existsSync, readFileSync } from 'node:fs'
import { InvalidArgumentError, type Command } from 'commander'
import { isWriterLocked, writerLockPath } from '../db/writer-lock.js'
import { orderIdPattern } from '../orders/events.js'
import { secretsFilePath, type Secrets } from '../secrets.js'

/** Option parsers and checks shared by export, import, replay, rebuild and verify. Usage errors exit 2. */

export const dbOptionHelp = 'database file (default: PAYNOTIFY_DB, else ./data/paynotify.db)'

/**
 * A usage error found while running (no such file, the service holds the
 * database): exit 2 with the message alone. Parse errors still show help.
 */
export function usageError (command: Command, message: string): never {
  command.showHelpAfterError(false)
  command.error(message, { exitCode: 2 })
}

/**
 * The --db option, else PAYNOTIFY_DB from the validated environment. The
 * configuration (TypeBox and Ajv: ~0.3 s to load) is loaded only when it is
 * needed, so a command given --db starts without it.
 */
export async function resolveDbPath (db: string | undefined): Promise<string> {
  if (db !== undefined) return db
  const { loadConfig } = await import('../config.js')
  return loadConfig(process.env).dbPath
}

/** The database must exist for commands that read it (a typo must not create an empty one). */
export function requireDatabase (command: Command, dbPath: string): void {
  if (!existsSync(dbPath)) usageError(command, `no database at ${dbPath} (pass --db or set PAYNOTIFY_DB)`)
}

/** Commands that write behind the service's back refuse while it runs on the database, unless forced. */
export function refuseWhileServing (command: Command, dbPath: string, force: boolean): void {
  if (force || !isWriterLocked(dbPath)) return
  usageError(command, `the service is running on ${dbPath} (it holds ${writerLockPath(dbPath)}): stop it first, or pass --force`)
}

export function position (value: string): number {
  const n = Number(value)
  if (!/^\d{1,16}$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('must be a log position (an integer ≥ 0)')
  return n
}

export function positiveNumber (value: string): number {
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a number > 0')
  return n
}

export function orderId (value: string): string {
  if (!orderIdPattern.test(value)) throw new InvalidArgumentError('must be an order id (1-64 of A-Z a-z 0-9 _ . : -)')
  return value
}

/** An ISO-8601 time, normalized to the UTC form the log stores (so string comparison is time order). */
export function isoTime (value: string): string {
  const date = new Date(value)
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(date.getTime())) throw new InvalidArgumentError('must be an ISO-8601 time such as 2026-11-27T10:00:00Z')
  return date.toISOString()
}

export function httpUrl (value: string): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new InvalidArgumentError('must be a URL such as http://127.0.0.1:3000')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError('must be an http or https URL')
  return url
}

/** Secrets kept beside a database by the service (secrets.ts), without generating any. */
export function storedSecrets (dbPath: string): Partial<Secrets> {
  try {
    return JSON.parse(readFileSync(secretsFilePath(dbPath), 'utf8')) as Partial<Secrets>
  } catch {
    return {}
  }
}
