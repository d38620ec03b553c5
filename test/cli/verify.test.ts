import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import t, { type Test } from 'tap'
import { chainHash } from '../../src/event-log/hash.js'
import { verifyProjection } from '../../src/projection/verify-projection.js'
import { buildTestApp, formHeaders, signedForm, tempDir, type TestApp } from '../helpers.js'
import { copyDatabase, isolatedEnv, runCli, seedScenarios, tamper } from './toolkit-helpers.js'

interface Copies { source: TestApp, copy: (name: string) => string, env: Record<string, string> }

async function seeded (t: Test): Promise<Copies> {
  const source = await buildTestApp(t)
  await seedScenarios(source)
  const dir = tempDir(t)
  return { source, copy: name => copyDatabase(source, join(dir, `${name}.db`)), env: isolatedEnv(t) }
}

t.test('an intact database verifies, read-only, beside the live service', async t => {
  const { source, env } = await seeded(t)
  const run = await runCli(['verify', '--db', source.dbPath], env)
  t.equal(run.code, 0, run.stdout + run.stderr)
  t.match(run.stdout, /verify chain: 16 events, intact, positions 1-16 in [\d.]+ s \(\d+ events\/s\)/)
  t.match(run.stdout, /verify projection: 16 events, 7 orders match a fresh fold, checkpoint at position 16/)
})

t.test('tampering behind the service is named by position (trigger dropped first)', async t => {
  const { copy, env } = await seeded(t)
  const row17 = (db: SQLite.Database, hash?: string): void => {
    const last = db.prepare('SELECT * FROM events WHERE position = 16').get() as Record<string, string | number>
    const forged: Record<string, string | number> = { ...last, position: 17, stream_version: Number(last.stream_version) + 1 }
    const realHash = chainHash(String(last.hash), forged as never)
    db.prepare('INSERT INTO events (position, stream_id, stream_version, type, schema_version, data, metadata, recorded_at, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(17, forged.stream_id, forged.stream_version, forged.type, forged.schema_version, forged.data, forged.metadata, forged.recorded_at, hash ?? realHash)
  }
  const cases: Array<[string, (db: SQLite.Database) => void, RegExp]> = [
    ['a row edited', db => { db.prepare("UPDATE events SET data = replace(data, '\"amount\":500', '\"amount\":1') WHERE position = 9").run() },
      /chain broken at position 9: its hash does not match/],
    ['a row deleted', db => { db.prepare('DELETE FROM events WHERE position = 4').run() },
      /chain broken at position 4: it is missing \(the next row is position 5/],
    ['the last row deleted', db => { db.prepare('DELETE FROM events WHERE position = 16').run() },
      /projection differs: projection checkpoint is at position 16 but the log ends at position 15/],
    ['a row inserted', db => { row17(db, 'e'.repeat(64)) },
      /chain broken at position 17: its hash does not match/],
    ['a row inserted with a valid chain hash', db => { row17(db) },
      /projection differs: projection checkpoint is at position 16 but the log ends at position 17/],
    ['a projection row edited', db => { db.prepare("UPDATE orders SET status = 'paid' WHERE order_id = 'S1'").run() },
      /projection differs: order S1 differs from a fresh fold: status stored "paid", fold gives "partially_refunded"/]
  ]
  for (const [name, change, message] of cases) {
    const path = copy(name.replaceAll(' ', '-'))
    tamper(path, change)
    const run = await runCli(['verify', '--db', path], env)
    t.equal(run.code, 1, `${name}: exit 1`)
    t.match(run.stdout, message, name)
  }
})

t.test('a raw body stored apart, edited or deleted behind the service, is named by the position that uses it', async t => {
  const source = await buildTestApp(t)
  const payload = signedForm({ order_id: 'BIG-1', amount: '1.00', status: '1', notify_id: 'big-1', subject: 'x'.repeat(5000) })
  t.equal((await source.app.inject({ method: 'POST', url: '/notify/generic', headers: formHeaders, payload })).statusCode, 200)
  const dir = tempDir(t)
  const env = isolatedEnv(t)
  const intact = await runCli(['verify', '--db', source.dbPath], env)
  t.equal(intact.code, 0, intact.stdout + intact.stderr)
  const cases: Array<[string, string]> = [['edited', "UPDATE raw_bodies SET body = replace(body, 'amount=1.00', 'amount=9.00')"], ['deleted', 'DELETE FROM raw_bodies']]
  for (const [name, change] of cases) {
    const path = copyDatabase(source, join(dir, `${name}.db`))
    tamper(path, db => { db.exec(`DROP TRIGGER raw_bodies_no_update; DROP TRIGGER raw_bodies_no_delete; ${change}`) })
    const run = await runCli(['verify', '--db', path], env)
    t.equal(run.code, 1, `${name}: exit 1`)
    t.match(run.stdout, /chain broken at position 1: its raw body \(sha256 [0-9a-f]{64}\) is missing or was edited/, name)
  }
})

t.test('a projection that drifted is named by order (in-process)', async t => {
  const { copy } = await seeded(t)
  let copies = 0
  const check = (change: (db: SQLite.Database) => void): ReturnType<typeof verifyProjection> => {
    const db = new SQLite(copy(`drift-${++copies}`))
    try {
      change(db)
      return verifyProjection(db, 16)
    } finally {
      db.close()
    }
  }
  t.match(check(() => {}), { ok: true, events: 16, orders: 7 })
  t.match(check(db => { db.prepare("DELETE FROM orders WHERE order_id = 'S2'").run() }), { ok: false, difference: { kind: 'missing', orderId: 'S2' } })
  t.match(check(db => { db.prepare("INSERT INTO orders SELECT 'ZZ', status, needs_review, anomalies, expected_amount, expected_currency, paid_amount, refunded_amount, currency, gateway, gateway_trade_no, duplicate_count, version, last_position, first_seen_at, updated_at, state FROM orders WHERE order_id = 'S1'").run() }),
    { ok: false, difference: { kind: 'extra', orderId: 'ZZ' } })
  t.match(check(db => { db.prepare("UPDATE projections SET context = '{\"ordersRegistered\":false}'").run() }), { ok: false, difference: { kind: 'context' } })
  t.match(check(db => { db.prepare("UPDATE orders SET paid_amount = 1, state = '{}' WHERE order_id = 'S4'").run() }),
    { ok: false, difference: { kind: 'differs', orderId: 'S4', columns: [{ column: 'paid_amount', stored: 1, expected: 900 }, { column: 'state' }] } })
})
