import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import t from 'tap'
import type { NewEvent } from '../../src/event-log/event-log.js'
import { genesisHash } from '../../src/event-log/hash.js'
import { verifyChain } from '../../src/event-log/verify-chain.js'
import { openStore } from '../../src/store.js'
import { tempDir } from '../helpers.js'

function paid (orderId: string, deliveryId: string, amount = 100): NewEvent {
  return {
    streamId: orderId,
    type: 'PaymentSucceeded',
    data: { orderId, amount, currency: 'CNY', gateway: 'generic', transactionId: null, refundId: null, cumulative: false, gatewayStatus: '1', gatewayTime: null },
    metadata: { gateway: 'generic', deliveryId, receivedAt: '2026-01-01T00:00:00.000Z', requestId: deliveryId }
  }
}

interface Teardown { teardown: (fn: () => unknown) => void }

/** A log of 10 events, closed (checkpointed), and a copy of it with the immutability triggers dropped. */
async function tamperableCopy (t: Teardown): Promise<SQLite.Database> {
  const dir = tempDir(t)
  const path = join(dir, 'log.db')
  const store = await openStore(path)
  for (let i = 1; i <= 10; i++) await store.eventLog.append([paid(`O${i % 3}`, `d${i}`, i * 100)])
  await store.close()
  const copy = join(dir, 'copy.db')
  copyFileSync(path, copy)
  const db = new SQLite(copy)
  t.teardown(() => db.close())
  db.exec('DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete')
  return db
}

t.test('an intact chain verifies, also from a known-good checkpoint', async t => {
  const db = await tamperableCopy(t)
  const full = verifyChain(db)
  t.match(full, { ok: true, checked: 10, lastPosition: 10 })
  t.notOk('firstBreak' in full)
  const five = db.prepare('SELECT hash FROM events WHERE position = 5').get() as { hash: string }
  t.match(verifyChain(db, { position: 5, hash: five.hash }), { ok: true, checked: 5, lastHash: full.lastHash })
  t.match(verifyChain(db, { position: 5, hash: genesisHash }), { ok: false, firstBreak: { kind: 'hash', position: 6 } }, 'a wrong starting hash is caught')
})

t.test('an edited amount breaks the chain at that position', async t => {
  const db = await tamperableCopy(t)
  const row = db.prepare('SELECT data, hash FROM events WHERE position = 4').get() as { data: string, hash: string }
  db.prepare('UPDATE events SET data = ? WHERE position = 4').run(row.data.replace('"amount":400', '"amount":1'))
  const report = verifyChain(db)
  t.match(report, { ok: false, checked: 3, lastPosition: 3, firstBreak: { kind: 'hash', position: 4, actual: row.hash } })
})

t.test('an edit that also rewrites its own hash is caught at the next position', async t => {
  const db = await tamperableCopy(t)
  db.prepare("UPDATE events SET metadata = replace(metadata, 'generic', 'forged'), hash = ? WHERE position = 7").run('f'.repeat(64))
  t.match(verifyChain(db), { ok: false, firstBreak: { kind: 'hash', position: 7 } })
})

t.test('a deleted row is a gap named by position', async t => {
  const db = await tamperableCopy(t)
  db.prepare('DELETE FROM events WHERE position = 6').run()
  t.match(verifyChain(db), { ok: false, checked: 5, firstBreak: { kind: 'gap', position: 7, expected: 6 } })
})

t.test('a deleted tail is not a break, but the last hash changes', async t => {
  const db = await tamperableCopy(t)
  const tenth = db.prepare('SELECT hash FROM events WHERE position = 10').get() as { hash: string }
  db.prepare('DELETE FROM events WHERE position = 10').run()
  const report = verifyChain(db)
  // Truncation is only visible against a remembered tail (the projection checkpoint or an export).
  t.match(report, { ok: true, checked: 9, lastPosition: 9 })
  t.not(report.lastHash, tenth.hash)
})

t.test('progress is reported every 10000 rows', async t => {
  const dir = tempDir(t)
  const store = await openStore(join(dir, 'big.db'), { synchronous: 'NORMAL' })
  t.teardown(async () => { await store.close() })
  await store.eventLog.append(Array.from({ length: 10001 }, (_, i) => paid(`O${i % 50}`, `d${i}`)))
  const seen: number[] = []
  t.match(verifyChain(store.sqlite, undefined, n => seen.push(n)), { ok: true, checked: 10001 })
  t.same(seen, [10000])
})
