import { execFile } from 'node:child_process'
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
  t.same(config.secrets, { genericSecret: undefined, adminToken: undefined, merchantToken: undefined }, 'no secrets unless given')
  t.equal(config.gateways.stripe.orderIdKey, 'order_id')
  t.ok(Object.isFrozen(config) && Object.isFrozen(config.secrets) && Object.isFrozen(config.gateways), 'frozen')
  t.throws(() => { (config as { port: number }).port = 1 }, TypeError)
})

t.test('every variable is read', async t => {
  const config = loadConfig({
    PAYNOTIFY_HOST: '0.0.0.0',
    PAYNOTIFY_PORT: '8080',
    PAYNOTIFY_DB: '/var/lib/paynotify/db.sqlite',
    PAYNOTIFY_GENERIC_SECRET: 'g'.repeat(16),
    PAYNOTIFY_ADMIN_TOKEN: 'a'.repeat(16),
    PAYNOTIFY_MERCHANT_TOKEN: 'm'.repeat(16),
    PAYNOTIFY_DEFAULT_CURRENCY: 'JPY',
    PAYNOTIFY_BODY_LIMIT: '1024',
    PAYNOTIFY_SYNCHRONOUS: 'NORMAL',
    PAYNOTIFY_BATCH_MAX: '1',
    PAYNOTIFY_LOG_LEVEL: 'silent',
    PAYNOTIFY_STRIPE_WEBHOOK_SECRET: 'whsec_abc',
    PAYNOTIFY_STANDARD_SECRET: 'whsec_def',
    UNRELATED: 'ignored'
  })
  t.match(config, { host: '0.0.0.0', port: 8080, dbPath: '/var/lib/paynotify/db.sqlite', defaultCurrency: 'JPY', bodyLimit: 1024, synchronous: 'NORMAL', batchMaxSize: 1, logLevel: 'silent' })
  t.same(config.secrets, { genericSecret: 'g'.repeat(16), adminToken: 'a'.repeat(16), merchantToken: 'm'.repeat(16) })
  t.equal(config.gateways.stripe.webhookSecret, 'whsec_abc')
  t.equal(config.gateways.standard.secret, 'whsec_def')
  t.equal(loadConfig({ PAYNOTIFY_PORT: '0' }).port, 0, 'port 0 picks a free port')
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
