import { execFile } from 'node:child_process'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { gatewayScenarios } from '../../src/cli/simulate-gateways.js'
import { planSimulation } from '../../src/cli/simulate-plan.js'
import { formatMinorUnits } from '../../src/orders/money.js'
import { findOrder } from '../../src/orders/queries.js'
import { adminAuth, buildTestApp, merchantAuth, tempDir, testSecrets, type TestApp } from '../helpers.js'

const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url))

interface Run { code: number, stdout: string, stderr: string }

/** Runs the built CLI as a child process without blocking this process's event loop (the server under test lives here). */
async function runCli (args: string[], env: Record<string, string>): Promise<Run> {
  return await new Promise(resolve => {
    execFile(process.execPath, [cli, ...args], { env: { PATH: process.env.PATH ?? '', ...env } }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr })
    })
  })
}

interface SimulateJson {
  ok: boolean
  summary: { orders: number, callbacks: number, duplicates: number, deliveries: number, requests: number, acked: number, unacked: number, retried: number, retries: number }
  orders: Array<{ orderId: string, status: string, paidAmount: number, refundedAmount: number, currency: string, anomalies: string[], scenario: string }>
  unacked: Array<{ notifyId: string, attempts: number, answer: string }>
  verified: { orders: number, mismatches: Array<{ orderId: string }> } | null
}

async function listen (t: Test): Promise<{ test: TestApp, url: string, env: Record<string, string> }> {
  const test = await buildTestApp(t)
  const url = await test.app.listen({ host: '127.0.0.1', port: 0 })
  // PAYNOTIFY_DB points at an empty temp dir, so no secrets file of a real installation is ever read.
  return { test, url, env: { PAYNOTIFY_DB: join(tempDir(t), 'unused.db'), PAYNOTIFY_GENERIC_SECRET: testSecrets.genericSecret, PAYNOTIFY_ADMIN_TOKEN: testSecrets.adminToken } }
}

async function assertStatesInDb (t: Test, test: TestApp, result: SimulateJson): Promise<void> {
  for (const order of result.orders) {
    const view = await findOrder(test.store.db, order.orderId)
    t.ok(view, `${order.orderId} exists`)
    t.match(view, { status: order.status, paidAmount: order.paidAmount, refundedAmount: order.refundedAmount, currency: order.currency, anomalies: order.anomalies, needsReview: false },
      `${order.orderId}: ${order.scenario}`)
  }
}

t.test('duplicates and shuffling: every order ends in the state the simulator meant', async t => {
  const { test, url, env } = await listen(t)
  const run = await runCli(['simulate', '--to', url, '--orders', '25', '--duplicates', '0.5', '--shuffle', '--refunds', '0.6',
    '--concurrency', '6', '--seed', '1234', '--json', '--verify'], env)
  t.equal(run.code, 0, run.stderr)
  const result = JSON.parse(run.stdout) as SimulateJson
  t.equal(result.ok, true)
  t.equal(result.orders.length, 25)
  t.ok(result.summary.duplicates > 0, 'some deliveries were duplicated')
  t.equal(result.summary.deliveries, result.summary.callbacks + result.summary.duplicates)
  t.equal(result.summary.acked, result.summary.deliveries)
  t.equal(result.summary.unacked, 0)
  t.same(result.verified, { orders: 25, mismatches: [] })
  const statuses = new Set(result.orders.map(order => order.status))
  t.same([...statuses].sort(), ['closed', 'paid', 'partially_refunded', 'refunded'], 'the run covers every final state the simulator plans')

  // Judged again here, on the database, independently of the simulator's own --verify.
  await assertStatesInDb(t, test, result)
  const { sqlite } = test.store
  const events = sqlite.prepare('SELECT count(*) AS n FROM events').get() as { n: number }
  t.equal(events.n, result.summary.requests, 'every acked request is one event in the log')
  const orders = sqlite.prepare('SELECT count(*) AS n, sum(duplicate_count) AS dups FROM orders').get() as { n: number, dups: number }
  t.equal(orders.n, 25)
  t.equal(result.summary.retries, 0)
  t.equal(orders.dups, result.summary.duplicates, 'every duplicate delivery is counted as one, none as a new fact')
  // Shuffled: at least one order's refund or payment was recorded before a callback planned ahead of it.
  const outOfOrder = sqlite.prepare(`SELECT count(*) AS n FROM events r JOIN events p ON r.stream_id = p.stream_id
    WHERE r.type = 'PaymentRefunded' AND p.type = 'PaymentSucceeded' AND r.position < p.position`).get() as { n: number }
  t.ok(outOfOrder.n > 0, 'some refunds arrived before their payment')
})

t.test('unacked deliveries are retried with backoff until acked', async t => {
  const { test, url, env } = await listen(t)
  // A flaky front for the real app: the first delivery of every notify_id gets 503, everything else is passed through.
  const seen = new Set<string>()
  let refused = 0
  const front = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      const notifyId = new URLSearchParams(body).get('notify_id')
      if (request.method === 'POST' && notifyId !== null && !seen.has(notifyId)) {
        seen.add(notifyId)
        refused++
        response.writeHead(503, { 'content-type': 'text/plain' }).end('fail')
        return
      }
      const headers: IncomingHttpHeaders = { ...request.headers }
      delete headers['content-length']
      test.app.inject({ method: request.method as 'GET' | 'POST', url: request.url ?? '/', headers, payload: body }).then(answer => {
        response.writeHead(answer.statusCode, { 'content-type': String(answer.headers['content-type'] ?? 'text/plain') }).end(answer.body)
      }, (error: Error) => { response.writeHead(500).end(error.message) })
    })
  })
  await new Promise<void>(resolve => front.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { front.close() })
  const frontUrl = `http://127.0.0.1:${(front.address() as AddressInfo).port}`
  t.not(frontUrl, url)

  const run = await runCli(['simulate', '--to', frontUrl, '--orders', '8', '--duplicates', '0', '--refunds', '0.5', '--seed', '99',
    '--minute-ms', '2', '--json', '--verify'], env)
  t.equal(run.code, 0, run.stderr)
  const result = JSON.parse(run.stdout) as SimulateJson
  t.equal(refused, result.summary.deliveries, 'each delivery was refused once')
  t.equal(result.summary.retried, result.summary.deliveries, 'and each was retried')
  t.equal(result.summary.retries, result.summary.deliveries, 'exactly once')
  t.equal(result.summary.acked, result.summary.deliveries)
  t.same(result.verified?.mismatches, [])
  await assertStatesInDb(t, test, result)
})

t.test('a server that never acks: exit 1 after the bounded attempts', async t => {
  // It stays up for the whole test (a port probed, closed and reused could be someone else's by then).
  let received = 0
  const refusing = createServer((request, response) => {
    received++
    request.resume()
    response.writeHead(500).end('fail')
  })
  await new Promise<void>(resolve => refusing.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { refusing.close() })
  const port = (refusing.address() as AddressInfo).port
  const env = { PAYNOTIFY_DB: join(tempDir(t), 'unused.db') }
  const run = await runCli(['simulate', '--to', `http://127.0.0.1:${port}`, '--orders', '3', '--max-attempts', '3', '--secret', testSecrets.genericSecret, '--seed', '5', '--json'], env)
  t.equal(run.code, 1)
  const result = JSON.parse(run.stdout) as SimulateJson
  t.equal(result.ok, false)
  t.equal(result.summary.acked, 0)
  t.equal(result.summary.unacked, result.summary.deliveries)
  t.equal(result.summary.requests, 3 * result.summary.deliveries, 'three attempts each, no more')
  t.equal(received, result.summary.requests, 'as the server counted them')
  t.ok(result.unacked.every(u => u.attempts === 3 && u.answer === '500 fail'), 'each names why it failed')
  t.match(run.stderr, /simulate: \d+ deliveries, 0 acked, \d+ unacked/)
})

t.test('--verify reports orders the service sees differently, with exit 1', async t => {
  const { test, url, env } = await listen(t)
  // The merchant registers the simulated orders first (amounts from the same seed), but x-0001 at 0.01:
  // for the service the simulated payment of x-0001 is then an amount mismatch.
  const plan = planSimulation({ orders: 3, duplicates: 0.1, refunds: 0.3, shuffle: false, seed: 8, prefix: 'x', currency: 'CNY', scenarios: gatewayScenarios.generic })
  for (const order of plan.expected) {
    const amount = order.orderId === 'x-0001' ? '0.01' : formatMinorUnits(order.paidAmount, 'CNY')
    const placed = await test.app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload: { order_id: order.orderId, amount } })
    t.equal(placed.statusCode, 201)
  }
  const run = await runCli(['simulate', '--to', url, '--orders', '3', '--prefix', 'x', '--seed', '8', '--verify'], env)
  t.equal(run.code, 1, run.stderr)
  t.match(run.stdout, /mismatch: x-0001 expected (\w+) paid [\d.]+ refunded [\d.]+, service has \1 paid .*amount_mismatch/)
  t.match(run.stdout, /verified 3 orders with \/admin\/orders: 2 match, 1 differ/)
  t.notMatch(run.stdout, /mismatch: x-0002|mismatch: x-0003/)
  const admin = await test.app.inject({ method: 'GET', url: '/admin/orders/x-0001', headers: adminAuth })
  t.match(admin.json(), { anomalies: ['amount_mismatch'], expectedAmount: 1 })
})

t.test('on a service with registered orders, simulate registers its own first: --verify matches', async t => {
  const { test, url, env } = await listen(t)
  // The README's earlier step: the merchant registered an order, so callbacks for unregistered orders read unknown_order.
  const placed = await test.app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload: { order_id: 'A1001', amount: '88.88' } })
  t.equal(placed.statusCode, 201)
  const withToken = { ...env, PAYNOTIFY_MERCHANT_TOKEN: testSecrets.merchantToken }
  const run = await runCli(['simulate', '--to', url, '--orders', '12', '--duplicates', '0.3', '--shuffle', '--refunds', '0.4', '--seed', '77', '--verify'], withToken)
  t.equal(run.code, 0, run.stdout + run.stderr)
  t.match(run.stdout, /^simulate: registered 12 orders with POST \/orders$/m)
  t.match(run.stdout, /verified 12 orders with \/admin\/orders: 12 match, 0 differ/)
  const plan = planSimulation({ orders: 12, duplicates: 0.3, refunds: 0.4, shuffle: true, seed: 77, prefix: `sim-${(77).toString(36)}`, currency: 'CNY', scenarios: gatewayScenarios.generic })
  for (const order of plan.expected) t.match(await findOrder(test.store.db, order.orderId), { expectedAmount: order.amount, needsReview: false }, `${order.orderId} registered at its amount`)

  // Without registering, each of them is an unknown order to this service: --verify says so.
  const unregistered = await runCli(['simulate', '--to', url, '--orders', '3', '--seed', '78', '--verify', '--no-register'], withToken)
  t.equal(unregistered.code, 1)
  t.match(unregistered.stdout, /orders not registered \(--no-register\); on a service with registered orders their callbacks read unknown_order/)
  t.match(unregistered.stdout, /verified 3 orders with \/admin\/orders: 0 match, 3 differ/)
  t.match(unregistered.stdout, /mismatch: sim-26-0001 .*unknown_order/)

  const wrongToken = await runCli(['simulate', '--to', url, '--orders', '2', '--seed', '79', '--merchant-token', 'not-the-merchant-token-000'], env)
  t.equal(wrongToken.code, 1)
  t.match(wrongToken.stdout, /^not registered: sim-27-0001: POST \/orders answered 401 .*\(check --merchant-token\)$/m)
  t.match(wrongToken.stdout, /simulate: 2 of 2 orders could not be registered; nothing was delivered/)
  t.equal(await findOrder(test.store.db, 'sim-27-0001'), undefined, 'nothing delivered')
})

t.test('bad usage exits 2 with a message', async t => {
  const env = { PAYNOTIFY_DB: join(tempDir(t), 'unused.db') }
  const cases: Array<[string[], RegExp]> = [
    [['simulate'], /required option '--to <url>'/],
    [['simulate', '--to', 'http://127.0.0.1:9', '--orders', '0'], /must be an integer from 1/],
    [['simulate', '--to', 'http://127.0.0.1:9'], /no generic secret/],
    [['simulate', '--to', 'http://127.0.0.1:9', '--secret', testSecrets.genericSecret, '--verify'], /--verify needs --admin-token/],
    [['simulate', '--to', 'http://127.0.0.1:9', '--gateway', 'paypal'], /--gateway <name>' argument 'paypal' is invalid\. must be one of generic, alipay, wechatpay, stripe, standard/],
    [['simulate', '--to', 'http://127.0.0.1:9', '--gateway', 'stripe'], /no local stripe keys: run `paynotify keys`/],
    [['simulate', '--to', 'http://127.0.0.1:9', '--gateway', 'stripe', '--secret', testSecrets.genericSecret], /--secret is the generic gateway's/]
  ]
  for (const [args, message] of cases) {
    const run = await runCli(args, env)
    t.equal(run.code, 2, args.join(' '))
    t.match(run.stderr, message, args.join(' '))
  }
})
