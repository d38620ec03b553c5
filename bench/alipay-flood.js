// Issue 10 §1: a flood of unsigned Alipay bodies beside legitimate generic callbacks.
// The flood (BENCH_FLOOD_RATE, 50 req/s) posts bodies nobody signed to /notify/alipay
// while signed generic callbacks arrive at a steady BENCH_LEGIT_RATE (100 req/s); the
// figure is the generic callbacks' latency. Flood bodies: 63 KB of about 8,000 fields
// (over Alipay's 16 KiB limit), and 16 KB of about 2,000 fields (just under it, so the
// parameter cap is what refuses them), each with charset=gbk, as the attacker
// sent them; plus a run with no flood for reference. Every scenario runs on a fresh
// server, in turn, BENCH_ROUNDS times (3), BENCH_SECONDS (15) each.
// BENCH_BASELINE_DIST names another build (e.g. main's dist, or a copy of it taken
// before a change) to run the same rounds against, side by side: the before figure
// (BENCH_BASELINE_LABEL names it in the report).
// Usage: node bench/alipay-flood.js
import { generateKeyPairSync } from 'node:crypto'
import { loadavg } from 'node:os'
import { createBodyGenerator } from './lib/bodies.js'
import { runFixedRate } from './lib/fixed-rate.js'
import { machineInfo } from './lib/machine.js'
import { saveResult, writeReport } from './lib/report.js'
import { cpuSeconds, startPaynotify } from './lib/servers.js'
import { summarize } from './lib/stats.js'

const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3))
const seconds = Number(process.env.BENCH_SECONDS ?? 15)
const floodRate = Number(process.env.BENCH_FLOOD_RATE ?? 50)
const legitRate = Number(process.env.BENCH_LEGIT_RATE ?? 100)
const baselineDist = process.env.BENCH_BASELINE_DIST

const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
const alipayEnv = {
  PAYNOTIFY_ALIPAY_PUBLIC_KEY: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  PAYNOTIFY_ALIPAY_APP_ID: '2021000000000001'
}

/**
 * An unsigned Alipay body of about `bytes` bytes: charset=gbk, a junk sign,
 * then distinct one-character fields until full (valid GBK, so a parser that
 * decodes per field decodes every one).
 */
function floodBody (bytes) {
  let body = `charset=gbk&sign_type=RSA2&sign=${'A'.repeat(344)}`
  let fields = 0
  for (let i = 0; body.length < bytes - 12; i++, fields++) body += `&f${i.toString(36)}=x`
  return { body, fields, bytes: Buffer.byteLength(body) }
}

const scenarios = {
  none: { label: 'no flood (reference)', flood: null },
  flood63k: { label: 'unsigned 63 KB Alipay bodies', flood: floodBody(63 * 1024) },
  flood16k: { label: 'unsigned 16 KB Alipay bodies', flood: floodBody(16 * 1024 - 64) }
}

const builds = { after: { label: 'this build', dist: undefined } }
if (baselineDist !== undefined) builds.before = { label: process.env.BENCH_BASELINE_LABEL ?? `before (${baselineDist})`, dist: baselineDist }

function log (message) {
  process.stderr.write(`[alipay-flood] ${message}\n`)
}

let runCounter = 0

async function measure (buildName, scenarioName) {
  const scenario = scenarios[scenarioName]
  const server = await startPaynotify({ env: alipayEnv, dist: builds[buildName].dist })
  try {
    const legitAmount = Math.round(legitRate * seconds)
    const generator = createBodyGenerator({ prefix: `f${process.pid}x${++runCounter}`, seed: runCounter, repeatRatio: 0 })
    const cpuBefore = cpuSeconds(server.pid)
    const started = performance.now()
    const loads = [runFixedRate({ url: server.url, generator, rate: legitRate, amount: legitAmount, connections: 20 })]
    if (scenario.flood !== null) {
      const body = scenario.flood.body
      loads.push(runFixedRate({
        url: server.url,
        generator: { next: () => body },
        rate: floodRate,
        amount: Math.round(floodRate * seconds),
        connections: 50,
        path: '/notify/alipay',
        headers: { 'content-type': 'application/x-www-form-urlencoded' }
      }))
    }
    const [legit, flood] = await Promise.all(loads)
    const wall = (performance.now() - started) / 1000
    const cpu = cpuSeconds(server.pid)
    const result = {
      legit: { p50: legit.latency.p50, p99: legit.latency.p99, max: legit.latency.max, ok: legit.ok, non2xx: legit.non2xx, errors: legit.errors },
      flood: flood === undefined ? null : { statuses: flood.statuses, errors: flood.errors, requests: flood.requests },
      serverCpuShare: cpuBefore === null || cpu === null ? null : (cpu - cpuBefore) / wall
    }
    log(`${buildName} / ${scenarioName}: generic p50 ${result.legit.p50.toFixed(1)} ms, p99 ${result.legit.p99.toFixed(1)} ms, ` +
      `${result.legit.ok} acked, ${result.legit.non2xx} non-2xx, ${result.legit.errors} errors; ` +
      `flood answers ${JSON.stringify(result.flood?.statuses ?? {})}, ${result.flood?.errors ?? 0} errors; server CPU ${(result.serverCpuShare * 100).toFixed(0)}% of a core`)
    return result
  } finally {
    await server.stop()
    server.cleanup()
  }
}

const loadBefore = loadavg()[0]
const runs = {}
for (let round = 0; round < rounds; round++) {
  for (const buildName of Object.keys(builds)) {
    for (const scenarioName of Object.keys(scenarios)) {
      const key = `${buildName}.${scenarioName}`
      runs[key] = runs[key] ?? []
      runs[key].push(await measure(buildName, scenarioName))
    }
  }
}

const table = {}
for (const [key, list] of Object.entries(runs)) {
  table[key] = {
    p50: summarize(list.map(r => r.legit.p50)),
    p99: summarize(list.map(r => r.legit.p99)),
    serverCpuShare: summarize(list.map(r => r.serverCpuShare ?? NaN)),
    legitNon2xx: list.reduce((n, r) => n + r.legit.non2xx + r.legit.errors, 0),
    floodStatuses: list.reduce((all, r) => {
      for (const [status, n] of Object.entries(r.flood?.statuses ?? {})) all[status] = (all[status] ?? 0) + n
      return all
    }, {})
  }
}

saveResult('alipay-flood', {
  machine: machineInfo(),
  settings: {
    rounds,
    seconds,
    floodRate,
    legitRate,
    // The machine's 1-minute load average at the start and the end: other work shares its 2 cores.
    loadAverage: [loadBefore, loadavg()[0]],
    builds: Object.fromEntries(Object.entries(builds).map(([k, v]) => [k, v.label])),
    scenarios: Object.fromEntries(Object.entries(scenarios).map(([k, v]) => [k, { label: v.label, bytes: v.flood?.bytes ?? 0, fields: v.flood === null ? 0 : v.flood.fields + 3 }]))
  },
  table,
  runs
})
writeReport()
log('wrote bench/results/alipay-flood.json and bench/RESULTS.md')
