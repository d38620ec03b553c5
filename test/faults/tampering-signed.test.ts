import { join } from 'node:path'
import type SQLite from 'better-sqlite3'
import t from 'tap'
import { tempDir } from '../helpers.js'
import { runCli } from '../cli/toolkit-helpers.js'
import { startRefused, startService } from '../service-process.js'
import { genericDelivery, isAck, postDelivery, serverEnv } from './helpers.js'
import { rewriteHistory, row, tamperedCopy } from './tampering-helpers.js'

// Issue 5 §7, signed checkpoints: a rewrite that recomputes every hash fools the chain alone, never the signatures.
// A file of its own: it starts the service and runs the CLI a dozen times, which takes minutes on a loaded machine.

t.test('a history rewritten with every hash recomputed: the start refuses it, verify and a pinned replay find it', async t => {
  const dir = tempDir(t)
  const dbPath = join(dir, 'signed.db')
  // Both writer modes sign what they commit: the first run inline, the second on the writer thread.
  let publicKey = ''
  for (const [run, writer] of ['inline', 'thread'].entries()) {
    const server = await startService(t, serverEnv(dbPath, { PAYNOTIFY_LOG_LEVEL: 'info', PAYNOTIFY_WRITER: writer }))
    for (let i = 0; i < 3; i++) {
      t.ok(isAck(await postDelivery(server.url, genericDelivery({ order_id: `signed-${run}-${i}`, amount: '10.00', status: '1', notify_id: `sg-${run}-${i}` }))))
    }
    publicKey = /"publicKey":"(ed25519:[A-Za-z0-9_-]{43})"/.exec(server.output())?.[1] ?? ''
    t.same(await server.stop(), { code: 0, signal: null })
  }
  const env = serverEnv(dbPath)
  const printed = await runCli(['public-key', '--db', dbPath], env)
  t.equal(printed.stdout.trim(), publicKey, '`paynotify public-key` prints the key the service logs at start')
  const intact = await runCli(['verify', '--db', dbPath], env)
  t.equal(intact.code, 0, intact.stdout + intact.stderr)
  t.match(intact.stdout, `verify signatures: positions 1-6 covered by 1 checkpoint(s) signed with ${publicKey} (the key in ${join(dir, 'paynotify.secrets.json')})`,
    'both writer modes signed: the latest checkpoint covers all six events')
  const file = join(dir, 'intact.ndjson')
  t.equal((await runCli(['export', '--db', dbPath, '--out', file], env)).code, 0)
  const pinned = await runCli(['replay', file, '--public-key', publicKey], env)
  t.equal(pinned.code, 0, pinned.stderr)
  t.match(pinned.stderr, `signatures: 6 of 6 line(s) covered by checkpoints signed with the pinned key ${publicKey}`)

  const attacks: Array<[string, (db: SQLite.Database) => void, RegExp, RegExp]> = [
    ['its signature left in place', () => {},
      /event log chain is broken: position 6 does not hold the hash that was signed there: history up to it was rewritten/,
      /^position 6 does not hold the hash that was signed there/m],
    ['its signatures deleted', db => { db.exec('DELETE FROM signed_checkpoints') },
      /event log chain is broken: positions 1-6 are not covered by a signed checkpoint/,
      /^positions 1-6 are not covered by a signed checkpoint \(signatures removed, or events written without the key\); checked against ed25519:/m]
  ]
  for (const [i, [name, alsoDo, refusal, finding]] of attacks.entries()) {
    // A copy in the same directory: the same secrets file, which the attacker cannot write.
    const copy = tamperedCopy(dbPath, join(dir, `attack-${i}.db`), db => {
      const before = row(db, 2).data
      rewriteHistory(db, 2, data => data.replace('"amount":1000', '"amount":100000'))
      if (row(db, 2).data === before) throw new Error('the edit changed nothing')
      alsoDo(db)
    })
    const copyEnv = serverEnv(copy)
    // The attacker rebuilds the order projection too, so it agrees with the rewritten log.
    const rebuilt = await runCli(['rebuild', '--db', copy], copyEnv)
    t.equal(rebuilt.code, 0, rebuilt.stderr)
    const [served, verified, exported] = await Promise.all([
      startRefused(t, copyEnv),
      runCli(['verify', '--db', copy], copyEnv),
      runCli(['export', '--db', copy, '--out', join(dir, `attack-${i}.ndjson`)], copyEnv)
    ])
    t.same(served.exit, { code: 1, signal: null }, `${name}: the service refuses to start`)
    t.match(served.stderr, refusal, name)
    t.equal(verified.code, 1, `${name}: verify exits 1`)
    t.match(verified.stdout, /verify chain: 6 events, intact/, `${name}: the chain alone is fooled`)
    t.match(verified.stdout, finding, name)
    t.equal(exported.code, 0)
    const replayed = await runCli(['replay', join(dir, `attack-${i}.ndjson`), '--public-key', publicKey], copyEnv)
    t.equal(replayed.code, 1, `${name}: a replay pinned to the service's key refuses the export`)
    t.match(replayed.stderr, /nothing was replayed/)
  }
})
