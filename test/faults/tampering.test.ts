import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import t from 'tap'
import { checkChainSinceCheckpoint, readChainCheckpoint } from '../../src/event-log/chain-checkpoint.js'
import { chainHash, genesisHash } from '../../src/event-log/hash.js'
import { verifyChain } from '../../src/event-log/verify-chain.js'
import { openStore } from '../../src/store.js'
import { tempDir } from '../helpers.js'
import { startRefused, startService } from '../service-process.js'
import { genericDelivery, isAck, postDelivery, serverEnv } from './helpers.js'
import { row, tamperedCopy } from './tampering-helpers.js'

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
