// Benchmarks 1, 2, 3 and 6 of issue 4, side by side in one run: the bare
// Fastify ceiling, paynotify with group commit (defaults: synchronous=FULL),
// and the naive one-commit-per-request server (PAYNOTIFY_BATCH_MAX=1), each
// round in turn on a fresh server; then latency at a fixed rate of half the
// measured maximum. After every paynotify run the 2xx answers must equal the
// rows that run appended and the hash chain must verify, or the benchmark
// fails. Usage: node bench/ingest.js (BENCH_ROUNDS, BENCH_SECONDS, BENCH_CONNECTIONS).
import { createBodyGenerator } from './lib/bodies.js'
import { checkLog, countEvents } from './lib/db-check.js'
import { runFixedRate } from './lib/fixed-rate.js'
import { runLoad } from './lib/load.js'
import { machineInfo } from './lib/machine.js'
import { saveResult, writeReport } from './lib/report.js'
import { cpuSeconds, startCeiling, startPaynotify, threadCpuSeconds } from './lib/servers.js'
import { ratio, summarize } from './lib/stats.js'

const rounds = Math.max(3, Number(process.env.BENCH_ROUNDS ?? 5))
const seconds = Number(process.env.BENCH_SECONDS ?? 6)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 100)
const warmup = 1000

const targets = {
  ceiling: { label: 'bare Fastify ceiling', start: () => startCeiling() },
  durable: { label: 'paynotify, group commit (defaults)', start: () => startPaynotify() },
  naive: { label: 'paynotify, one commit per request (PAYNOTIFY_BATCH_MAX=1)', start: () => startPaynotify({ env: { PAYNOTIFY_BATCH_MAX: '1' } }) },
  // The same group commit with appends, projection and commits on the HTTP thread: what the writer thread buys.
  inline: { label: 'paynotify, group commit on the HTTP thread (PAYNOTIFY_WRITER=inline)', start: () => startPaynotify({ env: { PAYNOTIFY_WRITER: 'inline' } }) }
}

let runCounter = 0
const failures = []

function log (message) {
  process.stderr.write(`[ingest] ${message}\n`)
}

/**
 * One measured run on a fresh server: warm up, load, then (for paynotify) the
 * acks-equal-rows and chain checks. `uniformRate` sends at that steady rate
 * with bench/lib/fixed-rate.js; `overallRate` with autocannon's limiter.
 */
async function measure (name, { amount, overallRate, uniformRate }) {
  const server = await targets[name].start()
  const generator = createBodyGenerator({ prefix: `r${process.pid}x${++runCounter}`, seed: runCounter })
  try {
    await runLoad({ url: server.url, generator, amount: warmup, connections })
    const rowsBefore = server.dbPath === undefined ? 0 : countEvents(server.dbPath)
    const cpuBefore = cpuSeconds(server.pid)
    const threadsBefore = threadCpuSeconds(server.pid)
    const result = uniformRate === undefined
      ? await runLoad({ url: server.url, generator, amount, connections, overallRate })
      : await runFixedRate({ url: server.url, generator, amount, connections, rate: uniformRate })
    const cpuAfter = cpuSeconds(server.pid)
    const threadsAfter = threadCpuSeconds(server.pid)
    result.cpuMicrosPerRequest = cpuBefore === null ? null : (cpuAfter - cpuBefore) * 1e6 / result.requests
    result.mainThreadCpuMicrosPerRequest = threadsBefore === null || threadsAfter === null ? null : (threadsAfter.main - threadsBefore.main) * 1e6 / result.requests
    if (server.dbPath !== undefined) {
      const exitCode = await server.stop()
      const rowsAfter = countEvents(server.dbPath)
      const check = await checkLog(server.dbPath, rowsBefore)
      const appended = rowsAfter - rowsBefore
      result.check = {
        acked: result.ok,
        appended,
        ackEqualsRows: appended === result.ok,
        chainOk: check.chainOk,
        chainChecked: check.checked,
        eventsPerCommit: check.commits === 0 ? 0 : appended / check.commits,
        cleanExit: exitCode === 0
      }
      const failed = !result.check.ackEqualsRows || !check.chainOk || result.non2xx > 0 || result.errors > 0 || exitCode !== 0
      if (failed) failures.push({ name, result, firstBreak: check.firstBreak })
      result.check.passed = !failed
    } else if (result.non2xx > 0 || result.errors > 0) {
      failures.push({ name, result })
    }
    log(`${name}${uniformRate === undefined ? '' : ` at ${uniformRate} req/s`}: ${Math.round(result.reqPerSec)} req/s, p50 ${result.latency.p50.toFixed(1)} ms, p99 ${result.latency.p99.toFixed(1)} ms, max ${result.latency.max.toFixed(1)} ms` +
      (result.cpuMicrosPerRequest === null ? '' : `, ${Math.round(result.cpuMicrosPerRequest)} µs CPU/request`) +
      (result.check === undefined ? '' : `, acked ${result.check.acked} = appended ${result.check.appended}: ${result.check.ackEqualsRows}, chain ${result.check.chainOk}, ${result.check.eventsPerCommit.toFixed(1)} events/commit`))
    return result
  } finally {
    await server.stop()
    server.cleanup()
  }
}

/** A short run per target to size the measured runs (a fixed amount of requests, so every request is answered before the count). */
async function calibrate (name) {
  const result = await measure(name, { amount: 5000 })
  return Math.min(1_000_000, Math.max(3000, Math.round(result.reqPerSec * seconds)))
}

const amounts = {}
for (const name of Object.keys(targets)) amounts[name] = await calibrate(name)
log(`amounts per run: ${JSON.stringify(amounts)}`)

const runs = { ceiling: [], durable: [], naive: [], inline: [], halfRate: [], halfRateAutocannon: [] }
for (let round = 0; round < rounds; round++) {
  // The order turns each round, so no server always runs right after the same one.
  const names = Object.keys(targets)
  for (let k = 0; k < names.length; k++) {
    const name = names[(round + k) % names.length]
    runs[name].push(await measure(name, { amount: amounts[name] }))
  }
}

const max = {
  ceiling: summarize(runs.ceiling.map(r => r.reqPerSec)),
  durable: summarize(runs.durable.map(r => r.reqPerSec)),
  naive: summarize(runs.naive.map(r => r.reqPerSec)),
  inline: summarize(runs.inline.map(r => r.reqPerSec))
}
const halfRate = Math.round(max.durable.median / 2)
for (let round = 0; round < rounds; round++) {
  runs.halfRate.push(await measure('durable', { amount: Math.max(3000, halfRate * (seconds + 1)), uniformRate: halfRate }))
  runs.halfRateAutocannon.push(await measure('durable', { amount: Math.max(3000, halfRate * seconds), overallRate: halfRate }))
}

const checked = [...runs.durable, ...runs.naive, ...runs.inline, ...runs.halfRate, ...runs.halfRateAutocannon]
const latency = key => Object.fromEntries(['p50', 'p99', 'max'].map(p => [p, summarize(runs[key].map(r => r.latency[p]))]))
const cpu = key => summarize(runs[key].map(r => r.cpuMicrosPerRequest).filter(v => v !== null))
const mainCpu = key => summarize(runs[key].map(r => r.mainThreadCpuMicrosPerRequest).filter(v => v !== null))
const keys = ['ceiling', 'durable', 'naive', 'inline', 'halfRate', 'halfRateAutocannon']
const result = {
  machine: machineInfo(),
  settings: { rounds, secondsPerRun: seconds, connections, pipelining: 1, warmupRequests: warmup, repeatRatio: 0.1, amounts, halfRate },
  throughput: max,
  latency: Object.fromEntries(keys.map(key => [key, latency(key)])),
  cpuMicrosPerRequest: Object.fromEntries(keys.map(key => [key, cpu(key)])),
  mainThreadCpuMicrosPerRequest: Object.fromEntries(keys.map(key => [key, mainCpu(key)])),
  eventsPerCommit: {
    durable: summarize(runs.durable.map(r => r.check.eventsPerCommit)),
    naive: summarize(runs.naive.map(r => r.check.eventsPerCommit)),
    inline: summarize(runs.inline.map(r => r.check.eventsPerCommit)),
    halfRate: summarize(runs.halfRate.map(r => r.check.eventsPerCommit)),
    halfRateAutocannon: summarize(runs.halfRateAutocannon.map(r => r.check.eventsPerCommit))
  },
  ratios: {
    durableOverCeiling: ratio(max.durable, max.ceiling),
    durableOverNaive: ratio(max.durable, max.naive),
    durableOverInline: ratio(max.durable, max.inline)
  },
  correctness: {
    runsChecked: checked.length,
    passed: failures.length === 0,
    acked: checked.reduce((n, r) => n + r.check.acked, 0),
    appended: checked.reduce((n, r) => n + r.check.appended, 0),
    failures: failures.map(f => ({ name: f.name, check: f.result.check ?? null, non2xx: f.result.non2xx, errors: f.result.errors, firstBreak: f.firstBreak ?? null }))
  },
  runs
}
saveResult('ingest', result)
writeReport()
log(`durable/ceiling ${result.ratios.durableOverCeiling.median.toFixed(2)}, durable/naive ${result.ratios.durableOverNaive.median.toFixed(1)}×, p99 at ${halfRate} req/s ${result.latency.halfRate.p99.median.toFixed(1)} ms`)
if (failures.length > 0) {
  log(`FAILED: ${failures.length} run(s) lost an ack, broke the chain or got errors`)
  process.exitCode = 1
}
