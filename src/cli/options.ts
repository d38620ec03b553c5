import { existsSync } from 'node:fs'
import { InvalidArgumentError, type Command } from 'commander'
import { isWriterLocked, writerLockPath } from '../db/writer-lock.js'
import { createCheckpointSigner, isSigningKey, publicKeyPattern, type CheckpointSigner } from '../event-log/checkpoint-signature.js'
import { orderIdPattern } from '../orders/events.js'
import { readSecretsFile, secretsFilePath, type Secrets } from '../secrets.js'

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

/** A public key as `paynotify public-key` prints it (--public-key). */
export function publicKey (value: string): string {
  if (!publicKeyPattern.test(value)) throw new InvalidArgumentError('must be a public key such as ed25519:… (`paynotify public-key` prints the service\'s)')
  return value
}

/**
 * Secrets kept beside a database by the service (secrets.ts), without
 * generating any; {} when there is no file. A file other users may read is
 * refused, as the service refuses it.
 */
export function storedSecrets (dbPath: string): Partial<Secrets> {
  return readSecretsFile(secretsFilePath(dbPath))
}

/** A database's checkpoint signer: PAYNOTIFY_SIGNING_KEY, else its secrets file's key; never generated. */
export async function localSigner (dbPath: string): Promise<{ signer: CheckpointSigner, source: string } | undefined> {
  // The configuration costs ~0.2 s to load (TypeBox, env-schema): loaded, and the whole environment validated, only when the key is set there.
  if (process.env.PAYNOTIFY_SIGNING_KEY !== undefined && process.env.PAYNOTIFY_SIGNING_KEY !== '') {
    const { loadConfig } = await import('../config.js')
    const fromEnv = loadConfig(process.env).secrets.signingKey!
    return { signer: createCheckpointSigner(fromEnv), source: 'PAYNOTIFY_SIGNING_KEY' }
  }
  const file = secretsFilePath(dbPath)
  const stored = readSecretsFile(file).signingKey
  if (stored === undefined) return undefined
  if (!isSigningKey(stored)) throw new Error(`${file}: signingKey is not a signing key (32 bytes in base64url)`)
  return { signer: createCheckpointSigner(stored), source: `the key in ${file}` }
}

/** The public key signatures must carry: --public-key, else the database's own signing key (localSigner), else none. */
export async function trustedPublicKey (dbPath: string, pinned: string | undefined): Promise<{ publicKey: string, source: string } | undefined> {
  if (pinned !== undefined) return { publicKey: pinned, source: '--public-key' }
  const local = await localSigner(dbPath)
  return local === undefined ? undefined : { publicKey: local.signer.publicKey, source: local.source }
}

/**
 * A secret given as an option is visible to every user of the machine (ps,
 * /proc/<pid>/cmdline) and kept in shell history: say so, and name the
 * variable or file that keeps it off the command line.
 */
export function warnSecretOnCommandLine (option: string, variable: string): void {
  process.stderr.write(`paynotify: warning: ${option} puts a secret on the command line, where other users of this machine can read it ` +
    `(ps, /proc) and your shell history keeps it; set ${variable} instead, or run where the secrets file beside PAYNOTIFY_DB is\n`)
}
