// The console's read paths on a 1M-event database (issue 12: "an order page on a 1M-event
// database answers in under 200 ms of server time"). Builds the database once, cached in the
// temp dir (bench/generate-log.js for ~975k realistic events, then a few orders with thousands
// of deliveries each), starts the real service on it, signs in through the console's form and
// requests each page N times in turn, one request at a time. Server time is fastify's own
// responseTime for the request (its "request completed" log line, matched by request id);
// the client's time on 127.0.0.1 (request sent → whole body read) is kept beside it.
// Usage: node bench/console.js [runs=21]   (npm run build first)
// Env: BENCH_CONSOLE_DB=<path> to build or reuse the database elsewhere; BENCH_CONSOLE_FRESH=1 to rebuild it.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { benchAdminToken, benchSecret, seededRandom, signedGenericBody } from './lib/bodies.js'
import { machineInfo, root } from './lib/machine.js'
import { saveResult } from './lib/report.js'
import { startPaynotify } from './lib/servers.js'
import { summarize } from './lib/stats.js'

const runs = Number(process.argv[2] ?? 21)
const warmups = 3
const targetMs = 200
const realisticEvents = 975_000
// Orders with thousands of deliveries: [order id, deliveries].
const heavyOrders = [['HEAVY-0', 10_000], ['HEAVY-1', 5_000], ['HEAVY-2', 5_000], ...Array.from({ length: 5 }, (_, i) => [`HEAVY-${i + 3}`, 1_000])]
// Bump when the generated content changes, so an old cache is not reused.
const cacheVersion = 1

const log = line => process.stderr.write(`${line}\n`)
const cacheDir = join(tmpdir(), `paynotify-bench-console-v${cacheVersion}`)
const dbPath = process.env.BENCH_CONSOLE_DB ?? join(cacheDir, 'console.db')
const readyMark = `${dbPath}.ready.json`

/** Appends the heavy orders through paynotify's own EventLog: retries with new notify ids (fact repeats), byte-for-byte resends (delivery repeats). */
async function appendHeavyOrders () {
  const { openStore } = await import(join(root, 'dist', 'store.js'))
  const store = await openStore(dbPath, { synchronous: 'NORMAL' })
  const random = seededRandom(12)
  let request = 0
  const at = () => new Date(Date.UTC(2026, 11, 1) + request * 10).toISOString()
  try {
    for (const [orderId, deliveries] of heavyOrders) {
      const events = [{
        streamId: orderId,
        type: 'OrderPlaced',
        data: { orderId, amount: 8888, currency: 'CNY' },
        metadata: { gateway: 'merchant', deliveryId: `order:${orderId}:8888:CNY`, receivedAt: at(), requestId: `hv-${++request}` }
      }]
      const sent = []
      while (events.length < deliveries) {
        // One in five a byte-for-byte resend of an earlier delivery (at most 32 of one id are stored).
        const resend = sent.length > 0 && random() < 0.2 ? sent[Math.floor(random() * sent.length)] : undefined
        if (resend !== undefined) {
          events.push({ ...resend, metadata: { ...resend.metadata, receivedAt: at(), requestId: `hv-${++request}` } })
          continue
        }
        const paid = events.length % 10 === 1
        const notifyId = `${orderId}-n${events.length}`
        const params = { order_id: orderId, amount: '88.88', currency: 'CNY', status: paid ? '1' : '0', trade_no: `T-${orderId}`, notify_id: notifyId, subject: 'Heavy order retried by its gateway' }
        const event = {
          streamId: orderId,
          type: paid ? 'PaymentSucceeded' : 'PaymentPending',
          data: { orderId, amount: 8888, currency: 'CNY', gateway: 'generic', transactionId: `T-${orderId}`, refundId: null, cumulative: false, gatewayStatus: params.status, gatewayTime: null },
          metadata: { gateway: 'generic', deliveryId: notifyId, receivedAt: at(), requestId: `hv-${++request}`, raw: { body: signedGenericBody(params, benchSecret), encoding: 'utf8', contentType: 'application/x-www-form-urlencoded', headers: {} } }
        }
        sent.push(event)
        events.push(event)
      }
      for (let i = 0; i < events.length; i += 1000) await store.eventLog.append(events.slice(i, i + 1000))
    }
    const stats = store.sqlite.prepare('SELECT (SELECT count(*) FROM events) AS events, (SELECT count(*) FROM orders) AS orders, (SELECT count(*) FROM orders WHERE needs_review = 1) AS review').get()
    const heaviest = store.sqlite.prepare('SELECT stream_id AS orderId, count(*) AS events FROM events GROUP BY stream_id ORDER BY count(*) DESC LIMIT 1').get()
    return { ...stats, heaviest }
  } finally {
    await store.close()
  }
}

async function buildDatabase () {
  if (existsSync(readyMark) && process.env.BENCH_CONSOLE_FRESH !== '1') {
    log(`reusing ${dbPath}`)
    return JSON.parse(readFileSync(readyMark, 'utf8'))
  }
  mkdirSync(join(dbPath, '..'), { recursive: true })
  for (const suffix of ['', '-wal', '-shm', '.ready.json']) rmSync(`${dbPath}${suffix}`, { force: true })
  log(`generating ${realisticEvents.toLocaleString('en-US')} events with bench/generate-log.js into ${dbPath} …`)
  const started = performance.now()
  const generated = JSON.parse(execFileSync(process.execPath, [join(root, 'bench', 'generate-log.js'), dbPath, String(realisticEvents)], { cwd: root, encoding: 'utf8', timeout: 60 * 60_000 }).trim())
  log(`… and ${heavyOrders.length} orders with ${heavyOrders.map(([, n]) => n).join(', ')} deliveries`)
  const database = { ...await appendHeavyOrders(), repeats: generated.repeats, generateSeconds: (performance.now() - started) / 1000 }
  writeFileSync(readyMark, JSON.stringify(database, null, 2))
  log(`built in ${database.generateSeconds.toFixed(0)} s: ${JSON.stringify(database)}`)
  return database
}

/** `paynotify serve` on the database, logging every request; resolves once /healthz answers (a first start verifies the whole chain: minutes). */
async function startService () {
  const started = performance.now()
  const service = await startPaynotify({ env: { PAYNOTIFY_DB: dbPath, PAYNOTIFY_LOG_LEVEL: 'info' }, readyTimeoutMs: 30 * 60_000 })
  log(`service ready in ${((performance.now() - started) / 1000).toFixed(1)} s`)
  return {
    url: service.url,
    logFile: join(service.dir, 'server.log'),
    stop: async () => {
      await service.stop()
      service.cleanup()
    }
  }
}

async function signIn (url) {
  const res = await fetch(`${url}/console/sign-in`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: benchAdminToken }).toString() })
  const cookie = res.headers.getSetCookie().find(c => c.startsWith('paynotify_console='))
  if (res.status !== 303 || cookie === undefined) throw new Error(`sign-in failed: ${res.status}`)
  return cookie.split(';')[0]
}

/** fastify's responseTime of each request, by request id (its log lines). */
function serverTimes (logFile) {
  const times = new Map()
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes('"request completed"')) continue
    const entry = JSON.parse(line)
    times.set(entry.reqId, entry.responseTime)
  }
  return times
}

async function main () {
  const database = await buildDatabase()
  const service = await startService()
  try {
    const cookie = await signIn(service.url)
    const sample = await (await fetch(`${service.url}/admin/orders?status=paid&limit=500`, { headers: { authorization: `Bearer ${benchAdminToken}` } })).json()
    const typical = sample.orders[250]
    const heaviest = database.heaviest
    // Recorded times are the generator's wall clock: a window of two minutes around a typical order's last event.
    const around = Date.parse(typical.updatedAt)
    const window = (offset) => new Date(around + offset).toISOString().slice(0, 19)
    const pages = [
      ['order page, heaviest order, first timeline page', `/console/orders/${heaviest.orderId}`],
      ['order page, heaviest order, last timeline page', `/console/orders/${heaviest.orderId}?cursor=${heaviest.events - 50}`],
      ['timeline fragment (live), heaviest order', `/console/orders/${heaviest.orderId}/timeline`],
      ['order page, typical order', `/console/orders/${typical.orderId}`],
      ['orders list, no filter', '/console/orders'],
      ['orders list, status=refunded', '/console/orders?status=refunded'],
      ['orders list, anomaly=amount_mismatch', '/console/orders?anomaly=amount_mismatch'],
      ['orders list, needs review', '/console/orders?review=yes'],
      ['orders list, gateway + currency + time range', `/console/orders?gateway=generic&currency=CNY&time=updated&from=${window(-60_000)}&to=${window(60_000)}`],
      ['orders list, search by transaction id', `/console/orders?q=${encodeURIComponent(typical.gatewayTradeNo)}`],
      ['orders list, search by delivery id', `/console/orders?q=${encodeURIComponent(`${typical.orderId}-1-${typical.gatewayTradeNo}`)}`],
      ['review queue', '/console/review'],
      ['orders export, CSV, status=closed (capped at 10,000)', '/console/export/orders?format=csv&status=closed']
    ]
    const samples = new Map(pages.map(([name]) => [name, { ids: [], client: [], bytes: 0, status: 0 }]))
    for (let round = 0; round < warmups + runs; round++) {
      for (const [name, path] of pages) {
        const started = performance.now()
        const res = await fetch(`${service.url}${path}`, { headers: { cookie } })
        const body = await res.arrayBuffer()
        const elapsed = performance.now() - started
        if (res.status !== 200) throw new Error(`${path}: ${res.status} ${Buffer.from(body).toString().slice(0, 300)}`)
        if (round < warmups) continue
        const sample = samples.get(name)
        sample.client.push(elapsed)
        sample.bytes = body.byteLength
        sample.status = res.status
      }
    }
    // The request ids are not in the answers: the log's lines for each path, in the order sent.
    const times = serverTimes(service.logFile)
    const byUrl = new Map()
    for (const line of readFileSync(service.logFile, 'utf8').split('\n')) {
      if (!line.includes('"incoming request"')) continue
      const entry = JSON.parse(line)
      const list = byUrl.get(entry.req.url) ?? []
      list.push(times.get(entry.reqId))
      byUrl.set(entry.req.url, list)
    }
    const figures = pages.map(([name, path]) => {
      const server = (byUrl.get(path) ?? []).slice(warmups).filter(v => typeof v === 'number')
      const sample = samples.get(name)
      return { name, path, bytes: sample.bytes, serverMs: summarize(server), clientMs: summarize(sample.client) }
    })
    const orderPages = figures.filter(f => f.name.startsWith('order page'))
    const result = {
      machine: machineInfo(),
      runs,
      warmups,
      database: { ...database, path: dbPath, realisticEvents, heavyOrders },
      targetMs,
      orderPageTargetMet: orderPages.every(f => f.serverMs.median < targetMs),
      description: 'Server time: fastify\'s responseTime of each request (its log line); client: request sent to body read, on 127.0.0.1. One request at a time, pages in turn, after warm-up rounds.',
      figures
    }
    saveResult('console', result)
    for (const f of figures) log(`${f.name.padEnd(55)} server ${f.serverMs.median.toFixed(1).padStart(7)} ms (min ${f.serverMs.min.toFixed(1)}, max ${f.serverMs.max.toFixed(1)})  client ${f.clientMs.median.toFixed(1).padStart(7)} ms  ${f.bytes} B`)
    log(`order pages under ${targetMs} ms of server time: ${result.orderPageTargetMet}`)
  } finally {
    await service.stop()
  }
}

await main()
