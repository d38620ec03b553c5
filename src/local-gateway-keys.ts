import { generateKeyPairSync, randomBytes, randomInt } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { localGatewayEnvPath, localGatewayKeysPath } from './secrets.js'

/**
 * A local test identity for every gateway besides generic (whose secret is in
 * the secrets file already): what `paynotify keys` creates, `npm start` is
 * configured with, and `replay --to` and `simulate` sign with. Each stands in
 * for the gateway's side of the keys, so it is never a production key.
 */
const fields = {
  // An RSA key pair standing in for Alipay's own, and the application it notifies.
  alipay: ['appId', 'sellerId', 'privateKey', 'publicKey'],
  // An RSA key pair standing in for WeChat Pay's platform key, its serial, and the merchant's APIv3 key.
  wechatpay: ['serial', 'privateKey', 'publicKey', 'apiV3Key'],
  stripe: ['webhookSecret'],
  standard: ['secret']
} as const

export type LocalGateway = keyof typeof fields
export type LocalGatewayKeys = { readonly [G in LocalGateway]: Readonly<Record<typeof fields[G][number], string>> }

export const localGateways = Object.keys(fields) as LocalGateway[]

/** Asks the service to take x-paynotify-replay-of as given (a developer's machine replaying an export). */
const acceptReplays = ['PAYNOTIFY_ACCEPT_REPLAYS', '1'] as const

function rsaPair (): { privateKey: string, publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  return {
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString()
  }
}

const digits = (n: number): string => Array.from({ length: n }, () => randomInt(10)).join('')

const generators: { [G in LocalGateway]: () => LocalGatewayKeys[G] } = {
  // 16-digit application ids; seller ids (PIDs) start with 2088, as Alipay's do.
  alipay: () => ({ appId: `9021${digits(12)}`, sellerId: `2088${digits(12)}`, ...rsaPair() }),
  // The serial has the form of a WeChat Pay public key id; the APIv3 key is 32 ASCII characters.
  wechatpay: () => ({ serial: `PUB_KEY_ID_${digits(29)}`, ...rsaPair(), apiV3Key: randomBytes(24).toString('base64url') }),
  stripe: () => ({ webhookSecret: `whsec_${randomBytes(32).toString('hex')}` }),
  // Standard Webhooks: whsec_ and the base64 of at least 24 random bytes.
  standard: () => ({ secret: `whsec_${randomBytes(32).toString('base64')}` })
}

function validSection<G extends LocalGateway> (gateway: G, value: unknown): value is LocalGatewayKeys[G] {
  if (value === null || typeof value !== 'object') return false
  return fields[gateway].every(name => typeof (value as Record<string, unknown>)[name] === 'string' && (value as Record<string, string>)[name] !== '')
}

/**
 * The stored identities beside `dbPath`, never generating any: a gateway
 * missing from the file (or incomplete in it) is absent.
 */
export function readLocalGatewayKeys (dbPath: string): Partial<LocalGatewayKeys> {
  const file = localGatewayKeysPath(dbPath)
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw new Error(`cannot read ${file}: ${(error as Error).message}`)
  }
  const keys: Partial<Record<LocalGateway, unknown>> = {}
  if (parsed !== null && typeof parsed === 'object') {
    for (const gateway of localGateways) {
      const section = (parsed as Record<string, unknown>)[gateway]
      if (validSection(gateway, section)) keys[gateway] = section
    }
  }
  return keys as Partial<LocalGatewayKeys>
}

export interface EnsuredKeys {
  keys: LocalGatewayKeys
  /** Gateways whose identity was created now. */
  created: LocalGateway[]
  /** The identities (JSON) and their PAYNOTIFY_* variables (a shell file), both 0600. */
  file: string
  envFile: string
}

/**
 * Keeps the stored identities and creates the missing ones; writes them and
 * the variables that configure the service with them beside `dbPath`, mode
 * 0600, as resolveSecrets keeps the service's own secrets.
 */
export function ensureLocalGatewayKeys (dbPath: string): EnsuredKeys {
  const stored = readLocalGatewayKeys(dbPath)
  const created = localGateways.filter(gateway => stored[gateway] === undefined)
  const keys = Object.fromEntries(localGateways.map(gateway => [gateway, stored[gateway] ?? generators[gateway]()])) as unknown as LocalGatewayKeys
  const file = localGatewayKeysPath(dbPath)
  const envFile = localGatewayEnvPath(dbPath)
  if (created.length > 0) writePrivate(file, JSON.stringify(keys, null, 2) + '\n')
  writePrivate(envFile, shellExports(localGatewayEnv(keys)))
  return { keys, created, file, envFile }
}

function writePrivate (file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, text, { mode: 0o600 })
  // The mode given to writeFileSync applies only when the file is created.
  chmodSync(file, 0o600)
}

/** A PEM on one line, its line breaks as literal `\n` (config reads them back as line breaks). */
const oneLine = (pem: string): string => pem.trim().replaceAll('\n', '\\n')

/** The PAYNOTIFY_* variables that enable every gateway with these identities, and accept replays. */
export function localGatewayEnv (keys: LocalGatewayKeys): Array<readonly [string, string]> {
  return [
    ['PAYNOTIFY_ALIPAY_PUBLIC_KEY', oneLine(keys.alipay.publicKey)],
    ['PAYNOTIFY_ALIPAY_APP_ID', keys.alipay.appId],
    ['PAYNOTIFY_ALIPAY_SELLER_ID', keys.alipay.sellerId],
    ['PAYNOTIFY_WECHATPAY_PLATFORM_KEYS', JSON.stringify({ [keys.wechatpay.serial]: keys.wechatpay.publicKey })],
    ['PAYNOTIFY_WECHATPAY_APIV3_KEY', keys.wechatpay.apiV3Key],
    ['PAYNOTIFY_STRIPE_WEBHOOK_SECRET', keys.stripe.webhookSecret],
    ['PAYNOTIFY_STANDARD_SECRET', keys.standard.secret],
    acceptReplays
  ]
}

/** `export NAME='value'` lines a POSIX shell can source (a `'` inside a value is closed, escaped and reopened). */
export function shellExports (variables: ReadonlyArray<readonly [string, string]>): string {
  return variables.map(([name, value]) => `export ${name}='${value.replaceAll("'", "'\\''")}'\n`).join('')
}

/**
 * The keys `replay --to` and `simulate` sign with: the stored identities,
 * except that a Stripe or Standard Webhooks secret set in the environment
 * wins (the service verifies with that one, e.g. a `whsec_` from
 * `stripe listen`). Alipay and WeChat Pay need private keys, which only the
 * stored identities hold.
 */
export function signingKeys (dbPath: string, gateways: { stripe: { webhookSecret?: string | undefined }, standard: { secret?: string | undefined } }): Partial<LocalGatewayKeys> {
  const keys: Partial<Record<LocalGateway, unknown>> = { ...readLocalGatewayKeys(dbPath) }
  if (gateways.stripe.webhookSecret !== undefined) keys.stripe = { webhookSecret: gateways.stripe.webhookSecret }
  if (gateways.standard.secret !== undefined) keys.standard = { secret: gateways.standard.secret }
  return keys as Partial<LocalGatewayKeys>
}
