// Issue 12: what the Prometheus metrics cost a durable callback. The service with its metrics on (the
// default: every answer timed by route, every callback counted, every commit's size and time observed,
// and GET /metrics scraped every BENCH_SCRAPE_MS, 1 s, where Prometheus usually scrapes every 15 to 60 s)
// against the same build with PAYNOTIFY_METRICS=0 (no hook, no counter, no route), and optionally
// BENCH_BASELINE_DIST, a build from before the metrics (e.g. the parent commit's dist/).
//
// Server process CPU (/proc/<pid>/stat, every thread) per signed generic callback, each acked only after
// its commit (synchronous=FULL), at a steady BENCH_RATE (1,000 req/s: under what this busy 2-core machine
// serves, so every variant commits in batches of the same size) for BENCH_REQUESTS (9,000; 10 % gateway
// repeats, as in bench/ingest.js). One server per variant, started once (1,000 warm-up callbacks) and kept
// for every round, so each round's runs meet the same history; the variants in turn within each of
// BENCH_ROUNDS rounds (5), the order turning each round; each ratio is paired with the metrics-off run of
// its own round. At the end the metrics server's own counters must account for every callback sent.
//
// On a shared 2-core machine two such runs differ by ±10 % whatever they run, so the A/B cannot
// resolve 3 %. The added work is also measured on its own, in this process (CPU of many calls, the
// least of several repetitions): what the service does per answered request (Metrics.request and
// Metrics.callback), per commit (Metrics.commit, shared by the events of a batch: the events per
// commit the metrics server itself reported), and per scrape (Metrics.render with the default process
// metrics, shared by the callbacks of one scrape interval), over the metrics-off server's CPU per callback.
//
// Loopback only; about two minutes. Usage: node bench/metrics.js
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
const requests = Number(process.env.BENCH_REQUESTS ?? 9000)
const scrapeMs = Number(process.env.BENCH_SCRAPE_MS ?? 1000)
const warmup = 1000
const connections = 50
const targetRatio = 1.03
const baselineDist = process.env.BENCH_BASELINE_DIST

const variants = {
  on: { label: 'metrics on (defaults), scraped every second', env: {}, scrape: true },
  off: { label: 'metrics off (PAYNOTIFY_METRICS=0)', env: { PAYNOTIFY_METRICS: '0' }, scrape: false }
}
if (baselineDist !== undefined) variants.before = { label: process.env.BENCH_BASELINE_LABEL ?? `no metrics code (${baselineDist})`, env: {}, scrape: false, dist: baselineDist }

function log (message) {
  process.stderr.write(`[metrics] ${message}\n`)
}

async function fetchMetrics (url) {
  const started = performance.now()
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${benchAdminToken}` } })
  const text = await res.text()
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`)
  return { text, ms: performance.now() - started }
}

/** Scrapes every scrapeMs until stopped; stop() resolves with the number of scrapes, after the one in flight. */
function startScraper (url) {
  let stopped = false
  let timer
  let wake
  const loop = (async () => {
    let scrapes = 0
    for (;;) {
      await new Promise(resolve => { wake = resolve; timer = setTimeout(resolve, scrapeMs) })
      if (stopped) return scrapes
      await fetchMetrics(url)
      scrapes++
    }
  })()
  return {
    stop: async () => {
      stopped = true
      clearTimeout(timer)
      wake()
      return await loop
    }
  }
}

/** CPU µs per call of `fn`: the least over `reps` repetitions of `calls` calls (the least is the one other work disturbed least). */
async function cpuPerCall (fn, calls, reps = 7) {
  let best = Infinity
  for (let rep = 0; rep < reps; rep++) {
    const before = process.cpuUsage()
    for (let i = 0; i < calls; i++) await fn(i)
    const used = process.cpuUsage(before)
    best = Math.min(best, (used.user + used.system) / calls)
  }
  return best
}

/** The metrics' own work, in this process, on the same build: µs per request, per commit and per scrape. */
async function ownWork (batchEvents) {
  const { Metrics } = await import(join(root, 'dist', 'metrics.js'))
  const metrics = new Metrics({ gateways: ['generic'], logPosition: () => 46_000, ordersNeedingReview: async () => 3 })
  // A durable callback's answer times spread over the buckets, as under load.
  const perRequest = await cpuPerCall(i => {
    metrics.request('/notify/generic', 'POST', 200, 0.001 + (i % 13) * 0.002)
    metrics.callback('generic', i % 10 === 0 ? 'duplicate' : 'accepted')
  }, 200_000)
  const perCommit = await cpuPerCall(i => { metrics.commit({ events: batchEvents, seconds: 0.002 + (i % 7) * 0.001 }) }, 100_000)
  const perScrape = await cpuPerCall(async () => { await metrics.render() }, 200)
  return { perRequest, perCommit, perScrape }
}

let runCounter = 0

async function run ({ name, variant, server }, amount) {
  const generator = createBodyGenerator({ prefix: `m${process.pid}x${++runCounter}`, seed: runCounter })
  const cpuBefore = cpuSeconds(server.pid)
  const threadsBefore = threadCpuSeconds(server.pid)
  const scraper = variant.scrape ? startScraper(server.url) : undefined
  const load = await runFixedRate({ url: server.url, generator, rate, amount, connections })
  const scrapes = await scraper?.stop() ?? 0
  const cpuAfter = cpuSeconds(server.pid)
  const threadsAfter = threadCpuSeconds(server.pid)
  if (load.ok !== amount) throw new Error(`${name}: ${load.ok} of ${amount} callbacks acked (${JSON.stringify(load.statuses)})`)
  return {
    cpuMicrosPerRequest: (cpuAfter - cpuBefore) * 1e6 / amount,
    mainThreadCpuMicrosPerRequest: (threadsAfter.main - threadsBefore.main) * 1e6 / amount,
    otherThreadsCpuMicrosPerRequest: (threadsAfter.others - threadsBefore.others) * 1e6 / amount,
    scrapes,
    p50: load.latency.p50,
    p99: load.latency.p99
  }
}

const loadBefore = loadavg()[0]
const running = []
const cpu = Object.fromEntries(Object.keys(variants).map(name => [name, []]))
let accounted
let scrape
try {
  for (const [name, variant] of Object.entries(variants)) {
    const server = await startPaynotify({ env: variant.env, dist: variant.dist })
    const entry = { name, variant, server }
    await run(entry, warmup)
    running.push(entry)
  }
  log(`${requests} callbacks at ${rate}/s per run, ${rounds} rounds, variants ${Object.keys(variants).join(', ')}`)
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < running.length; k++) {
      const entry = running[(round + k) % running.length]
      const result = await run(entry, requests)
      cpu[entry.name].push(result)
      log(`round ${round + 1}, ${entry.name}: ${result.cpuMicrosPerRequest.toFixed(1)} µs CPU per callback (HTTP thread ${result.mainThreadCpuMicrosPerRequest.toFixed(1)}, ` +
        `other threads ${result.otherThreadsCpuMicrosPerRequest.toFixed(1)}), ${result.scrapes} scrapes, p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms`)
    }
  }
  // The counters of the server measured: every callback sent is in them (the 10 % repeats as duplicates).
  const on = running.find(entry => entry.name === 'on')
  scrape = await fetchMetrics(on.server.url)
  const value = series => Number(scrape.text.split('\n').find(line => line.startsWith(`${series} `))?.split(' ')[1] ?? NaN)
  const accepted = value('paynotify_callbacks_total{gateway="generic",outcome="accepted"}')
  const duplicate = value('paynotify_callbacks_total{gateway="generic",outcome="duplicate"}')
  const sent = warmup + rounds * requests
  const batchEvents = value('paynotify_append_batch_events_sum') / value('paynotify_append_batch_events_count')
  accounted = { sent, accepted, duplicate, ok: accepted + duplicate === sent, position: value('paynotify_event_log_position'), batchEvents }
  log(`the metrics server counted ${accepted} accepted + ${duplicate} duplicate = ${accepted + duplicate} of ${sent} callbacks sent; log position ${accounted.position}`)
} finally {
  for (const { server } of running) {
    await server.stop()
    server.cleanup()
  }
}

const loadAfter = loadavg()[0]
const work = await ownWork(accounted.batchEvents)
const offCpu = summarize(cpu.off.map(r => r.cpuMicrosPerRequest)).median
const addedMicros = work.perRequest + work.perCommit / accounted.batchEvents + work.perScrape / (rate * scrapeMs / 1000)
log(`own work: ${work.perRequest.toFixed(2)} µs per request, ${work.perCommit.toFixed(2)} µs per commit (${accounted.batchEvents.toFixed(1)} events), ${(work.perScrape / 1000).toFixed(2)} ms per scrape: ` +
  `${addedMicros.toFixed(2)} µs per callback at ${rate}/s, ${(100 * addedMicros / offCpu).toFixed(2)} % of ${offCpu.toFixed(0)} µs`)
const pick = (name, key) => summarize(cpu[name].map(r => r[key]))
const paired = name => summarize(cpu[name].map((r, i) => r.cpuMicrosPerRequest / cpu.off[i].cpuMicrosPerRequest))
const pairedMain = name => summarize(cpu[name].map((r, i) => r.mainThreadCpuMicrosPerRequest / cpu.off[i].mainThreadCpuMicrosPerRequest))
const result = {
  machine: machineInfo(),
  settings: {
    rate,
    requests,
    rounds,
    warmup,
    connections,
    scrapeMs,
    repeatRatio: 0.1,
    targetRatio,
    loadAverage: { before: loadBefore, after: loadAfter },
    variants: Object.fromEntries(Object.entries(variants).map(([name, v]) => [name, v.label]))
  },
  cpu: Object.fromEntries(Object.keys(variants).map(name => [name, {
    cpuMicrosPerRequest: pick(name, 'cpuMicrosPerRequest'),
    mainThreadCpuMicrosPerRequest: pick(name, 'mainThreadCpuMicrosPerRequest'),
    otherThreadsCpuMicrosPerRequest: pick(name, 'otherThreadsCpuMicrosPerRequest'),
    p50: pick(name, 'p50'),
    p99: pick(name, 'p99'),
    scrapes: cpu[name].reduce((n, r) => n + r.scrapes, 0)
  }])),
  ratios: Object.fromEntries(Object.keys(variants).filter(name => name !== 'off').map(name => [name, { pairedByRound: paired(name), mainThreadPairedByRound: pairedMain(name) }])),
  ownWork: { ...work, batchEvents: accounted.batchEvents, addedMicrosPerRequest: addedMicros, offMicrosPerRequest: offCpu, estimatedRatio: 1 + addedMicros / offCpu },
  scrape: { bytes: Buffer.byteLength(scrape?.text ?? ''), series: (scrape?.text ?? '').split('\n').filter(line => line !== '' && !line.startsWith('#')).length, ms: scrape?.ms },
  accounted,
  runs: cpu
}
saveResult('metrics', result)
writeReport()
const r = result.ratios.on.pairedByRound
log(`metrics on / off, server CPU per callback: ${r.min.toFixed(3)} / ${r.median.toFixed(3)} / ${r.max.toFixed(3)} (target ≤ ${targetRatio})`)
if (accounted?.ok !== true) {
  log('FAILED: the metrics do not account for every callback sent')
  process.exitCode = 1
}
