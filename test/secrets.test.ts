import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../src/config.js'
import { describeGeneratedSecrets, resolveSecrets, secretsFilePath } from '../src/secrets.js'
import { tempDir } from './helpers.js'

const names = ['genericSecret', 'adminToken', 'merchantToken'] as const

t.test('generated on first start, stored beside the database with mode 0600, reused on the next', async t => {
  const dir = tempDir(t)
  mkdirSync(join(dir, 'data'))
  const config = loadConfig({ PAYNOTIFY_DB: join(dir, 'data', 'paynotify.db') })
  const first = resolveSecrets(config)
  t.equal(first.file, join(dir, 'data', 'paynotify.secrets.json'))
  t.equal(secretsFilePath(config.dbPath), first.file)
  t.same(first.generated, names)
  for (const name of names) t.match(first.secrets[name], /^[A-Za-z0-9_-]{32}$/, `${name} is 24 random bytes`)
  t.equal(new Set(names.map(name => first.secrets[name])).size, 3, 'three different secrets')
  t.equal(statSync(first.file).mode & 0o777, 0o600)
  t.same(JSON.parse(readFileSync(first.file, 'utf8')), first.secrets)

  const second = resolveSecrets(config)
  t.same(second.generated, [], 'nothing generated the second time')
  t.same(second.secrets, first.secrets)
  t.not(resolveSecrets(loadConfig({ PAYNOTIFY_DB: join(tempDir(t), 'other.db') })).secrets.adminToken, first.secrets.adminToken, 'another data directory has its own')
})

t.test('the environment wins over the file, and is not written to it', async t => {
  const dir = tempDir(t)
  const dbPath = join(dir, 'paynotify.db')
  const stored = resolveSecrets(loadConfig({ PAYNOTIFY_DB: dbPath }))
  const fromEnv = resolveSecrets(loadConfig({ PAYNOTIFY_DB: dbPath, PAYNOTIFY_ADMIN_TOKEN: 'admin-from-the-environment' }))
  t.equal(fromEnv.secrets.adminToken, 'admin-from-the-environment')
  t.equal(fromEnv.secrets.genericSecret, stored.secrets.genericSecret)
  t.equal(fromEnv.secrets.merchantToken, stored.secrets.merchantToken)
  t.same(fromEnv.generated, [])
  t.equal(JSON.parse(readFileSync(stored.file, 'utf8')).adminToken, stored.secrets.adminToken, 'the stored one is kept for starts without the variable')

  const envOnly = resolveSecrets(loadConfig({
    PAYNOTIFY_DB: join(tempDir(t), 'env-only.db'),
    PAYNOTIFY_GENERIC_SECRET: 'g'.repeat(16),
    PAYNOTIFY_ADMIN_TOKEN: 'a'.repeat(16),
    PAYNOTIFY_MERCHANT_TOKEN: 'm'.repeat(16)
  }))
  t.same(envOnly.generated, [])
  t.throws(() => readFileSync(envOnly.file), { code: 'ENOENT' }, 'no file when every secret comes from the environment')
})

t.test('only what is missing or unusable is generated', async t => {
  const dir = tempDir(t)
  const config = loadConfig({ PAYNOTIFY_DB: join(dir, 'paynotify.db') })
  const file = secretsFilePath(config.dbPath)
  writeFileSync(file, JSON.stringify({ genericSecret: 'kept-generic-secret-0123', adminToken: 'short' }), { mode: 0o644 })
  const resolved = resolveSecrets(config)
  t.same(resolved.generated, ['adminToken', 'merchantToken'])
  t.equal(resolved.secrets.genericSecret, 'kept-generic-secret-0123')
  t.not(resolved.secrets.adminToken, 'short')
  t.equal(statSync(file).mode & 0o777, 0o600, 'a rewritten file is made private')
  t.same(resolveSecrets(config).secrets, resolved.secrets)
})

t.test('an unreadable secrets file stops the start', async t => {
  const dir = tempDir(t)
  const config = loadConfig({ PAYNOTIFY_DB: join(dir, 'paynotify.db') })
  writeFileSync(secretsFilePath(config.dbPath), '{ not json')
  t.throws(() => resolveSecrets(config), { message: /^cannot read .*paynotify\.secrets\.json/ })
  for (const content of ['null', '[]', '"secret"']) {
    writeFileSync(secretsFilePath(config.dbPath), content)
    t.throws(() => resolveSecrets(config), { message: /^cannot read .*: not a JSON object$/ }, content)
  }
  if (process.getuid?.() !== 0) {
    writeFileSync(secretsFilePath(config.dbPath), '{}')
    chmodSync(secretsFilePath(config.dbPath), 0o000)
    t.throws(() => resolveSecrets(config), { message: /^cannot read / }, 'a file the service may not read')
  }
})

t.test('generated secrets are shown only on a terminal; otherwise only where they are kept', async t => {
  const dir = tempDir(t)
  const env = { PAYNOTIFY_DB: join(dir, 'paynotify.db'), PAYNOTIFY_ADMIN_TOKEN: 'a-token-from-the-environment' }
  const resolved = resolveSecrets(loadConfig(env))
  t.same(resolved.generated, ['genericSecret', 'merchantToken'])
  const shown = describeGeneratedSecrets(resolved, true)
  t.equal(shown, `paynotify generated secrets (stored in ${resolved.file}, shown only now):\n` +
    `  PAYNOTIFY_GENERIC_SECRET=${resolved.secrets.genericSecret}\n  PAYNOTIFY_MERCHANT_TOKEN=${resolved.secrets.merchantToken}\n`)
  const piped = describeGeneratedSecrets(resolved, false)
  t.equal(piped, `paynotify generated PAYNOTIFY_GENERIC_SECRET, PAYNOTIFY_MERCHANT_TOKEN and stored them in ${resolved.file} (mode 0600); ` +
    'their values are not printed because this output is not a terminal\n')
  for (const name of names) t.notMatch(piped, resolved.secrets[name], `${name} is not in the piped line`)
  t.equal(describeGeneratedSecrets(resolveSecrets(loadConfig(env)), true), '', 'nothing to say when nothing was generated')
})
