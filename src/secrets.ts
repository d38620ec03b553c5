import { randomBytes } from 'node:crypto'
import { chmodSync, closeSync, fstatSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import type { Config } from './config.js'
import { prepareDatabaseDirectory } from './db/data-directory.js'
import { generateSigningKey, isSigningKey } from './event-log/checkpoint-signature.js'
import { weakSecretReason } from './secret-strength.js'

export interface Secrets {
  readonly genericSecret: string
  readonly adminToken: string
  readonly merchantToken: string
}

/** What the secrets file holds: the secrets, and the key that signs the log's checkpoints. */
export type StoredSecrets = Partial<Record<keyof Secrets | 'signingKey', string>>

export interface ResolvedSecrets {
  secrets: Secrets
  /** Names generated on this start (print them once). */
  generated: Array<keyof Secrets>
  /** Where generated secrets are kept. */
  file: string
  /**
   * The seed of the Ed25519 key that signs the log's checkpoints
   * (event-log/checkpoint-signature.ts): PAYNOTIFY_SIGNING_KEY, else the
   * file's, else generated and stored. Never printed: its public half is
   * what auditors get (`paynotify public-key`).
   */
  signingKey: string
  /** The signing key was generated on this start, so no signature by it can exist yet. */
  signingKeyGenerated: boolean
}

export function secretsFilePath (dbPath: string): string {
  return join(dirname(resolve(dbPath)), 'paynotify.secrets.json')
}

/** The local gateway identities `paynotify keys` creates (local-gateway-keys.ts), beside the secrets file. */
export function localGatewayKeysPath (dbPath: string): string {
  return join(dirname(resolve(dbPath)), 'paynotify.local-gateways.json')
}

/** The PAYNOTIFY_* variables that configure the service with those identities, as a shell file. */
export function localGatewayEnvPath (dbPath: string): string {
  return join(dirname(resolve(dbPath)), 'paynotify.local-gateways.env')
}

/**
 * The secrets file's content, or {} when there is none. Refuses a file that
 * other users may read or write: whoever reads it can forge callbacks, act as
 * admin and sign a rewritten log, so its secrets must be treated as leaked.
 */
export function readSecretsFile (file: string): StoredSecrets {
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw new Error(`cannot read ${file}: ${(error as Error).message}`)
  }
  try {
    const mode = fstatSync(fd).mode & 0o777
    if ((mode & 0o077) !== 0) {
      throw new Error(`${file} may be read or written by other users (mode ${mode.toString(8).padStart(4, '0')}): ` +
        `run \`chmod 600 ${file}\`, and replace the secrets in it if anyone else could have read them`)
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(readFileSync(fd, 'utf8'))
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object')
    } catch (error) {
      throw new Error(`cannot read ${file}: ${(error as Error).message}`)
    }
    return parsed as StoredSecrets
  } finally {
    closeSync(fd)
  }
}

/** A stored value that is present but unusable stops the start: it was put there by hand, and replacing it silently would lock its users out. */
function checkStored (file: string, name: string, value: unknown, valid: (text: string) => string | undefined): string | undefined {
  if (value === undefined) return undefined
  const problem = typeof value === 'string' ? valid(value) : 'is not a string'
  if (problem !== undefined) throw new Error(`${file}: ${name} ${problem}; set a strong one, or delete the entry to have one generated`)
  return value as string
}

const tokenProblem = (value: string): string | undefined => {
  if (value.length < 16) return 'is shorter than 16 characters'
  const weak = weakSecretReason(value)
  return weak === undefined ? undefined : `is too easy to guess: it ${weak}`
}

/**
 * Secrets from the environment win; missing ones come from the secrets file
 * beside the database, and are generated and stored there (mode 0600) the
 * first time. So `npm start` works on a fresh machine and still never
 * accepts unsigned callbacks or opens the admin API.
 */
export function resolveSecrets (config: Config): ResolvedSecrets {
  const file = secretsFilePath(config.dbPath)
  const stored = readSecretsFile(file)
  const generated: Array<keyof Secrets> = []
  const pick = (name: keyof Secrets, fromEnv: string | undefined): string => {
    if (fromEnv !== undefined) return fromEnv
    const existing = checkStored(file, name, stored[name], tokenProblem)
    if (existing !== undefined) return existing
    generated.push(name)
    const value = randomBytes(24).toString('base64url')
    stored[name] = value
    return value
  }
  const secrets: Secrets = Object.freeze({
    genericSecret: pick('genericSecret', config.secrets.genericSecret),
    adminToken: pick('adminToken', config.secrets.adminToken),
    merchantToken: pick('merchantToken', config.secrets.merchantToken)
  })
  let signingKey = config.secrets.signingKey ?? checkStored(file, 'signingKey', stored.signingKey,
    text => isSigningKey(text) ? undefined : 'is not a signing key (32 bytes in base64url)')
  const signingKeyGenerated = signingKey === undefined
  if (signingKey === undefined) {
    signingKey = generateSigningKey()
    stored.signingKey = signingKey
  }
  if (generated.length > 0 || signingKeyGenerated) {
    prepareDatabaseDirectory(config.dbPath)
    writeFileSync(file, JSON.stringify(stored, null, 2) + '\n', { mode: 0o600 })
    chmodSync(file, 0o600)
  }
  return { secrets, generated, file, signingKey, signingKeyGenerated }
}

/** The variable that sets each secret, as the banner names it. */
const variableNames: Record<keyof Secrets, string> = {
  genericSecret: 'PAYNOTIFY_GENERIC_SECRET',
  adminToken: 'PAYNOTIFY_ADMIN_TOKEN',
  merchantToken: 'PAYNOTIFY_MERCHANT_TOKEN'
}

/**
 * The lines a start that generated secrets prints for the person who ran it.
 * The values are shown only on a terminal: piped into a log collector they
 * would sit in every log store and backup, so then only the file is named.
 */
export function describeGeneratedSecrets (resolved: ResolvedSecrets, toTerminal: boolean): string {
  if (resolved.generated.length === 0) return ''
  const names = resolved.generated.map(name => variableNames[name])
  if (!toTerminal) {
    return `paynotify generated ${names.join(', ')} and stored them in ${resolved.file} (mode 0600); ` +
      'their values are not printed because this output is not a terminal\n'
  }
  return `paynotify generated secrets (stored in ${resolved.file}, shown only now):\n` +
    resolved.generated.map(name => `  ${variableNames[name]}=${resolved.secrets[name]}\n`).join('')
}
