import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { OrderView } from '../../src/orders/order-fold.js'
import { rowToView, type OrderRow } from '../../src/orders/queries.js'
import { buildTestApp, tempDir, testSecrets, type TestApp } from '../helpers.js'
import { cli, isolatedEnv, runCli, seedScenarios, tableRows } from './toolkit-helpers.js'

/** The scenarios, plus one Stripe callback (skipped by replay --to where `paynotify keys` never ran). */
async function seedWithStripe (source: TestApp): Promise<void> {
  await seedScenarios(source)
  const body = JSON.stringify({ id: 'evt_1', type: 'payment_intent.succeeded', data: { object: { id: 'pi_1', amount: 500, currency: 'usd', metadata: { order_id: 'X1' } } } })
  await source.store.eventLog.append([{
    streamId: 'X1',
    type: 'PaymentSucceeded',
    data: { orderId: 'X1', amount: 500, currency: 'USD', gateway: 'stripe', transactionId: 'pi_1', refundId: null, cumulative: false, gatewayStatus: 'payment_intent.succeeded', gatewayTime: null },
    metadata: { gateway: 'stripe', deliveryId: 'evt_1', receivedAt: new Date().toISOString(), requestId: 'stripe-req-1', raw: { body, encoding: 'utf8', contentType: 'application/json', headers: { 'stripe-signature': 't=1,v1=00' } } }
  }])
}

function views (dbPath: string): OrderView[] {
  return (tableRows(dbPath, 'orders', 'order_id') as OrderRow[]).map(rowToView)
}

async function exportAll (t: Parameters<typeof tempDir>[0], source: TestApp, env: Record<string, string>): Promise<string> {
  const file = join(tempDir(t), 'incident.ndjson')
  const run = await runCli(['export', '--db', source.dbPath, '--out', file], env)
  if (run.code !== 0) throw new Error(run.stderr)
  return file
}

/** An exported incident and a running service to replay it to (started to take replays unless `targetEnv` says otherwise). */
async function incidentAndService (t: Parameters<typeof tempDir>[0], seed: (source: TestApp) => Promise<unknown>, targetEnv: Record<string, string> = { PAYNOTIFY_ACCEPT_REPLAYS: '1' }): Promise<{ source: TestApp, target: TestApp, env: Record<string, string>, file: string, url: string }> {
  const source = await buildTestApp(t)
  await seed(source)
  const env = isolatedEnv(t)
  const file = await exportAll(t, source, env)
  const target = await buildTestApp(t, { env: targetEnv })
  const url = await target.app.listen({ host: '127.0.0.1', port: 0 })
  return { source, target, env, file, url }
}

t.test('replay into a fresh local database prints the same states (--json), and a table', async t => {
  const source = await buildTestApp(t)
  await seedWithStripe(source)
  const env = isolatedEnv(t)
  const file = await exportAll(t, source, env)

  const json = await runCli(['replay', file, '--json'], env)
  t.equal(json.code, 0, json.stderr)
  t.same(JSON.parse(json.stdout), views(source.dbPath), 'every order view, as the service has it')
  t.match(json.stderr, /imported 17 events as recorded/)
  t.match(json.stderr, /rebuild: 17 events, 8 orders/)
  t.match(json.stderr, /temporary database \(removed; pass --db to keep it\)/)

  const orderFile = join(tempDir(t), 'S1.ndjson')
  t.equal((await runCli(['export', '--db', source.dbPath, '--order', 'S1', '--out', orderFile], env)).code, 0)
  const kept = join(tempDir(t), 'local.db')
  const table = await runCli(['replay', orderFile, '--db', kept], env)
  t.equal(table.code, 0, table.stderr)
  const [header, row, ...rest] = table.stdout.trimEnd().split('\n')
  t.match(header, /^order\s+status\s+paid\s+refunded\s+expected\s+currency\s+events\s+dups\s+anomalies$/)
  t.match(row, /^S1\s+partially_refunded\s+88\.88\s+20\.00\s+88\.88\s+CNY\s+5\s+1\s+-$/)
  t.same(rest, [])
  t.match(table.stderr, /re-appended 5 events as positions 1-5 with a new hash chain/)
  t.ok(existsSync(kept), '--db keeps the database')
  const again = await runCli(['replay', orderFile, '--db', kept], env)
  t.equal(again.code, 2, 'replay wants a fresh database')
  t.match(again.stderr, /already holds events/)
})

t.test('replay --to re-delivers the recorded callbacks to a running service: same states', async t => {
  const { source, target, env, file, url } = await incidentAndService(t, seedWithStripe)

  const run = await runCli(['replay', file, '--to', url, '--secret', testSecrets.genericSecret, '--merchant-token', testSecrets.merchantToken, '--speed', '1000'], env)
  t.equal(run.code, 0, run.stdout + run.stderr)
  t.match(run.stdout, /position 4 {2}S1 {2}PaymentSucceeded {2}→ 200 success/)
  t.match(run.stdout, /position 1 {2}S1 {2}OrderPlaced {2}→ 201 /)
  t.match(run.stdout, /replay: 16 requests, 16 acked, 0 refused, 1 skipped \(1 × stripe: no local identity \(run `paynotify keys`\)\) → http:\/\/127\.0\.0\.1:\d+\/ in [\d.]+ s \(\d+ requests\/s\)/)

  const fields = (view: OrderView): unknown => {
    const { lastPosition, firstSeenAt, updatedAt, ...rest } = view
    return rest
  }
  t.same(views(target.dbPath).map(fields), views(source.dbPath).filter(v => v.orderId !== 'X1').map(fields), 'every order ends in the same state')
  const sourceEvents = tableRows(source.dbPath, 'events', 'position') as Array<{ position: number, stream_id: string, type: string }>
  const replayed = (tableRows(target.dbPath, 'events', 'position') as Array<{ stream_id: string, type: string, metadata: string }>)
    .filter(e => e.type !== 'OrderPlaced')
  t.equal(replayed.length, 13)
  for (const event of replayed) {
    const replayOf = (JSON.parse(event.metadata) as { replayOf?: number }).replayOf
    const original = sourceEvents[(replayOf ?? 0) - 1]
    t.same([original?.stream_id, original?.type], [event.stream_id, event.type], `marked as a replay of position ${replayOf}`)
  }
})

t.test('replay --to exits 1 when the service refuses deliveries', async t => {
  const { target, env, file, url } = await incidentAndService(t, seedScenarios)
  const run = await runCli(['replay', file, '--to', url, '--secret', 'not-the-service-secret-000'], env)
  t.equal(run.code, 1)
  t.match(run.stdout, /PaymentSucceeded {2}→ 401 .*bad_signature/)
  t.match(run.stdout, /replay: 13 requests, 0 acked, 13 refused, 3 skipped \(3 × OrderPlaced: no merchant token to register orders \(--merchant-token\)\)/)
  t.same(tableRows(target.dbPath, 'events', 'position'), [], 'nothing entered the log')
})

t.test('replay --to reads an export from stdin (-) once: every recorded request is sent', async t => {
  const { env, file, url } = await incidentAndService(t, seedScenarios)
  const child = spawn(process.execPath, [cli, 'replay', '-', '--to', url, '--secret', testSecrets.genericSecret, '--merchant-token', testSecrets.merchantToken],
    { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  child.stdin.end(readFileSync(file))
  const [code] = await once(child, 'exit') as [number | null]
  t.equal(code, 0, stdout + stderr)
  t.match(stdout, /replay: 16 requests, 16 acked, 0 refused, 0 skipped → /, 'as from the file itself')
})

t.test('replay --to a service not started with PAYNOTIFY_ACCEPT_REPLAYS=1: every callback refused, the flag named', async t => {
  const { target, env, file, url } = await incidentAndService(t, seedScenarios, {})
  const run = await runCli(['replay', file, '--to', url, '--secret', testSecrets.genericSecret], env)
  t.equal(run.code, 1)
  t.match(run.stdout, /PaymentSucceeded {2}→ 403 .*replays_not_accepted.*PAYNOTIFY_ACCEPT_REPLAYS=1/)
  t.match(run.stdout, /replay: 13 requests, 0 acked, 13 refused/)
  t.same(tableRows(target.dbPath, 'events', 'position'), [], 'nothing entered the log')
})
