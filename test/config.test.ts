import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { ConfigError, loadConfig } from '../src/config.js'
import { tempDir } from './helpers.js'

const repoRoot = fileURLToPath(new URL('..', import.meta.url))
const cli = join(repoRoot, 'dist', 'cli', 'main.js')
const envExample = join(repoRoot, '.env.example')

/** Runs a command with only PATH in its environment (tap's own variables and loaders left out). */
async function run (file: string, args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  return await new Promise(resolve => {
    execFile(file, args, { env: { PATH: process.env.PATH ?? '' }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr })
    })
  })
}

t.test('defaults', async t => {
  const config = loadConfig({})
  t.match(config, {
    host: '127.0.0.1',
    port: 3000,
    dbPath: './data/paynotify.db',
    defaultCurrency: 'CNY',
    bodyLimit: 65536,
    synchronous: 'FULL',
    batchMaxSize: 1024,
    logLevel: 'info'
  })
  t.same(config.secrets, { genericSecret: undefined, adminToken: undefined, merchantToken: undefined, signingKey: undefined }, 'no secrets unless given')
  t.equal(config.gateways.stripe.orderIdKey, 'order_id')
  t.same(config.metrics, { enabled: true, token: undefined }, 'GET /metrics on, for the admin token only')
  t.ok(Object.isFrozen(config) && Object.isFrozen(config.secrets) && Object.isFrozen(config.gateways), 'frozen')
  t.throws(() => { (config as { port: number }).port = 1 }, TypeError)
})

const stripeSecret = `whsec_${randomBytes(24).toString('base64')}`
const standardSecret = `whsec_${randomBytes(32).toString('base64')}`
const signingKey = randomBytes(32).toString('base64url')

t.test('every variable is read', async t => {
  const config = loadConfig({
    PAYNOTIFY_HOST: '0.0.0.0',
    PAYNOTIFY_PORT: '8080',
    PAYNOTIFY_DB: '/var/lib/paynotify/db.sqlite',
    PAYNOTIFY_GENERIC_SECRET: 'generic-0123456789-secret',
    PAYNOTIFY_ADMIN_TOKEN: 'admin-0123456789-token',
    PAYNOTIFY_MERCHANT_TOKEN: 'merchant-0123456789-token',
    PAYNOTIFY_SIGNING_KEY: signingKey,
    PAYNOTIFY_DEFAULT_CURRENCY: 'JPY',
    PAYNOTIFY_BODY_LIMIT: '1024',
    PAYNOTIFY_SYNCHRONOUS: 'NORMAL',
    PAYNOTIFY_BATCH_MAX: '1',
    PAYNOTIFY_LOG_LEVEL: 'silent',
    PAYNOTIFY_STRIPE_WEBHOOK_SECRET: stripeSecret,
    PAYNOTIFY_STANDARD_SECRET: standardSecret,
    UNRELATED: 'ignored'
  })
  t.match(config, { host: '0.0.0.0', port: 8080, dbPath: '/var/lib/paynotify/db.sqlite', defaultCurrency: 'JPY', bodyLimit: 1024, synchronous: 'NORMAL', batchMaxSize: 1, logLevel: 'silent' })
  t.same(config.secrets, { genericSecret: 'generic-0123456789-secret', adminToken: 'admin-0123456789-token', merchantToken: 'merchant-0123456789-token', signingKey })
  t.equal(config.gateways.stripe.webhookSecret, stripeSecret)
  t.equal(config.gateways.standard.secret, standardSecret)
  t.equal(loadConfig({ PAYNOTIFY_PORT: '0' }).port, 0, 'port 0 picks a free port')
  const metricsToken = randomBytes(24).toString('base64url')
  t.same(loadConfig({ PAYNOTIFY_METRICS: '0', PAYNOTIFY_METRICS_TOKEN: metricsToken }).metrics, { enabled: false, token: metricsToken })
  t.equal(loadConfig({ PAYNOTIFY_METRICS: 'false' }).metrics.enabled, false)
  t.equal(loadConfig({ PAYNOTIFY_METRICS: 'true' }).metrics.enabled, true)
  t.throws(() => loadConfig({ PAYNOTIFY_METRICS: 'off' }), /PAYNOTIFY_METRICS must be one of 0, 1, false, true/)
})

t.test('an empty variable counts as unset', async t => {
  const config = loadConfig({ PAYNOTIFY_PORT: '', PAYNOTIFY_GENERIC_SECRET: '', PAYNOTIFY_DEFAULT_CURRENCY: '' })
  t.equal(config.port, 3000)
  t.equal(config.secrets.genericSecret, undefined)
  t.equal(config.defaultCurrency, 'CNY')
})

t.test('only the environment passed in is read, not the process environment', async t => {
  const saved = { ...process.env }
  t.teardown(() => {
    for (const key of Object.keys(process.env)) if (!(key in saved)) Reflect.deleteProperty(process.env, key)
    Object.assign(process.env, saved)
  })
  process.env.PAYNOTIFY_PORT = '4321'
  process.env.PAYNOTIFY_GENERIC_SECRET = ''
  process.env.PAYNOTIFY_STRIPE_WEBHOOK_SECRET = ''
  const config = loadConfig({ PAYNOTIFY_HOST: '::1' })
  t.equal(config.port, 3000, 'PAYNOTIFY_PORT of the process is not read')
  t.equal(config.host, '::1')
  t.equal(config.secrets.genericSecret, undefined)
  t.equal(config.gateways.stripe.webhookSecret, undefined)
})

t.test('.env.example works as an env file, loaded by node or by a shell', async t => {
  const dir = tempDir(t)
  const byNode = await run(process.execPath, [`--env-file=${envExample}`, cli, 'migrate', '--db', join(dir, 'node.db')])
  t.equal(byNode.code, 0, `node --env-file=.env.example: ${byNode.stderr}`)
  t.match(byNode.stdout, /^migrated .*node\.db$/m)
  const script = 'set -a; . "$1"; set +a; exec "$2" "$3" migrate --db "$4"'
  const byShell = await run('sh', ['-c', script, 'sh', envExample, process.execPath, cli, join(dir, 'shell.db')])
  t.equal(byShell.code, 0, `set -a; . ./.env.example: ${byShell.stderr}`)
  t.match(byShell.stdout, /^migrated .*shell\.db$/m)
})

t.test('every invalid value stops with a message naming the variable', async t => {
  const cases: Array<[string, string, RegExp?]> = [
    ['PAYNOTIFY_PORT', 'abc', /integer/],
    ['PAYNOTIFY_PORT', '1.5'],
    ['PAYNOTIFY_PORT', '-1'],
    ['PAYNOTIFY_PORT', '65536', /65535/],
    ['PAYNOTIFY_GENERIC_SECRET', 'short', /16/],
    ['PAYNOTIFY_ADMIN_TOKEN', 'short', /16/],
    ['PAYNOTIFY_MERCHANT_TOKEN', 'short', /16/],
    ['PAYNOTIFY_DEFAULT_CURRENCY', 'cny'],
    ['PAYNOTIFY_DEFAULT_CURRENCY', 'EURO'],
    ['PAYNOTIFY_DEFAULT_CURRENCY', 'XYZ', /ISO 4217/],
    ['PAYNOTIFY_BODY_LIMIT', '10', /1024/],
    ['PAYNOTIFY_BODY_LIMIT', '99999999999'],
    ['PAYNOTIFY_BODY_LIMIT', '64k'],
    ['PAYNOTIFY_SYNCHRONOUS', 'OFF', /FULL, NORMAL/],
    ['PAYNOTIFY_SYNCHRONOUS', 'full', /FULL, NORMAL/],
    ['PAYNOTIFY_BATCH_MAX', '0'],
    ['PAYNOTIFY_LOG_LEVEL', 'loud', /fatal, error, warn, info, debug, trace, silent/],
    ['PAYNOTIFY_STRIPE_WEBHOOK_SECRET', 'sk_live_x', /whsec_/],
    ['PAYNOTIFY_STANDARD_SECRET', 'plain'],
    ['PAYNOTIFY_WECHATPAY_APIV3_KEY', 'too-short']
  ]
  for (const [name, value, detail] of cases) {
    let error: unknown
    try {
      loadConfig({ [name]: value })
    } catch (e) {
      error = e
    }
    t.type(error, ConfigError, `${name}=${value} is refused`)
    const message = (error as Error | undefined)?.message ?? ''
    t.match(message, new RegExp(`^invalid configuration: ${name} `), `${name}=${value}: ${message}`)
    if (detail !== undefined) t.match(message, detail, `${name}=${value} says what is allowed`)
    t.notMatch(message, /env\//, 'no schema paths in the message')
  }
})

t.test('several invalid values are all named', async t => {
  t.throws(() => loadConfig({ PAYNOTIFY_PORT: 'x', PAYNOTIFY_SYNCHRONOUS: 'OFF' }), { message: /PAYNOTIFY_PORT.*PAYNOTIFY_SYNCHRONOUS|PAYNOTIFY_SYNCHRONOUS.*PAYNOTIFY_PORT/ })
})

// Issue 10 §5: PAYNOTIFY_STRIPE_WEBHOOK_SECRET=whsec_ enabled Stripe with an empty HMAC key (anyone could sign), and a
// token of one repeated letter was accepted for the admin API.
t.test('secrets anyone could guess or sign with stop the start, named but never echoed', async t => {
  const refused: Array<[string, string, RegExp]> = [
    ['PAYNOTIFY_STRIPE_WEBHOOK_SECRET', 'whsec_', /whsec_ followed by at least 24 characters/],
    ['PAYNOTIFY_STRIPE_WEBHOOK_SECRET', 'whsec_abc', /whsec_ followed by at least 24 characters/],
    ['PAYNOTIFY_STRIPE_WEBHOOK_SECRET', 'whsec_test_0123456789abcdef', /whsec_ followed by at least 24 characters/],
    ['PAYNOTIFY_STRIPE_WEBHOOK_SECRET', 'sk_live_' + randomBytes(24).toString('hex'), /whsec_/],
    ['PAYNOTIFY_STRIPE_WEBHOOK_SECRET', 'whsec_' + 'a'.repeat(32), /not a real signing secret: its key uses only 1 different character/],
    ['PAYNOTIFY_STRIPE_WEBHOOK_SECRET', 'whsec_ ' + randomBytes(24).toString('hex'), /whsec_ followed by/],
    ['PAYNOTIFY_STANDARD_SECRET', 'whsec_', /base64 of a 24- to 64-byte key/],
    ['PAYNOTIFY_STANDARD_SECRET', 'whsec_' + randomBytes(16).toString('base64'), /this one is 16 bytes/],
    ['PAYNOTIFY_STANDARD_SECRET', 'whsec_' + randomBytes(65).toString('base64'), /this one is 65 bytes/],
    ['PAYNOTIFY_STANDARD_SECRET', 'whsec_not base64!', /base64/],
    ['PAYNOTIFY_STANDARD_SECRET', 'whsec_' + Buffer.alloc(32).toString('base64'), /not a real secret: its key uses only/],
    ['PAYNOTIFY_GENERIC_SECRET', 'aaaaaaaaaaaaaaaa', /too easy to guess: it uses only 1 different character/],
    ['PAYNOTIFY_ADMIN_TOKEN', 'aaaaaaaaaaaaaaaa', /too easy to guess/],
    ['PAYNOTIFY_MERCHANT_TOKEN', 'aaaaaaaaaaaaaaaa', /too easy to guess/],
    ['PAYNOTIFY_METRICS_TOKEN', 'metricsmetricsme', /too easy to guess/],
    ['PAYNOTIFY_METRICS_TOKEN', 'short', /must NOT have fewer than 16 characters/],
    ['PAYNOTIFY_ADMIN_TOKEN', 'abababababababab', /uses only 2 different characters/],
    ['PAYNOTIFY_ADMIN_TOKEN', 'passwordpassword', /repeats the same 8 characters/],
    ['PAYNOTIFY_MERCHANT_TOKEN', '0123456789abcdef', /is a sequence/],
    ['PAYNOTIFY_GENERIC_SECRET', 'zyxwvutsrqponmlkjihg', /is a sequence/],
    ['PAYNOTIFY_SIGNING_KEY', 'not-a-key', /PAYNOTIFY_SIGNING_KEY must match pattern/]
  ]
  for (const [name, value, detail] of refused) {
    let error: unknown
    try {
      loadConfig({ [name]: value })
    } catch (e) {
      error = e
    }
    t.type(error, ConfigError, `${name}=${value} is refused`)
    const message = (error as Error | undefined)?.message ?? ''
    t.match(message, new RegExp(`^invalid configuration: ${name} `), `${name}: ${message}`)
    t.match(message, detail, `${name}=${value} says why`)
    if (value.length > 8 && name !== 'PAYNOTIFY_SIGNING_KEY') t.notOk(message.includes(value.slice(6)), 'the value itself is not echoed')
  }
  // What real secrets look like passes: Stripe's Dashboard (32 characters), `stripe listen` (64 hex), Standard Webhooks (24-64 bytes), generated tokens.
  const accepted: Array<[string, string]> = [
    ['PAYNOTIFY_STRIPE_WEBHOOK_SECRET', `whsec_${randomBytes(24).toString('base64url')}`],
    ['PAYNOTIFY_STRIPE_WEBHOOK_SECRET', `whsec_${randomBytes(32).toString('hex')}`],
    ['PAYNOTIFY_STANDARD_SECRET', `whsec_${randomBytes(24).toString('base64')}`],
    ['PAYNOTIFY_STANDARD_SECRET', `whsec_${randomBytes(64).toString('base64')}`],
    ['PAYNOTIFY_ADMIN_TOKEN', randomBytes(24).toString('base64url')],
    ['PAYNOTIFY_MERCHANT_TOKEN', randomBytes(16).toString('hex')],
    ['PAYNOTIFY_SIGNING_KEY', randomBytes(32).toString('base64url')]
  ]
  for (const [name, value] of accepted) t.doesNotThrow(() => loadConfig({ [name]: value }), `${name} of the real shape`)
})
