import { randomBytes } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import type { Config } from './config.js'

export interface Secrets {
  readonly genericSecret: string
  readonly adminToken: string
  readonly merchantToken: string
}

export interface ResolvedSecrets {
  secrets: Secrets
  /** Names generated on this start (print them once). */
  generated: Array<keyof Secrets>
  /** Where generated secrets are kept. */
  file: string
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
 * Secrets from the environment win; missing ones come from the secrets file
 * beside the database, and are generated and stored there (mode 0600) the
 * first time. So `npm start` works on a fresh machine and still never
 * accepts unsigned callbacks or opens the admin API.
 */
export function resolveSecrets (config: Config): ResolvedSecrets {
  const file = secretsFilePath(config.dbPath)
  let stored: Partial<Record<keyof Secrets, string>> = {}
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'))
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object')
    stored = parsed as typeof stored
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read ${file}: ${(error as Error).message}`)
  }
  const generated: Array<keyof Secrets> = []
  const pick = (name: keyof Secrets, fromEnv: string | undefined): string => {
    if (fromEnv !== undefined) return fromEnv
    const existing = stored[name]
    if (typeof existing === 'string' && existing.length >= 16) return existing
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
  if (generated.length > 0) {
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, JSON.stringify(stored, null, 2) + '\n', { mode: 0o600 })
    chmodSync(file, 0o600)
  }
  return { secrets, generated, file }
}
