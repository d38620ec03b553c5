import { randomBytes } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../src/config.js'
import { createCheckpointSigner } from '../src/event-log/checkpoint-signature.js'
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
  t.ok(first.signingKeyGenerated, 'a checkpoint signing key too')
  t.notOk((first.generated as string[]).includes('signingKey'), 'which is not among the secrets printed once')
  t.same(JSON.parse(readFileSync(first.file, 'utf8')), { ...first.secrets, signingKey: first.signingKey })

  const second = resolveSecrets(config)
  t.same(second.generated, [], 'nothing generated the second time')
  t.same(second.secrets, first.secrets)
  t.equal(second.signingKey, first.signingKey)
  t.notOk(second.signingKeyGenerated)
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

  const signingKey = randomBytes(32).toString('base64url')
  const envOnly = resolveSecrets(loadConfig({
    PAYNOTIFY_DB: join(tempDir(t), 'env-only.db'),
    PAYNOTIFY_GENERIC_SECRET: 'generic-0123456789-secret',
    PAYNOTIFY_ADMIN_TOKEN: 'admin-0123456789-token',
    PAYNOTIFY_MERCHANT_TOKEN: 'merchant-0123456789-token',
    PAYNOTIFY_SIGNING_KEY: signingKey
  }))
  t.same(envOnly.generated, [])
  t.equal(envOnly.signingKey, signingKey)
  t.notOk(envOnly.signingKeyGenerated)
  t.throws(() => readFileSync(envOnly.file), { code: 'ENOENT' }, 'no file when every secret comes from the environment')
})

t.test('only what is missing is generated; a stored value that is present but unusable stops the start', async t => {
  const dir = tempDir(t)
  const config = loadConfig({ PAYNOTIFY_DB: join(dir, 'paynotify.db') })
  const file = secretsFilePath(config.dbPath)
  writeFileSync(file, JSON.stringify({ genericSecret: 'kept-generic-secret-0123' }), { mode: 0o600 })
  const resolved = resolveSecrets(config)
  t.same(resolved.generated, ['adminToken', 'merchantToken'])
  t.equal(resolved.secrets.genericSecret, 'kept-generic-secret-0123')
  t.equal(statSync(file).mode & 0o777, 0o600, 'the rewritten file stays private')
  t.same(resolveSecrets(config).secrets, resolved.secrets)

  // Issue 10 §5: a hand-made token of low entropy was used as it stood (a short one was silently replaced).
  const stored = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
  const cases: Array<[string, unknown, RegExp]> = [
    ['adminToken', 'aaaaaaaaaaaaaaaa', /adminToken is too easy to guess: it uses only 1 different character/],
    ['merchantToken', 'passwordpassword', /merchantToken is too easy to guess: it repeats the same 8 characters/],
    ['genericSecret', 'short', /genericSecret is shorter than 16 characters/],
    ['adminToken', 12345, /adminToken is not a string/],
    ['signingKey', 'not-a-key', /signingKey is not a signing key/]
  ]
  for (const [name, value, message] of cases) {
    writeFileSync(file, JSON.stringify({ ...stored, [name]: value }), { mode: 0o600 })
    t.throws(() => resolveSecrets(config), { message }, `${name}: ${String(value)}`)
    t.equal(JSON.parse(readFileSync(file, 'utf8'))[name], value, 'and the file is left as it was')
  }
})

// Issue 10 §5: a secrets file readable by every user of the machine was used without a word.
t.test('a secrets file other users may read or write is refused', async t => {
  const dir = tempDir(t)
  const config = loadConfig({ PAYNOTIFY_DB: join(dir, 'paynotify.db') })
  const file = resolveSecrets(config).file
  for (const mode of [0o644, 0o640, 0o604, 0o620, 0o660]) {
    chmodSync(file, mode)
    t.throws(() => resolveSecrets(config), { message: new RegExp(`may be read or written by other users \\(mode 0${mode.toString(8)}\\): run \`chmod 600 .*paynotify\\.secrets\\.json\`, and replace the secrets`) }, mode.toString(8))
  }
  chmodSync(file, 0o400)
  t.doesNotThrow(() => resolveSecrets(config), 'read-only for its owner is fine')
})

t.test('the signing key: the environment wins, and it signs what its public key checks', async t => {
  const dir = tempDir(t)
  const signingKey = randomBytes(32).toString('base64url')
  const fromFile = resolveSecrets(loadConfig({ PAYNOTIFY_DB: join(dir, 'paynotify.db') }))
  const fromEnv = resolveSecrets(loadConfig({ PAYNOTIFY_DB: join(dir, 'paynotify.db'), PAYNOTIFY_SIGNING_KEY: signingKey }))
  t.equal(fromEnv.signingKey, signingKey)
  t.not(fromFile.signingKey, signingKey)
  t.equal(JSON.parse(readFileSync(fromFile.file, 'utf8')).signingKey, fromFile.signingKey, 'the stored one stays for starts without the variable')
  const signer = createCheckpointSigner(fromFile.signingKey)
  t.match(signer.publicKey, /^ed25519:[A-Za-z0-9_-]{43}$/)
  t.not(createCheckpointSigner(signingKey).publicKey, signer.publicKey)
})

t.test('an unreadable secrets file stops the start', async t => {
  const dir = tempDir(t)
  const config = loadConfig({ PAYNOTIFY_DB: join(dir, 'paynotify.db') })
  writeFileSync(secretsFilePath(config.dbPath), '{ not json', { mode: 0o600 })
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
