import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import t from 'tap'
import { checkChainSinceCheckpoint, readChainCheckpoint } from '../../src/event-log/chain-checkpoint.js'
import { chainHash, genesisHash } from '../../src/event-log/hash.js'
import type { EventRow } from '../../src/event-log/read.js'
import { verifyChain } from '../../src/event-log/verify-chain.js'
import { openStore } from '../../src/store.js'
import { tempDir } from '../helpers.js'
import { runCli } from '../cli/toolkit-helpers.js'
import { startRefused, startService } from '../service-process.js'
import { genericDelivery, isAck, postDelivery, serverEnv } from './helpers.js'

// Issue 5 §7: rows edited, inserted or deleted behind the service's back are found, with their
// position; the service refuses to serve a broken log unless told to, and checks only new rows.

/** Appends `count` payment events through the real event log (the only writer). */
async function appendEvents (dbPath: string, from: number, count: number): Promise<void> {
  const store = await openStore(dbPath)
  try {
    const events = Array.from({ length: count }, (_, i) => {
      const n = from + i
      return {
        streamId: `tamper-${n % 50}`,
        type: 'PaymentSucceeded' as const,
        data: { orderId: `tamper-${n % 50}`, amount: 100 + n, currency: 'CNY', gateway: 'generic', transactionId: `T${n}`, refundId: null, cumulative: false, gatewayStatus: '1', gatewayTime: null },
        metadata: { gateway: 'generic', deliveryId: `d-${n}`, receivedAt: '2026-11-27T00:00:00.000Z', requestId: `r-${n}` }
      }
    })
    for (let i = 0; i < events.length; i += 500) await store.eventLog.append(events.slice(i, i + 500))
  } finally {
    await store.close()
  }
}

/** A copy of the database with the immutability triggers dropped and `tamper` run on it. */
function tamperedCopy (dbPath: string, copyPath: string, tamper: (db: SQLite.Database) => void): string {
  const source = new SQLite(dbPath, { readonly: true })
  source.prepare('VACUUM INTO ?').run(copyPath)
  source.close()
  const copy = new SQLite(copyPath)
  const triggers = copy.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'").pluck().all() as string[]
  for (const name of triggers) copy.exec(`DROP TRIGGER ${name}`)
  tamper(copy)
  copy.close()
  return copyPath
}

function row (db: SQLite.Database, position: number): EventRow {
  return db.prepare('SELECT * FROM events WHERE position = ?').get(position) as EventRow
}

function chainOf (path: string): ReturnType<typeof verifyChain> {
  const db = new SQLite(path, { readonly: true })
  try {
    return verifyChain(db)
  } finally {
    db.close()
  }
}

t.test('verifyChain names the first position of every kind of tampering', async t => {
  const dir = tempDir(t)
  const dbPath = join(dir, 'base.db')
  await appendEvents(dbPath, 1, 40)
  t.match(chainOf(dbPath), { ok: true, checked: 40, lastPosition: 40 }, 'the untouched log verifies')

  const cases: Array<{ name: string, tamper: (db: SQLite.Database) => void, expected: object }> = [
    {
      name: 'amount edited in data',
      tamper: db => db.prepare("UPDATE events SET data = replace(data, '\"amount\":112', '\"amount\":1') WHERE position = 12").run(),
      expected: { kind: 'hash', position: 12 }
    },
    {
      name: 'metadata edited',
      tamper: db => db.prepare("UPDATE events SET metadata = replace(metadata, 'd-20', 'd-99') WHERE position = 20").run(),
      expected: { kind: 'hash', position: 20 }
    },
    {
      name: 'row edited and its own hash recomputed',
      tamper: db => {
        const edited = { ...row(db, 15), type: 'PaymentFailed' }
        db.prepare('UPDATE events SET type = ?, hash = ? WHERE position = 15').run(edited.type, chainHash(row(db, 14).hash, edited))
      },
      expected: { kind: 'hash', position: 16 }
    },
    {
      name: 'row deleted',
      tamper: db => db.prepare('DELETE FROM events WHERE position = 25').run(),
      expected: { kind: 'gap', position: 26, expected: 25 }
    },
    {
      name: 'row inserted in the middle (later rows renumbered)',
      tamper: db => {
        for (let p = 40; p >= 30; p--) db.prepare('UPDATE events SET position = ? WHERE position = ?').run(p + 1, p)
        const forged = { ...row(db, 29), position: 30, stream_version: 999, data: row(db, 29).data.replace('"amount":128', '"amount":99999') }
        db.prepare('INSERT INTO events (position, stream_id, stream_version, type, schema_version, data, metadata, recorded_at, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
          .run(forged.position, forged.stream_id, forged.stream_version, forged.type, forged.schema_version, forged.data, forged.metadata, forged.recorded_at, row(db, 29).hash)
      },
      expected: { kind: 'hash', position: 30 }
    },
    {
      name: 'row appended with a made-up hash',
      tamper: db => {
        const last = row(db, 40)
        db.prepare('INSERT INTO events (position, stream_id, stream_version, type, schema_version, data, metadata, recorded_at, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
          .run(41, last.stream_id, 9999, last.type, last.schema_version, last.data, last.metadata, last.recorded_at, 'f'.repeat(64))
      },
      expected: { kind: 'hash', position: 41 }
    },
    {
      name: 'two rows swapped',
      tamper: db => {
        const a = row(db, 5)
        const b = row(db, 6)
        db.prepare('UPDATE events SET data = ?, metadata = ? WHERE position = 5').run(b.data, b.metadata)
        db.prepare('UPDATE events SET data = ?, metadata = ? WHERE position = 6').run(a.data, a.metadata)
      },
      expected: { kind: 'hash', position: 5 }
    }
  ]
  for (const [i, c] of cases.entries()) {
    const report = chainOf(tamperedCopy(dbPath, join(dir, `case-${i}.db`), c.tamper))
    t.equal(report.ok, false, `${c.name}: chain broken`)
    t.match(report.firstBreak, c.expected, `${c.name}: reported at the right position`)
  }
})

t.test('the start-time check: from the checkpoint to the end, truncation caught', async t => {
  const dir = tempDir(t)
  const dbPath = join(dir, 'checkpoint.db')
  await appendEvents(dbPath, 1, 2000)
  const db = new SQLite(dbPath)
  t.teardown(() => { db.close() })
  const now = new Date('2026-11-27T12:00:00Z')

  const first = checkChainSinceCheckpoint(db, now)
  t.match(first, { ok: true, from: { position: 0, hash: genesisHash }, report: { checked: 2000, lastPosition: 2000 } }, 'first start checks the whole log')
  t.match(readChainCheckpoint(db), { position: 2000 }, 'and stores a checkpoint at its end')
  t.match(checkChainSinceCheckpoint(db, now), { ok: true, report: { checked: 0 } }, 'a start with nothing new checks nothing')

  db.close()
  await appendEvents(dbPath, 2001, 10)
  const reopened = new SQLite(dbPath)
  t.teardown(() => { reopened.close() })
  t.match(checkChainSinceCheckpoint(reopened, now), { ok: true, from: { position: 2000 }, report: { checked: 10, lastPosition: 2010 } },
    'the next start checks only the 10 new rows, not 2,010')

  const editedAfter = new SQLite(tamperedCopy(dbPath, join(dir, 'after.db'), copy => {
    copy.prepare("UPDATE events SET data = replace(data, 'T2005', 'T9') WHERE position = 2005").run()
    copy.prepare('DELETE FROM chain_checkpoints').run()
    copy.prepare("INSERT INTO chain_checkpoints VALUES ('events', 2000, ?, '2026-11-27T00:00:00.000Z')").run(row(copy, 2000).hash)
  }))
  t.teardown(() => { editedAfter.close() })
  t.match(checkChainSinceCheckpoint(editedAfter, now), { ok: false, report: { firstBreak: { kind: 'hash', position: 2005 } } }, 'an edit after the checkpoint is caught')
  t.match(readChainCheckpoint(editedAfter), { position: 2000 }, 'a failed check does not move the checkpoint')

  const truncated = new SQLite(tamperedCopy(dbPath, join(dir, 'truncated.db'), copy => {
    copy.prepare('DELETE FROM events WHERE position > 1990').run()
  }))
  t.teardown(() => { truncated.close() })
  t.match(checkChainSinceCheckpoint(truncated, now), { ok: false, checkpointMismatch: { kind: 'checkpoint', position: 2010, actual: null } },
    'a log truncated below its checkpoint is caught (verifyChain alone cannot see a missing tail)')
  t.equal(verifyChain(truncated).ok, true, 'precondition: the truncated log is a valid chain by itself')
})

t.test('the service refuses to serve a broken log unless PAYNOTIFY_ALLOW_BROKEN_CHAIN is set', async t => {
  const dir = tempDir(t)
  const dbPath = join(dir, 'served.db')
  // A log written by a running service, with its checkpoint.
  const server = await startService(t, serverEnv(dbPath, { PAYNOTIFY_LOG_LEVEL: 'info' }))
  for (let i = 0; i < 5; i++) {
    t.ok(isAck(await postDelivery(server.url, genericDelivery({ order_id: `served-${i}`, amount: '1.00', status: '1', notify_id: `s-${i}` }))))
  }
  t.same(await server.stop(), { code: 0, signal: null })

  const restarted = await startService(t, serverEnv(dbPath, { PAYNOTIFY_LOG_LEVEL: 'info' }))
  t.match(restarted.output(), /"from":0,"to":5,"checked":5,"msg":"event log chain verified"/, 'a clean start verifies the new rows and logs it')
  t.same(await restarted.stop(), { code: 0, signal: null })

  const broken = tamperedCopy(dbPath, join(dir, 'broken.db'), copy => {
    copy.prepare("INSERT INTO events SELECT 6, stream_id, 2, type, schema_version, replace(data, '100', '999999'), metadata, recorded_at, hash FROM events WHERE position = 5").run()
  })
  const refused = await startRefused(t, serverEnv(broken))
  t.same(refused.exit, { code: 1, signal: null }, 'serve exits 1 on a broken chain')
  t.match(refused.stderr, /event log chain is broken: position 6 does not match its hash.*PAYNOTIFY_ALLOW_BROKEN_CHAIN=1/, 'and says where and how to override')
  t.notOk(refused.listened, 'it never listened')

  const allowed = await startService(t, serverEnv(broken, { PAYNOTIFY_ALLOW_BROKEN_CHAIN: '1' }))
  t.match(allowed.output(), /serving a broken event log chain/, 'told to, it serves and warns')
  const health = await postDelivery(allowed.url, genericDelivery({ order_id: 'after-break', amount: '1.00', status: '1' }))
  t.match(health, { ok: true, status: 200 }, 'and takes callbacks')
  t.same(await allowed.stop(), { code: 0, signal: null })
})

/**
 * The attack of issue 10 §4: whoever can write the database edits one event and recomputes
 * every hash after it, the chain checkpoint included, so the chain alone verifies.
 */
function rewriteHistory (db: SQLite.Database, position: number, edit: (data: string) => string): void {
  let prev = position === 1 ? genesisHash : row(db, position - 1).hash
  for (const stored of db.prepare('SELECT * FROM events WHERE position >= ? ORDER BY position').all(position) as EventRow[]) {
    const data = stored.position === position ? edit(stored.data) : stored.data
    prev = chainHash(prev, { ...stored, data })
    db.prepare('UPDATE events SET data = ?, hash = ? WHERE position = ?').run(data, prev, stored.position)
  }
  db.prepare('UPDATE chain_checkpoints SET hash = (SELECT hash FROM events WHERE position = chain_checkpoints.position)').run()
}

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
