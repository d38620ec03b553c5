import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import t from 'tap'
import { createCheckpointSigner, generateSigningKey } from '../../src/event-log/checkpoint-signature.js'
import { secretsFilePath } from '../../src/secrets.js'
import { buildTestApp, tempDir } from '../helpers.js'
import { copyDatabase, isolatedEnv, runCli, seedScenarios } from './toolkit-helpers.js'

// Issue 10 §4: an export carries what is needed to verify it (its signed checkpoints and their
// public key), and verify, import and replay check them, with --public-key to pin the key.

interface Line { position: number, checkpoint?: { publicKey: string, signature: string } }

t.test('an export proves itself to whoever holds the public key', async t => {
  const signingKey = generateSigningKey()
  const { publicKey } = createCheckpointSigner(signingKey)
  const otherKey = createCheckpointSigner(generateSigningKey()).publicKey
  const source = await buildTestApp(t, { store: { signingKey } })
  await seedScenarios(source)
  // The service keeps its key in the secrets file beside the database.
  writeFileSync(secretsFilePath(source.dbPath), JSON.stringify({ signingKey }), { mode: 0o600 })
  const dir = tempDir(t)
  const env = isolatedEnv(t)
  const file = join(dir, 'full.ndjson')
  const orderFile = join(dir, 'S1.ndjson')
  writeFileSync(file, 'an older file, readable by all\n', { mode: 0o644 })
  chmodSync(file, 0o644)
  const [printed, exported, exportedOrder, verifiedDb] = await Promise.all([
    runCli(['public-key', '--db', source.dbPath], env),
    runCli(['export', '--db', source.dbPath, '--out', file], env),
    runCli(['export', '--db', source.dbPath, '--order', 'S1', '--out', orderFile], env),
    runCli(['verify', '--db', source.dbPath], env)
  ])
  t.equal(printed.code, 0, printed.stderr)
  t.equal(printed.stdout, `${publicKey}\n`, 'public-key prints the public half, and nothing else')
  t.notOk(printed.stdout.includes(signingKey))
  t.equal(exported.code, 0, exported.stderr)
  t.equal(exportedOrder.code, 0, exportedOrder.stderr)
  t.equal(statSync(file).mode & 0o777, 0o600, 'the export file is private, even one that existed')
  t.equal(statSync(orderFile).mode & 0o777, 0o600)
  t.equal(verifiedDb.code, 0, verifiedDb.stdout)
  t.match(verifiedDb.stdout, `verify signatures: positions 1-16 covered by 1 checkpoint(s) signed with ${publicKey} (the key in ${secretsFilePath(source.dbPath)})`)

  const lines = readFileSync(file, 'utf8').trimEnd().split('\n').map(text => JSON.parse(text) as Line)
  t.same(lines.filter(line => line.checkpoint !== undefined).map(line => [line.position, line.checkpoint!.publicKey]), [[16, publicKey]], 'the signed tail carries its checkpoint')

  const lastLine = (text: string): string => text.trimEnd().split('\n').at(-1)!
  const forgedSignature = join(dir, 'forged.ndjson')
  const original = readFileSync(file, 'utf8')
  const signature = lines[15]!.checkpoint!.signature
  writeFileSync(forgedSignature, original.replace(signature, signature.slice(0, 10) + (signature[10] === 'A' ? 'B' : 'A') + signature.slice(11)))
  const truncated = join(dir, 'truncated.ndjson')
  writeFileSync(truncated, original.replace(lastLine(original) + '\n', ''))

  const [pinned, wrongKey, unpinned, forged, cut, order, unpinnedOrder, pinnedImport] = await Promise.all([
    runCli(['verify', file, '--public-key', publicKey], env),
    runCli(['verify', file, '--public-key', otherKey], env),
    runCli(['verify', file], env),
    runCli(['verify', forgedSignature], env),
    runCli(['verify', truncated, '--public-key', publicKey], env),
    runCli(['replay', orderFile, '--public-key', publicKey], env),
    runCli(['replay', orderFile], env),
    runCli(['import', file, '--db', join(dir, 'audited.db'), '--public-key', publicKey], env)
  ])
  t.equal(pinned.code, 0, pinned.stdout + pinned.stderr)
  t.match(pinned.stdout, `signatures: 16 of 16 line(s) covered by checkpoints signed with the pinned key ${publicKey}`)
  t.equal(wrongKey.code, 1, 'pinned to another key: refused')
  t.match(wrongKey.stdout, `line 1: position 1 and 15 more line(s) are not covered by a checkpoint signed with ${otherKey}`)
  t.equal(unpinned.code, 0)
  t.match(unpinned.stdout, `signatures: 16 of 16 line(s) covered by checkpoints signed with ${publicKey} (not pinned: pass --public-key to require it)`)
  t.equal(forged.code, 1, 'a signature that does not verify is refused, pinned or not')
  t.match(forged.stdout, `line 16: position 16: its checkpoint signature does not verify with ${publicKey} (forged, or the line was edited)`)
  t.equal(cut.code, 1, 'the last (signed) line cut off: the rest is unproven')
  t.match(cut.stdout, /line 1: position 1 and 14 more line\(s\) are not covered/)
  t.equal(order.code, 1, 'one order\'s lines are not a chain a signature can cover')
  t.match(order.stderr, /not covered by a checkpoint signed with .*nothing was replayed/)
  t.equal(unpinnedOrder.code, 0, unpinnedOrder.stderr)
  t.match(unpinnedOrder.stderr, 'signatures: none of 5 line(s) covered by a signed checkpoint')
  t.equal(pinnedImport.code, 0, pinnedImport.stderr)
  t.match(pinnedImport.stdout, /imported 16 events as recorded/)

  // A database whose key is not at hand: signatures are checked against the key they name, and said to be unpinned.
  const elsewhere = copyDatabase(source, join(tempDir(t), 'copy.db'))
  const [unpinnedDb, otherPinnedDb, noKey, fromEnv] = await Promise.all([
    runCli(['verify', '--db', elsewhere], env),
    runCli(['verify', '--db', elsewhere, '--public-key', otherKey], env),
    runCli(['public-key', '--db', elsewhere], env),
    runCli(['verify', '--db', elsewhere], { ...env, PAYNOTIFY_SIGNING_KEY: signingKey })
  ])
  t.equal(fromEnv.code, 0, fromEnv.stdout)
  t.match(fromEnv.stdout, `verify signatures: positions 1-16 covered by 1 checkpoint(s) signed with ${publicKey} (PAYNOTIFY_SIGNING_KEY)`, 'the key from the environment')
  t.equal(unpinnedDb.code, 0, unpinnedDb.stdout)
  t.match(unpinnedDb.stdout, `verify signatures: positions 1-16 covered by 1 checkpoint(s) signed with ${publicKey}, which nothing pins`)
  t.equal(otherPinnedDb.code, 1)
  t.match(otherPinnedDb.stdout, `positions 1-16 are not covered by a signed checkpoint (signatures removed, or events written without the key); checked against ${otherKey} (--public-key); 1 checkpoint(s) signed with other keys ignored`)
  t.equal(noKey.code, 2)
  t.match(noKey.stderr, `no signing key: set PAYNOTIFY_SIGNING_KEY, or start the service once (it stores one in ${join(dirname(elsewhere), 'paynotify.secrets.json')})`)
})
