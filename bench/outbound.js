// Issue 11: outbound delivery of order.* messages to the merchant's endpoints. Two figures, in one run:
//
// 1. Deliveries/s to a local receiver (a plain HTTP server in this process on 127.0.0.1, answering
//    200, verifying every signature with the `standardwebhooks` library and checking each order's
//    messages arrive in version order). One endpoint takes every type; BENCH_ORDERS orders (5,000)
//    are registered (POST /orders) and then paid (signed generic callbacks) as fast as the service
//    acks them: 3 messages per order (order.updated on registration; order.updated and order.paid
//    on payment). Two ways, each on a fresh server:
//    - backlog: the receiver holds its answers until every callback is acked, then answers all:
//      deliveries / (time from opening to the last delivery) is the dispatcher's own rate;
//    - live: the receiver answers at once, deliveries run beside ingest: their rate from the
//      first delivery to the last, and how far delivery trails the last ack.
// 2. What one subscribed endpoint adds to ingest CPU: server process CPU (/proc/<pid>/stat, every
//    thread) per signed generic callback, at a steady BENCH_RATE (500 req/s: under what this
//    2-core machine serves while busy, so every variant commits in batches of the same size) for
//    BENCH_REQUESTS (1,500; 10 % gateway repeats, as in bench/ingest.js), counted from the first
//    callback until every delivery the run caused is recorded, for: no endpoint; one endpoint
//    taking every type (order.updated and order.paid per new order); one taking order.paid only;
//    and the every-type endpoint with its first attempt due in a day (its deliveries written with
//    each commit, none sent: what subscribing costs the ingest path itself). One server per
//    variant, started once (500 warm-up callbacks, their deliveries drained) and kept for every
//    round, so each round's runs meet the same history; the variants in turn within each of
//    BENCH_ROUNDS rounds (7), the order turning each round; medians, and each ratio paired with
//    the no-endpoint run of its own round. BENCH_BASELINE_DIST adds a build without the
//    outbox (e.g. the commit before it) as a further variant.
//
// Loopback only; stops by itself (about 3 minutes). Usage: node bench/outbound.js
import { once } from 'node:events'
import http from 'node:http'
import { join } from 'node:path'
import { loadavg } from 'node:os'
import SQLite from 'better-sqlite3'
import { Webhook } from 'standardwebhooks'
import { benchAdminToken, benchMerchantToken, createBodyGenerator, signedGenericBody } from './lib/bodies.js'
import { runFixedRate } from './lib/fixed-rate.js'
import { machineInfo } from './lib/machine.js'
import { saveResult, writeReport } from './lib/report.js'
import { cpuSeconds, startPaynotify, threadCpuSeconds } from './lib/servers.js'
import { ratio, summarize } from './lib/stats.js'

const orders = Number(process.env.BENCH_ORDERS ?? 5000)
const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 7))
const rate = Number(process.env.BENCH_RATE ?? 500)
const requests = Number(process.env.BENCH_REQUESTS ?? 1500)
const warmup = 500
const connections = 50
const baselineDist = process.env.BENCH_BASELINE_DIST
const targetRatio = 1.1

// The receiver holds answers during the backlog run: the attempts must not time out meanwhile.
const serverEnv = { PAYNOTIFY_OUTBOUND_ALLOW_PRIVATE: '1', PAYNOTIFY_OUTBOUND_TIMEOUT_MS: '60000' }
const adminHeaders = { authorization: `Bearer ${benchAdminToken}`, 'content-type': 'application/json' }

function log (message) {
  process.stderr.write(`[outbound] ${message}\n`)
}

/**
 * The merchant's service: counts, verifies and orders what each endpoint
 * (one path per endpoint) receives. While `hold` is set, answers wait for
 * release(); a webhook-id seen twice is counted as a repeat, not again.
 */
function createReceiver () {
  const endpoints = new Map()
  const held = []
  let hold = false
  const server = http.createServer((req, res) => {
    const chunks = []
    req.on('data', chunk => chunks.push(chunk))
    req.on('end', () => {
      const at = performance.now()
      const target = endpoints.get(req.url)
      if (target === undefined) {
        res.writeHead(404).end()
        return
      }
      const body = Buffer.concat(chunks).toString('utf8')
      try {
        const message = target.webhook.verify(body, req.headers)
        const id = req.headers['webhook-id']
        if (target.seen.has(id)) {
          target.repeats++
        } else {
          target.seen.add(id)
          target.first ??= at
          target.last = at
          const { order_id: orderId, version } = message.data
          if ((target.versions.get(orderId) ?? 0) > version) target.outOfOrder++
          target.versions.set(orderId, version)
        }
      } catch {
        target.badSignatures++
      }
      const answer = () => res.writeHead(200, { 'content-length': '0' }).end()
      if (hold) held.push(answer)
      else answer()
    })
  })
  return {
    async listen () {
      server.listen(0, '127.0.0.1')
      await once(server, 'listening')
      return `http://127.0.0.1:${server.address().port}`
    },
    /** Starts counting what arrives at `path`, verified with `secret`. */
    expect (path, secret) {
      const target = { webhook: new Webhook(secret), seen: new Set(), versions: new Map(), repeats: 0, badSignatures: 0, outOfOrder: 0, first: undefined, last: undefined }
      endpoints.set(path, target)
      return target
    },
    hold () { hold = true },
    /** Answers every held request, and the ones after at once; returns when it did. */
    release () {
      hold = false
      const at = performance.now()
      for (const answer of held.splice(0)) answer()
      return at
    },
    async close () {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    }
  }
}

async function admin (url, method, path, body) {
  const response = await fetch(`${url}${path}`, { method, headers: adminHeaders, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await response.text()
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`)
  return JSON.parse(text)
}

/**
 * POSTs every body to `path` on `connections` keep-alive sockets, each the
 * next as soon as the one before is answered (a closed loop: as fast as the
 * service acks). Resolves with the count of 2xx answers and the time of the last.
 */
async function postAll (url, path, headers, bodies) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections })
  const target = new URL(path, url)
  let next = 0
  let ok = 0
  const statuses = {}
  const worker = async () => {
    while (next < bodies.length) {
      const body = bodies[next++]
      const status = await new Promise(resolve => {
        const req = http.request(target, { method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, res => {
          res.resume()
          res.on('end', () => resolve(res.statusCode))
        })
        req.on('error', () => resolve('error'))
        req.end(body)
      })
      statuses[status] = (statuses[status] ?? 0) + 1
      if (status >= 200 && status < 300) ok++
    }
  }
  await Promise.all(Array.from({ length: connections }, worker))
  agent.destroy()
  if (ok !== bodies.length) throw new Error(`${path}: ${ok} of ${bodies.length} acked (${JSON.stringify(statuses)})`)
  return performance.now()
}

/** Orders that pay what they were registered for: the JSON registrations and the signed paid callbacks. */
function orderBodies (prefix, count) {
  const registrations = []
  const payments = []
  const timestamp = String(Math.floor(Date.now() / 1000))
  for (let n = 1; n <= count; n++) {
    const orderId = `${prefix}-${n}`
    const amount = `${(1 + (n % 997)) * 3}.${String(n % 100).padStart(2, '0')}`
    registrations.push(JSON.stringify({ order_id: orderId, amount, currency: 'CNY' }))
    payments.push(signedGenericBody({ order_id: orderId, amount, currency: 'CNY', status: '1', notify_id: `${prefix}-n${n}`, trade_no: `T${prefix}${n}`, timestamp }))
  }
  return { registrations, payments }
}

/** The deliveries the service has written, and those still pending or failed (read beside it, costing it nothing). */
function deliveryCounts (db) {
  return db.prepare(`SELECT count(*) AS total, coalesce(sum(state IN ('pending', 'failed')), 0) AS active, coalesce(sum(state = 'delivered'), 0) AS delivered
    FROM outbound_deliveries`).get()
}

/** Resolves once the receiver has every delivery the service wrote and the service has recorded them all. */
async function drained (db, target) {
  for (;;) {
    const counts = deliveryCounts(db)
    if (counts.active === 0 && target.seen.size >= counts.delivered) return counts
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

function openReadOnly (dbPath) {
  const db = new SQLite(dbPath, { readonly: true, fileMustExist: true })
  db.pragma('busy_timeout = 5000')
  return db
}

let runCounter = 0

/** Part 1: one run of BENCH_ORDERS orders registered then paid, the receiver holding (backlog) or not (live). */
async function deliveryRun (receiver, receiverUrl, mode) {
  const server = await startPaynotify({ env: serverEnv })
  const db = openReadOnly(server.dbPath)
  try {
    const path = `/hook/${++runCounter}`
    const endpoint = await admin(server.url, 'POST', '/admin/endpoints', { url: `${receiverUrl}${path}`, description: `bench ${mode}` })
    const target = receiver.expect(path, endpoint.secret)
    const { registrations, payments } = orderBodies(`o${process.pid}x${runCounter}`, orders)
    if (mode === 'backlog') receiver.hold()
    const cpuStarted = cpuSeconds(server.pid)
    const started = performance.now()
    await postAll(server.url, '/orders', { 'content-type': 'application/json', authorization: `Bearer ${benchMerchantToken}` }, registrations)
    const lastAck = await postAll(server.url, '/notify/generic', { 'content-type': 'application/x-www-form-urlencoded' }, payments)
    const cpuAcked = cpuSeconds(server.pid)
    const opened = mode === 'backlog' ? receiver.release() : undefined
    const counts = await drained(db, target)
    const cpuDrained = cpuSeconds(server.pid)
    const delivered = target.seen.size
    const result = {
      mode,
      deliveries: delivered,
      expected: orders * 3,
      written: counts.total,
      ingestSeconds: (lastAck - started) / 1000,
      callbacksPerSecond: (orders * 2) / ((lastAck - started) / 1000),
      // backlog: from opening the gate; live: from the first delivery (they run beside ingest).
      deliveriesPerSecond: delivered / ((target.last - (opened ?? target.first)) / 1000),
      endToEndSeconds: (target.last - started) / 1000,
      // backlog: the server's CPU while it only delivered (after the last ack), per delivery; live: all of it, per request.
      cpuMicrosPerDelivery: mode === 'backlog' ? (cpuDrained - cpuAcked) * 1e6 / delivered : undefined,
      cpuMicrosPerRequest: mode === 'live' ? (cpuDrained - cpuStarted) * 1e6 / (orders * 2) : (cpuAcked - cpuStarted) * 1e6 / (orders * 2),
      trailSeconds: (target.last - lastAck) / 1000,
      repeats: target.repeats,
      badSignatures: target.badSignatures,
      outOfOrder: target.outOfOrder,
      notDelivered: counts.total - counts.delivered
    }
    log(`${mode}: ${delivered} deliveries (${counts.total} written) at ${result.deliveriesPerSecond.toFixed(0)}/s` +
      (mode === 'backlog' ? ` (server CPU ${result.cpuMicrosPerDelivery.toFixed(0)} µs per delivery)` : '') + '; ' +
      `${(orders * 2)} requests acked in ${result.ingestSeconds.toFixed(1)} s, last delivery ${result.trailSeconds.toFixed(1)} s after the last ack; ` +
      `${result.badSignatures} bad signatures, ${result.outOfOrder} out of order, ${result.repeats} repeats`)
    return result
  } finally {
    db.close()
    await server.stop()
    server.cleanup()
  }
}

const variants = {
  none: { label: 'no endpoint', events: null },
  all: { label: 'one endpoint, every type', events: [] },
  paid: { label: 'one endpoint, order.paid only', events: ['order.paid'] },
  // The same endpoint with its first attempt due in a day: the deliveries are written with each commit and none is sent, so this is what subscribing adds to the ingest path itself.
  allUnsent: { label: 'one endpoint, every type, none sent yet (first attempt due in 1 d)', events: [], env: { PAYNOTIFY_OUTBOUND_RETRY_SCHEDULE: '1d' }, unsent: true }
}
if (baselineDist !== undefined) variants.before = { label: process.env.BENCH_BASELINE_LABEL ?? `no outbox (${baselineDist})`, events: null, dist: baselineDist }

/**
 * Part 2: a variant's server, started once and kept for every round (so each
 * round's runs meet the same amount of history), its endpoint created and
 * 500 warm-up callbacks sent and delivered.
 */
async function startVariant (receiver, receiverUrl, name) {
  const variant = variants[name]
  const server = await startPaynotify({ env: { ...serverEnv, ...variant.env }, dist: variant.dist })
  const db = variant.dist === undefined ? openReadOnly(server.dbPath) : undefined
  const path = `/hook/${++runCounter}`
  let target
  if (variant.events !== null) {
    const body = { url: `${receiverUrl}${path}`, description: `bench ${name}` }
    if (variant.events.length > 0) body.events = variant.events
    const endpoint = await admin(server.url, 'POST', '/admin/endpoints', body)
    target = receiver.expect(path, endpoint.secret)
  }
  const running = { name, variant, server, db, target }
  await cpuRun(running, warmup)
  return running
}

/** One measured run: `amount` callbacks at BENCH_RATE, the server's CPU counted until every delivery they caused is recorded. */
async function cpuRun ({ name, variant, server, db, target }, amount) {
  const generator = createBodyGenerator({ prefix: `c${process.pid}x${++runCounter}`, seed: runCounter })
  const before = db === undefined ? 0 : deliveryCounts(db).total
  const cpuBefore = cpuSeconds(server.pid)
  const threadsBefore = threadCpuSeconds(server.pid)
  const load = await runFixedRate({ url: server.url, generator, rate, amount, connections })
  const counts = target === undefined ? undefined : variant.unsent === true ? deliveryCounts(db) : await drained(db, target)
  const cpuAfter = cpuSeconds(server.pid)
  const threadsAfter = threadCpuSeconds(server.pid)
  if (load.ok !== amount) throw new Error(`${name}: ${load.ok} of ${amount} callbacks acked (${JSON.stringify(load.statuses)})`)
  return {
    cpuMicrosPerRequest: (cpuAfter - cpuBefore) * 1e6 / amount,
    mainThreadCpuMicrosPerRequest: (threadsAfter.main - threadsBefore.main) * 1e6 / amount,
    otherThreadsCpuMicrosPerRequest: (threadsAfter.others - threadsBefore.others) * 1e6 / amount,
    deliveries: counts === undefined ? 0 : counts.total - before,
    notDelivered: counts === undefined || variant.unsent === true ? 0 : counts.total - counts.delivered,
    badSignatures: target?.badSignatures ?? 0,
    outOfOrder: target?.outOfOrder ?? 0,
    p50: load.latency.p50,
    p99: load.latency.p99
  }
}

const loadBefore = loadavg()[0]
const receiver = createReceiver()
const receiverUrl = await receiver.listen()
const delivery = { backlog: [], live: [] }
const cpu = Object.fromEntries(Object.keys(variants).map(name => [name, []]))
const running = []
try {
  log(`part 1: ${orders} orders registered and paid, 3 messages each`)
  delivery.backlog.push(await deliveryRun(receiver, receiverUrl, 'backlog'))
  delivery.live.push(await deliveryRun(receiver, receiverUrl, 'live'))
  log(`part 2: ${requests} callbacks at ${rate}/s per run, ${rounds} rounds`)
  for (const name of Object.keys(variants)) running.push(await startVariant(receiver, receiverUrl, name))
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < running.length; k++) {
      const variant = running[(round + k) % running.length]
      const result = await cpuRun(variant, requests)
      cpu[variant.name].push(result)
      log(`${variant.name}: ${result.cpuMicrosPerRequest.toFixed(0)} µs CPU per callback (HTTP thread ${result.mainThreadCpuMicrosPerRequest.toFixed(0)}, ` +
        `other threads ${result.otherThreadsCpuMicrosPerRequest.toFixed(0)}), ${result.deliveries} deliveries, p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms`)
    }
  }
} finally {
  for (const { server, db } of running) {
    db?.close()
    await server.stop()
    server.cleanup()
  }
  await receiver.close()
}

const cpuSummary = Object.fromEntries(Object.entries(cpu).map(([name, runs]) => [name, {
  cpuMicrosPerRequest: summarize(runs.map(r => r.cpuMicrosPerRequest)),
  mainThreadCpuMicrosPerRequest: summarize(runs.map(r => r.mainThreadCpuMicrosPerRequest)),
  otherThreadsCpuMicrosPerRequest: summarize(runs.map(r => r.otherThreadsCpuMicrosPerRequest)),
  deliveriesPerRequest: summarize(runs.map(r => r.deliveries / requests)),
  p50: summarize(runs.map(r => r.p50)),
  p99: summarize(runs.map(r => r.p99))
}]))
// Each variant over no endpoint, paired run by run within a round (they shared the machine's conditions), and median over median.
const paired = name => summarize(cpu[name].map((r, i) => r.cpuMicrosPerRequest / cpu.none[i].cpuMicrosPerRequest))
const ratios = Object.fromEntries(Object.keys(variants).filter(name => name !== 'none').map(name => [name, {
  pairedByRound: paired(name),
  medianOverMedian: ratio(cpuSummary[name].cpuMicrosPerRequest, cpuSummary.none.cpuMicrosPerRequest)
}]))
const allRuns = [...delivery.backlog, ...delivery.live, ...Object.values(cpu).flat()]
const correctness = {
  badSignatures: allRuns.reduce((n, r) => n + r.badSignatures, 0),
  outOfOrder: allRuns.reduce((n, r) => n + r.outOfOrder, 0),
  notDelivered: allRuns.reduce((n, r) => n + r.notDelivered, 0)
}
correctness.passed = correctness.badSignatures === 0 && correctness.outOfOrder === 0 && correctness.notDelivered === 0 &&
  [...delivery.backlog, ...delivery.live].every(r => r.deliveries === r.expected && r.written === r.expected)

saveResult('outbound', {
  machine: machineInfo(),
  settings: {
    orders,
    rounds,
    rate,
    requests,
    warmup,
    connections,
    repeatRatio: 0.1,
    targetRatio,
    // The machine's 1-minute load average at the start and the end: other work shares its 2 cores.
    loadAverage: [loadBefore, loadavg()[0]],
    variants: Object.fromEntries(Object.entries(variants).map(([k, v]) => [k, v.label]))
  },
  delivery,
  cpu: cpuSummary,
  ratios,
  correctness,
  runs: cpu
})
writeReport()
log(`wrote ${join('bench', 'results', 'outbound.json')} and bench/RESULTS.md`)
