import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import t from 'tap'
import { buildTestApp, tempDir, testSecrets, type TestApp } from '../helpers.js'
import { startRefused, startService } from '../service-process.js'
import { copyDatabase, isolatedEnv, notify, place, runCli, seedScenarios, tableRows } from './toolkit-helpers.js'

/**
 * A deterministic jumble of callbacks over 15 orders: every status, retries,
 * twin reports, refunds with and without ids, three currencies, and orders
 * registered only after the first payments (so the view context changes
 * half way through the log, as it does live).
 */
async function seedJumble (test: TestApp, count = 120): Promise<void> {
  let seed = 7
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648
    return Math.floor((seed / 2147483648) * n)
  }
  const currencies = [['CNY', '12.34'], ['USD', '5.00'], ['JPY', '1200']] as const
  const placed = new Set<string>()
  for (let i = 0; i < count; i++) {
    const order = random(15)
    const orderId = `J${order}`
    const [currency, amount] = currencies[order % 3]!
    if (i > count / 3 && !placed.has(orderId) && random(4) === 0) {
      placed.add(orderId)
      await place(test, orderId, amount, currency)
      continue
    }
    const status = String(random(5))
    const params: Record<string, string> = { order_id: orderId, amount: random(6) === 0 ? (currency === 'JPY' ? '1' : '0.01') : amount, currency, status }
    if (random(3) > 0) params.notify_id = `n${random(40)}`
    if (random(2) === 0) params.trade_no = `T${order}-${random(2)}`
    if (status === '3' && random(2) === 0) params.refund_no = `R${random(3)}`
    await notify(test, params)
  }
}

t.test('rebuild gives byte-identical order rows to the live projection', async t => {
  const source = await buildTestApp(t)
  await seedJumble(source)
  await seedScenarios(source)
  const dir = tempDir(t)
  const copy = copyDatabase(source, join(dir, 'copy.db'))
  // Damage the copy's projection in every way: rebuild must not depend on what is there.
  const db = new SQLite(copy)
  db.exec("DELETE FROM orders WHERE order_id LIKE 'J1%'; UPDATE orders SET status = 'failed', state = '{}'; UPDATE projections SET last_position = 3, context = '{}'")
  db.close()
  const live = tableRows(source.dbPath, 'orders', 'order_id')
  t.ok(live.length >= 20, `${live.length} orders`)

  const run = await runCli(['rebuild', '--db', copy], isolatedEnv(t))
  t.equal(run.code, 0, run.stderr)
  const events = tableRows(source.dbPath, 'events', 'position').length
  t.match(run.stdout, new RegExp(`^rebuild: ${events} events, ${live.length} orders, checkpoint at position ${events} in [\\d.]+ s \\(\\d+ events/s\\)\\n$`))
  t.same(tableRows(copy, 'orders', 'order_id'), live, 'every column of every order row')
  t.same(tableRows(copy, 'projections', 'name'), tableRows(source.dbPath, 'projections', 'name'), 'checkpoint and context')
  t.equal((await runCli(['verify', '--db', copy], isolatedEnv(t))).code, 0)

  // An emptied table is refilled without its secondary indexes, which come back as the migrations define them.
  const emptied = copyDatabase(source, join(dir, 'emptied.db'))
  const schema = (path: string): unknown[] => {
    const db = new SQLite(path, { readonly: true })
    try {
      return db.prepare("SELECT type, name, sql FROM sqlite_schema WHERE tbl_name = 'orders' ORDER BY name").all()
    } finally {
      db.close()
    }
  }
  const migrated = schema(source.dbPath)
  t.equal(migrated.length, 5, 'the table, its primary key and three indexes (status, gateway, the partial needs-review index)')
  const emptiedDb = new SQLite(emptied)
  emptiedDb.exec('DELETE FROM orders')
  emptiedDb.close()
  t.equal((await runCli(['rebuild', '--db', emptied], isolatedEnv(t))).code, 0)
  t.same(schema(emptied), migrated, 'the same indexes, defined as before')
  t.same(tableRows(emptied, 'orders', 'order_id'), live, 'every row back')
})

t.test('rebuild and import refuse while the service runs on the database, unless --force', async t => {
  const source = await buildTestApp(t)
  await seedScenarios(source)
  const dir = tempDir(t)
  const dbPath = copyDatabase(source, join(dir, 'served.db'))
  const exportFile = join(dir, 'S1.ndjson')
  const env = { ...isolatedEnv(t), PAYNOTIFY_GENERIC_SECRET: testSecrets.genericSecret, PAYNOTIFY_ADMIN_TOKEN: testSecrets.adminToken, PAYNOTIFY_MERCHANT_TOKEN: testSecrets.merchantToken }
  t.equal((await runCli(['export', '--db', dbPath, '--order', 'S1', '--out', exportFile], env)).code, 0)

  const serveEnv = { PATH: process.env.PATH ?? '', ...env, PAYNOTIFY_DB: dbPath, PAYNOTIFY_PORT: '0', PAYNOTIFY_HOST: '127.0.0.1', PAYNOTIFY_LOG_LEVEL: 'silent' }
  const service = await startService(t, serveEnv)

  const refused = await runCli(['rebuild', '--db', dbPath], env)
  t.equal(refused.code, 2, 'rebuild refused')
  t.match(refused.stderr, /the service is running on .*served\.db \(it holds .*served\.db\.lock\): stop it first, or pass --force/)
  const importRefused = await runCli(['import', exportFile, '--db', dbPath], env)
  t.equal(importRefused.code, 2, 'import refused')
  t.match(importRefused.stderr, /the service is running on/)
  const second = await startRefused(t, serveEnv)
  t.same(second.exit, { code: 1, signal: null }, 'a second service refuses the same database')
  t.match(second.stderr, /another paynotify service is running on .*served\.db/)
  const verified = await runCli(['verify', '--db', dbPath], env)
  t.equal(verified.code, 0, 'verify (read-only) runs beside the service')
  const forced = await runCli(['rebuild', '--db', dbPath, '--force'], env)
  t.equal(forced.code, 0, forced.stderr)

  t.same(await service.stop(), { code: 0, signal: null }, 'the service stops cleanly')
  const after = await runCli(['rebuild', '--db', dbPath], env)
  t.equal(after.code, 0, 'the lock is gone with the service')
})
