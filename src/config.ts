import { Type, type Static } from '@sinclair/typebox'
import { envSchema } from 'env-schema'
import { defaultRetrySchedule, parseRetrySchedule } from './outbound/schedule.js'
import { standardSecretProblem, stripeSecretProblem, weakSecretReason } from './secret-strength.js'

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

const EnvSchema = Type.Object({
  PAYNOTIFY_HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  PAYNOTIFY_PORT: Type.Integer({ default: 3000, minimum: 0, maximum: 65535 }),
  PAYNOTIFY_DB: Type.String({ default: './data/paynotify.db', minLength: 1 }),
  PAYNOTIFY_GENERIC_SECRET: Type.Optional(Type.String({ minLength: 16 })),
  PAYNOTIFY_ADMIN_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  PAYNOTIFY_MERCHANT_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  // The Ed25519 seed that signs checkpoints of the log (event-log/checkpoint-signature.ts), 32 bytes base64url.
  PAYNOTIFY_SIGNING_KEY: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' })),
  PAYNOTIFY_DEFAULT_CURRENCY: Type.String({ default: 'CNY', pattern: '^[A-Z]{3}$' }),
  PAYNOTIFY_BODY_LIMIT: Type.Integer({ default: 65536, minimum: 1024, maximum: 10485760 }),
  PAYNOTIFY_SYNCHRONOUS: Type.Union([Type.Literal('FULL'), Type.Literal('NORMAL')], { default: 'FULL' }),
  // For the power-loss test (test/faults/power-loss.test.ts): the writer appends the WAL's synced length here after every sync.
  PAYNOTIFY_WAL_SYNC_LOG: Type.Optional(Type.String({ minLength: 1 })),
  PAYNOTIFY_BATCH_MAX: Type.Integer({ default: 1024, minimum: 1, maximum: 65536 }),
  PAYNOTIFY_WRITER: Type.Union([Type.Literal('thread'), Type.Literal('inline')], { default: 'thread' }),
  PAYNOTIFY_LOG_LEVEL: Type.Union(logLevels.map(level => Type.Literal(level)), { default: 'info' }),
  PAYNOTIFY_BUSY_TIMEOUT_MS: Type.Integer({ default: 5000, minimum: 10, maximum: 60000 }),
  PAYNOTIFY_HEADERS_TIMEOUT_MS: Type.Integer({ default: 10000, minimum: 100, maximum: 120000 }),
  PAYNOTIFY_REQUEST_TIMEOUT_MS: Type.Integer({ default: 15000, minimum: 100, maximum: 300000 }),
  PAYNOTIFY_IDLE_TIMEOUT_MS: Type.Integer({ default: 30000, minimum: 100, maximum: 600000 }),
  PAYNOTIFY_MAX_CONNECTIONS: Type.Integer({ default: 1024, minimum: 1, maximum: 65536 }),
  PAYNOTIFY_ALLOW_BROKEN_CHAIN: Type.Union([Type.Literal('0'), Type.Literal('1'), Type.Literal('false'), Type.Literal('true')], { default: '0' }),
  PAYNOTIFY_ACCEPT_REPLAYS: Type.Union([Type.Literal('0'), Type.Literal('1'), Type.Literal('false'), Type.Literal('true')], { default: '0' }),
  // Outbound delivery to the merchant's endpoints (outbound/).
  PAYNOTIFY_OUTBOUND_ALLOW_PRIVATE: Type.Union([Type.Literal('0'), Type.Literal('1'), Type.Literal('false'), Type.Literal('true')], { default: '0' }),
  PAYNOTIFY_OUTBOUND_RETRY_SCHEDULE: Type.String({ default: defaultRetrySchedule, minLength: 1, maxLength: 400 }),
  PAYNOTIFY_OUTBOUND_CONCURRENCY: Type.Integer({ default: 16, minimum: 1, maximum: 256 }),
  PAYNOTIFY_OUTBOUND_TIMEOUT_MS: Type.Integer({ default: 15000, minimum: 100, maximum: 60000 }),
  PAYNOTIFY_FEED_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  // GET /metrics (metrics.ts): on by default; a token of its own for the scraper (the admin token works too).
  PAYNOTIFY_METRICS: Type.Union([Type.Literal('0'), Type.Literal('1'), Type.Literal('false'), Type.Literal('true')], { default: '1' }),
  PAYNOTIFY_METRICS_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  // The last refused callbacks kept in memory for GET /admin/refusals (http/refusals.ts); 0 keeps none.
  PAYNOTIFY_REFUSALS_MAX: Type.Integer({ default: 500, minimum: 0, maximum: 10000 }),
  // Other gateways: each is enabled only when its keys are set (otherwise /notify/<name> is 404).
  PAYNOTIFY_ALIPAY_PUBLIC_KEY: Type.Optional(Type.String({ minLength: 1 })),
  PAYNOTIFY_ALIPAY_APP_ID: Type.Optional(Type.String({ minLength: 1 })),
  PAYNOTIFY_ALIPAY_SELLER_ID: Type.Optional(Type.String({ minLength: 1 })),
  PAYNOTIFY_WECHATPAY_PLATFORM_KEYS: Type.Optional(Type.String({ minLength: 1 })),
  PAYNOTIFY_WECHATPAY_APIV3_KEY: Type.Optional(Type.String({ minLength: 32, maxLength: 32 })),
  PAYNOTIFY_STRIPE_WEBHOOK_SECRET: Type.Optional(Type.String()),
  PAYNOTIFY_STRIPE_ORDER_ID_KEY: Type.String({ default: 'order_id', minLength: 1 }),
  PAYNOTIFY_STANDARD_SECRET: Type.Optional(Type.String())
})

type Env = Static<typeof EnvSchema>

export interface Config {
  readonly host: string
  readonly port: number
  readonly dbPath: string
  readonly defaultCurrency: string
  readonly bodyLimit: number
  readonly synchronous: 'FULL' | 'NORMAL'
  /** PAYNOTIFY_WAL_SYNC_LOG: where the writer thread records each synced WAL length (the power-loss test). */
  readonly walSyncLog: string | undefined
  readonly batchMaxSize: number
  /** `thread`: appends, projection and commits run on a writer thread; `inline`: on the HTTP thread. */
  readonly writer: 'thread' | 'inline'
  readonly logLevel: typeof logLevels[number]
  /** How long a write waits for another connection's lock before answering 503. */
  readonly busyTimeoutMs: number
  /** Limits that cut off slow or abusive clients (slowloris, idle floods). */
  readonly limits: {
    readonly headersTimeoutMs: number
    readonly requestTimeoutMs: number
    readonly idleTimeoutMs: number
    readonly maxConnections: number
  }
  /** Serve even when the start-time chain check finds a broken log (an operator's explicit choice). */
  readonly allowBrokenChain: boolean
  /** Honour `x-paynotify-replay-of` on callbacks (a service `replay --to` delivers to); otherwise such a callback is refused (403). */
  readonly acceptReplays: boolean
  /** Delivery of order.* messages to the merchant's endpoints, and the pull feed. */
  readonly outbound: {
    /** PAYNOTIFY_OUTBOUND_ALLOW_PRIVATE: http, loopback and private addresses allowed (tests, local development). */
    readonly allowPrivate: boolean
    /** Milliseconds: the first attempt's delay, then the wait before each retry. */
    readonly retrySchedule: readonly number[]
    readonly concurrency: number
    readonly timeoutMs: number
    /** A read-only token for GET /admin/feed (the admin token works too). */
    readonly feedToken?: string | undefined
  }
  /** Prometheus metrics at GET /metrics. */
  readonly metrics: {
    /** PAYNOTIFY_METRICS=0 turns them off: no route, nothing counted (bench/metrics.js compares the two). */
    readonly enabled: boolean
    /** A token that opens GET /metrics and nothing else (the admin token works too). */
    readonly token?: string | undefined
  }
  /** Refused callbacks kept in memory (GET /admin/refusals, the console). */
  readonly refusals: {
    /** PAYNOTIFY_REFUSALS_MAX: most kept (also at most 1 MiB of them); 0 keeps none and serves no route. */
    readonly maxEntries: number
  }
  /** Keys of the other gateways, as given (adapters parse and validate them). */
  readonly gateways: {
    readonly alipay: { readonly publicKey?: string | undefined, readonly appId?: string | undefined, readonly sellerId?: string | undefined }
    readonly wechatpay: { readonly platformKeys?: string | undefined, readonly apiV3Key?: string | undefined }
    readonly stripe: { readonly webhookSecret?: string | undefined, readonly orderIdKey: string }
    readonly standard: { readonly secret?: string | undefined }
  }
  /** Secrets given in the environment; missing ones are generated on first start (secrets.ts). */
  readonly secrets: {
    readonly genericSecret?: string | undefined
    readonly adminToken?: string | undefined
    readonly merchantToken?: string | undefined
    readonly signingKey?: string | undefined
  }
}

/** Raised for an invalid environment: the message names each bad variable. */
export class ConfigError extends Error {}

/**
 * Reads and validates the PAYNOTIFY_* variables once. The only reader of
 * process.env is the caller that passes it in (server.ts, cli/main.ts).
 */
export function loadConfig (env: NodeJS.ProcessEnv): Config {
  const data: Record<string, string> = {}
  // Empty variables count as unset, as in most shells' `VAR= cmd`: so `.env.example`, whose
  // secrets and gateway keys are empty, works as an env file (`node --env-file`, `set -a; . ./.env`).
  for (const [key, value] of Object.entries(env)) if (key.startsWith('PAYNOTIFY_') && value !== undefined && value !== '') data[key] = value
  let parsed: Env
  try {
    // env: false, or env-schema would merge process.env back in, empty values and all.
    parsed = envSchema<Env>({ schema: EnvSchema, data, env: false, dotenv: false })
  } catch (error) {
    throw new ConfigError(`invalid configuration: ${describeEnvErrors(error)}`)
  }
  if (!Intl.supportedValuesOf('currency').includes(parsed.PAYNOTIFY_DEFAULT_CURRENCY)) {
    throw new ConfigError(`invalid configuration: PAYNOTIFY_DEFAULT_CURRENCY ${parsed.PAYNOTIFY_DEFAULT_CURRENCY} is not an ISO 4217 currency`)
  }
  let retrySchedule: number[]
  try {
    retrySchedule = parseRetrySchedule(parsed.PAYNOTIFY_OUTBOUND_RETRY_SCHEDULE)
  } catch (error) {
    throw new ConfigError(`invalid configuration: PAYNOTIFY_OUTBOUND_RETRY_SCHEDULE ${(error as Error).message}`)
  }
  const secretProblems = describeSecretProblems(parsed)
  if (secretProblems.length > 0) throw new ConfigError(`invalid configuration: ${secretProblems.join('; ')}`)
  return Object.freeze({
    host: parsed.PAYNOTIFY_HOST,
    port: parsed.PAYNOTIFY_PORT,
    dbPath: parsed.PAYNOTIFY_DB,
    defaultCurrency: parsed.PAYNOTIFY_DEFAULT_CURRENCY,
    bodyLimit: parsed.PAYNOTIFY_BODY_LIMIT,
    synchronous: parsed.PAYNOTIFY_SYNCHRONOUS,
    walSyncLog: parsed.PAYNOTIFY_WAL_SYNC_LOG,
    batchMaxSize: parsed.PAYNOTIFY_BATCH_MAX,
    writer: parsed.PAYNOTIFY_WRITER,
    logLevel: parsed.PAYNOTIFY_LOG_LEVEL,
    busyTimeoutMs: parsed.PAYNOTIFY_BUSY_TIMEOUT_MS,
    limits: Object.freeze({
      // Node only accepts a headers timeout no longer than the request timeout.
      headersTimeoutMs: Math.min(parsed.PAYNOTIFY_HEADERS_TIMEOUT_MS, parsed.PAYNOTIFY_REQUEST_TIMEOUT_MS),
      requestTimeoutMs: parsed.PAYNOTIFY_REQUEST_TIMEOUT_MS,
      idleTimeoutMs: parsed.PAYNOTIFY_IDLE_TIMEOUT_MS,
      maxConnections: parsed.PAYNOTIFY_MAX_CONNECTIONS
    }),
    allowBrokenChain: parsed.PAYNOTIFY_ALLOW_BROKEN_CHAIN === '1' || parsed.PAYNOTIFY_ALLOW_BROKEN_CHAIN === 'true',
    acceptReplays: parsed.PAYNOTIFY_ACCEPT_REPLAYS === '1' || parsed.PAYNOTIFY_ACCEPT_REPLAYS === 'true',
    outbound: Object.freeze({
      allowPrivate: parsed.PAYNOTIFY_OUTBOUND_ALLOW_PRIVATE === '1' || parsed.PAYNOTIFY_OUTBOUND_ALLOW_PRIVATE === 'true',
      retrySchedule: Object.freeze(retrySchedule),
      concurrency: parsed.PAYNOTIFY_OUTBOUND_CONCURRENCY,
      timeoutMs: parsed.PAYNOTIFY_OUTBOUND_TIMEOUT_MS,
      feedToken: parsed.PAYNOTIFY_FEED_TOKEN
    }),
    metrics: Object.freeze({
      enabled: parsed.PAYNOTIFY_METRICS === '1' || parsed.PAYNOTIFY_METRICS === 'true',
      token: parsed.PAYNOTIFY_METRICS_TOKEN
    }),
    refusals: Object.freeze({ maxEntries: parsed.PAYNOTIFY_REFUSALS_MAX }),
    gateways: Object.freeze({
      alipay: Object.freeze({ publicKey: parsed.PAYNOTIFY_ALIPAY_PUBLIC_KEY, appId: parsed.PAYNOTIFY_ALIPAY_APP_ID, sellerId: parsed.PAYNOTIFY_ALIPAY_SELLER_ID }),
      wechatpay: Object.freeze({ platformKeys: parsed.PAYNOTIFY_WECHATPAY_PLATFORM_KEYS, apiV3Key: parsed.PAYNOTIFY_WECHATPAY_APIV3_KEY }),
      stripe: Object.freeze({ webhookSecret: parsed.PAYNOTIFY_STRIPE_WEBHOOK_SECRET, orderIdKey: parsed.PAYNOTIFY_STRIPE_ORDER_ID_KEY }),
      standard: Object.freeze({ secret: parsed.PAYNOTIFY_STANDARD_SECRET })
    }),
    secrets: Object.freeze({
      genericSecret: parsed.PAYNOTIFY_GENERIC_SECRET,
      adminToken: parsed.PAYNOTIFY_ADMIN_TOKEN,
      merchantToken: parsed.PAYNOTIFY_MERCHANT_TOKEN,
      signingKey: parsed.PAYNOTIFY_SIGNING_KEY
    })
  })
}

/**
 * Secrets that pass the schema's length but that anyone could guess or sign
 * with: a token typed by hand, an empty `whsec_`. Each bad one is named
 * (never its value).
 */
function describeSecretProblems (env: Env): string[] {
  const problems: string[] = []
  for (const name of ['PAYNOTIFY_GENERIC_SECRET', 'PAYNOTIFY_ADMIN_TOKEN', 'PAYNOTIFY_MERCHANT_TOKEN', 'PAYNOTIFY_FEED_TOKEN', 'PAYNOTIFY_METRICS_TOKEN'] as const) {
    const value = env[name]
    const weak = value === undefined ? undefined : weakSecretReason(value)
    if (weak !== undefined) problems.push(`${name} is too easy to guess: it ${weak} (generate one with \`openssl rand -base64 24\`)`)
  }
  const stripe = env.PAYNOTIFY_STRIPE_WEBHOOK_SECRET === undefined ? undefined : stripeSecretProblem(env.PAYNOTIFY_STRIPE_WEBHOOK_SECRET)
  if (stripe !== undefined) problems.push(`PAYNOTIFY_STRIPE_WEBHOOK_SECRET ${stripe}`)
  const standard = env.PAYNOTIFY_STANDARD_SECRET === undefined ? undefined : standardSecretProblem(env.PAYNOTIFY_STANDARD_SECRET)
  if (standard !== undefined) problems.push(`PAYNOTIFY_STANDARD_SECRET ${standard}`)
  return problems
}

interface EnvError { instancePath: string, keyword: string, message?: string, params: Record<string, unknown> }

/**
 * One phrase per bad variable. Ajv reports a union of literals as one error
 * per literal plus an anyOf; those become "must be one of FULL, NORMAL".
 */
function describeEnvErrors (error: unknown): string {
  const errors = (error as { errors?: EnvError[] }).errors
  if (!Array.isArray(errors) || errors.length === 0) return (error as Error).message.replaceAll('env/', '')
  const byVariable = new Map<string, EnvError[]>()
  for (const e of errors) {
    const name = e.instancePath.replace(/^\//, '') || String(e.params.missingProperty ?? 'environment')
    byVariable.set(name, [...(byVariable.get(name) ?? []), e])
  }
  return [...byVariable].map(([name, list]) => {
    const allowed = list.filter(e => e.keyword === 'const').map(e => String(e.params.allowedValue))
    if (allowed.length > 0) return `${name} must be one of ${allowed.join(', ')}`
    return `${name} ${list[0]!.message ?? 'is invalid'}`
  }).join('; ')
}
