// Issue 12, item 7: what keeping the last refused callbacks (src/http/refusals.ts) costs ingest. The
// service with its refusal store on (the default: PAYNOTIFY_REFUSALS_MAX=500, 1 MiB) against the same build
// with PAYNOTIFY_REFUSALS_MAX=0 (no store, no route, nothing recorded), under two loads:
//
// - accepted: signed generic callbacks (10 % gateway repeats, as in bench/ingest.js), each acked after its
//   commit (synchronous=FULL), at a steady BENCH_RATE (1,000 req/s) for BENCH_REQUESTS (9,000). The store is
//   not on this path at all, so the ratio should be 1.0 within the machine's noise.
// - refused: a storm of callbacks with a bad signature (each sent with the headers a gateway sends, two of
//   them secrets to redact) at BENCH_REFUSED_RATE (2,000 req/s) for BENCH_REQUESTS: every one is recorded,
//   so the store fills and then evicts one refusal per request.
//
// Server process CPU (/proc/<pid>/stat, every thread) per request. One server per variant, started once
// (1,000 warm-up requests of each load) and kept for every round; the variants in turn within each of
// BENCH_ROUNDS rounds (5), the order turning each round; each ratio is paired with the store-off run of its
// own round and load. On a shared 2-core machine two runs differ by ±10 % whatever they run, so the store's
// own work is also measured alone, in this process: RefusalStore.record of the refusals the storm sends (CPU
// of many calls, the least of 7 repetitions), over the store-off server's CPU per refused request. At the end
// the store-on server must have recorded every refusal sent and kept within its bounds.
//
// Loopback only; about three minutes. Usage: node bench/refusals.js
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { benchAdminToken, createBodyGenerator } from './lib/bodies.js'
import { runFixedRate } from './lib/fixed-rate.js'
import { machineInfo, root } from './lib/machine.js'
import { saveResult, writeReport } from './lib/report.js'
import { cpuSeconds, startPaynotify, threadCpuSeconds } from './lib/servers.js'
import { summarize } from './lib/stats.js'

const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 5))
const rate = Number(process.env.BENCH_RATE ?? 1000)
const refusedRate = Number(process.env.BENCH_REFUSED_RATE ?? 2000)
const requests = Number(process.env.BENCH_REQUESTS ?? 9000)
const warmup = 1000
const connections = 50
const targetRatio = 1.03

const variants = {
  on: { label: 'refusal store on (defaults: 500 refusals, 1 MiB)', env: {} },
  off: { label: 'refusal store off (PAYNOTIFY_REFUSALS_MAX=0)', env: { PAYNOTIFY_REFUSALS_MAX: '0' } }
}

// What a gateway's refused callback carries besides the body: a user agent, a request id, a signature and a token to redact.
const refusedHeaders = {
  'content-type': 'application/x-www-form-urlencoded',
  'user-agent': 'Mozilla/4.0 (compatible; gateway notifier)',
  'x-request-id': 'req-0123456789abcdef',
  'x-signature': 'sha256=4f1c2e0d9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d',
  authorization: 'Bearer not-a-real-token-0123456789'
}
const loads = {
  accepted: { label: 'accepted: signed generic callbacks (10 % repeats), acked after their commit', rate, path: '/notify/generic', headers: undefined, status: 200, generator: seed => createBodyGenerator({ prefix: `r${process.pid}x${seed}`, seed }) },
  refused: { label: 'refused: a storm of bad signatures (401), every one recorded', rate: refusedRate, path: '/notify/generic', headers: refusedHeaders, status: 401, generator: seed => createBodyGenerator({ prefix: `f${process.pid}x${seed}`, seed, repeatRatio: 0, secret: 'not-the-bench-secret-0123456789' }) }
}

function log (message) {
  process.stderr.write(`[refusals] ${message}\n`)
}

async function adminGet (url, path) {
  const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${benchAdminToken}` } })
  return { status: res.status, body: res.status === 200 ? await res.json() : undefined }
}

/** CPU µs per call of `fn`: the least over `reps` repetitions of `calls` calls (the least is the one other work disturbed least). */
function cpuPerCall (fn, calls, reps = 7) {
  let best = Infinity
  for (let rep = 0; rep < reps; rep++) {
    const before = process.cpuUsage()
    for (let i = 0; i < calls; i++) fn(i)
    const used = process.cpuUsage(before)
    best = Math.min(best, (used.user + used.system) / calls)
  }
  return best
}

/**
 * The store's own work, in this process, on the same build: µs per RefusalStore.record of the storm's
 * refusals (headers as Node parses them, the same bodies) in a full store that evicts one per record, and of
 * refusals with a 4 KiB body (1 KiB kept) and 30 headers.
 */
async function ownWork () {
  const { RefusalStore } = await import(join(root, 'dist', 'http', 'refusals.js'))
  const generator = loads.refused.generator(99)
  const bodies = Array.from({ length: 1000 }, () => Buffer.from(generator.next()))
  const headers = { host: '127.0.0.1:3000', connection: 'keep-alive', ...refusedHeaders, 'content-length': String(bodies[0].length) }
  const refusal = i => ({ at: new Date(1_800_000_000_000 + i), gateway: 'generic', statusCode: 401, code: 'bad_signature', message: 'sign: does not match the body', address: '127.0.0.1', headers, body: bodies[i % bodies.length] })
  const store = new RefusalStore()
  for (let i = 0; i < 2000; i++) store.record(refusal(i))
  const perRecord = cpuPerCall(i => { store.record(refusal(i)) }, 100_000)
  const big = Buffer.alloc(4096, 'a')
  const manyHeaders = { ...headers }
  for (let i = 0; i < 25; i++) manyHeaders[`x-extra-${i}`] = `value-${i}-${'v'.repeat(40)}`
  const large = new RefusalStore()
  const perLargeRecord = cpuPerCall(i => { large.record({ ...refusal(i), headers: manyHeaders, body: big }) }, 50_000)
  return { perRecord, perLargeRecord, refusedBodyBytes: bodies[0].length, stats: store.stats() }
}

let runCounter = 0

async function run ({ name, server }, loadName, amount) {
  const load = loads[loadName]
  const generator = load.generator(++runCounter)
  const cpuBefore = cpuSeconds(server.pid)
  const threadsBefore = threadCpuSeconds(server.pid)
  const result = await runFixedRate({ url: server.url, generator, rate: load.rate, amount, connections, path: load.path, ...(load.headers === undefined ? {} : { headers: load.headers }) })
  const cpuAfter = cpuSeconds(server.pid)
  const threadsAfter = threadCpuSeconds(server.pid)
  if (result.statuses[load.status] !== amount) throw new Error(`${name}, ${loadName}: ${result.statuses[load.status] ?? 0} of ${amount} answered ${load.status} (${JSON.stringify(result.statuses)}, ${result.errors} errors)`)
  return {
    cpuMicrosPerRequest: (cpuAfter - cpuBefore) * 1e6 / amount,
    mainThreadCpuMicrosPerRequest: (threadsAfter.main - threadsBefore.main) * 1e6 / amount,
    p50: result.latency.p50,
    p99: result.latency.p99
  }
}

const loadBefore = loadavg()[0]
const running = []
const cpu = Object.fromEntries(Object.keys(loads).map(loadName => [loadName, Object.fromEntries(Object.keys(variants).map(name => [name, []]))]))
let accounted
try {
  for (const [name, variant] of Object.entries(variants)) {
    const server = await startPaynotify({ env: variant.env })
    const entry = { name, variant, server }
    running.push(entry)
    for (const loadName of Object.keys(loads)) await run(entry, loadName, warmup)
  }
  log(`${requests} requests per run (accepted at ${rate}/s, refused at ${refusedRate}/s), ${rounds} rounds, variants ${Object.keys(variants).join(', ')}`)
  for (let round = 0; round < rounds; round++) {
    for (const loadName of Object.keys(loads)) {
      for (let k = 0; k < running.length; k++) {
        const entry = running[(round + k) % running.length]
        const result = await run(entry, loadName, requests)
        cpu[loadName][entry.name].push(result)
        log(`round ${round + 1}, ${loadName}, ${entry.name}: ${result.cpuMicrosPerRequest.toFixed(1)} µs CPU per request (HTTP thread ${result.mainThreadCpuMicrosPerRequest.toFixed(1)}), p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms`)
      }
    }
  }
  // The store-on server recorded every refusal sent and kept within its bounds; the store-off server has no route.
  const on = running.find(entry => entry.name === 'on')
  const off = running.find(entry => entry.name === 'off')
  const summary = await adminGet(on.server.url, '/admin/refusals/summary')
  const newest = await adminGet(on.server.url, '/admin/refusals?limit=1')
  const sent = warmup + rounds * requests
  const kept = summary.body.kept
  const offStatus = (await adminGet(off.server.url, '/admin/refusals')).status
  accounted = {
    sent,
    recorded: kept.recorded,
    kept,
    offRouteStatus: offStatus,
    newestRedacted: newest.body.refusals[0]?.headers.authorization === '[redacted]' && newest.body.refusals[0]?.headers['x-signature'] === '[redacted]',
    ok: kept.recorded === sent && kept.entries <= kept.maxEntries && kept.bytes <= kept.maxBytes && offStatus === 404
  }
  log(`the store-on server recorded ${kept.recorded} of ${sent} refusals sent, keeps ${kept.entries} (${kept.bytes} bytes, evicted ${kept.evicted}); store-off's route answered ${offStatus}`)
} finally {
  for (const { server } of running) {
    await server.stop()
    server.cleanup()
  }
}

const loadAfter = loadavg()[0]
const work = await ownWork()
const pick = (loadName, name, key) => summarize(cpu[loadName][name].map(r => r[key]))
const paired = (loadName, key = 'cpuMicrosPerRequest') => summarize(cpu[loadName].on.map((r, i) => r[key] / cpu[loadName].off[i][key]))
const offRefused = pick('refused', 'off', 'cpuMicrosPerRequest').median
const result = {
  machine: machineInfo(),
  settings: {
    rate,
    refusedRate,
    requests,
    rounds,
    warmup,
    connections,
    targetRatio,
    loadAverage: { before: loadBefore, after: loadAfter },
    variants: Object.fromEntries(Object.entries(variants).map(([name, v]) => [name, v.label])),
    loads: Object.fromEntries(Object.entries(loads).map(([name, l]) => [name, l.label]))
  },
  cpu: Object.fromEntries(Object.keys(loads).map(loadName => [loadName, Object.fromEntries(Object.keys(variants).map(name => [name, {
    cpuMicrosPerRequest: pick(loadName, name, 'cpuMicrosPerRequest'),
    mainThreadCpuMicrosPerRequest: pick(loadName, name, 'mainThreadCpuMicrosPerRequest'),
    p50: pick(loadName, name, 'p50'),
    p99: pick(loadName, name, 'p99')
  }]))])),
  ratios: Object.fromEntries(Object.keys(loads).map(loadName => [loadName, { pairedByRound: paired(loadName), mainThreadPairedByRound: paired(loadName, 'mainThreadCpuMicrosPerRequest') }])),
  ownWork: { ...work, offRefusedMicrosPerRequest: offRefused, estimatedRefusedRatio: 1 + work.perRecord / offRefused },
  accounted,
  runs: cpu
}
saveResult('refusals', result)
writeReport()
for (const loadName of Object.keys(loads)) {
  const r = result.ratios[loadName].pairedByRound
  log(`${loadName}: store on / off, server CPU per request: ${r.min.toFixed(3)} / ${r.median.toFixed(3)} / ${r.max.toFixed(3)}`)
}
log(`own work: ${work.perRecord.toFixed(2)} µs per recorded refusal (${work.perLargeRecord.toFixed(2)} µs with a 4 KiB body and 30 headers), ${(100 * work.perRecord / offRefused).toFixed(2)} % of the ${offRefused.toFixed(0)} µs a refused request costs the store-off server`)
if (accounted?.ok !== true) {
  log('FAILED: the store did not record every refusal sent within its bounds')
  process.exitCode = 1
}
