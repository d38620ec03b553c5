// Issue 10 §1: a client that reads nothing from the NDJSON stream of GET /admin/events must not
// grow the server's memory: target under 50 MB of RSS growth with 1,000,000 events in the log.
// Generates the log, then per round starts `paynotify serve` on it
// (bench/lib/servers.js), opens the stream and reads nothing for BENCH_PAUSE_SECONDS while
// sampling the server's RSS from /proc every 100 ms, then reads the whole stream (every line, in
// position order) and times it. The test (test/http/stream-backpressure.test.ts) checks the same
// on a smaller log in every `npm test`.
// Two logs: the usual one of bench/generate-log.js, and one whose first 2,000 events carry a
// 64 KiB callback (bench/generate-large-log.js), which a reader that ignores its client holds.
// Usage: node bench/stream-backpressure.js [dir] (BENCH_EVENTS, BENCH_ROUNDS, BENCH_PAUSE_SECONDS);
// with a directory, the logs are kept there and generated only when missing.
import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync, mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import SQLite from 'better-sqlite3'
import { benchAdminToken } from './lib/bodies.js'
import { machineInfo, root } from './lib/machine.js'
import { saveResult, writeReport } from './lib/report.js'
import { cpuSeconds, startPaynotify } from './lib/servers.js'
import { summarize } from './lib/stats.js'

const { checkChainSinceCheckpoint } = await import(join(root, 'dist', 'event-log', 'chain-checkpoint.js'))

const events = Number(process.env.BENCH_EVENTS ?? 1_000_000)
const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3))
const pauseSeconds = Number(process.env.BENCH_PAUSE_SECONDS ?? 10)
const targetMb = 50

function log (message) {
  process.stderr.write(`[stream] ${message}\n`)
}

/** The resident set size of a process, in MB, from /proc. */
function rssMb (pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]) / 1024
}

async function round (dbPath) {
  const server = await startPaynotify({ env: { PAYNOTIFY_DB: dbPath, PAYNOTIFY_LOG_LEVEL: 'warn' } })
  try {
    const headers = { authorization: `Bearer ${benchAdminToken}`, accept: 'application/x-ndjson' }
    // The route's code loaded and compiled first, as on a server that has been up a while.
    const warm = await fetch(`${server.url}/admin/events?limit=100`, { headers })
    await warm.text()
    const baselineMb = rssMb(server.pid)
    const request = http.get(`${server.url}/admin/events`, { agent: false, headers })
    const [response] = await once(request, 'response')
    response.pause()
    const cpuBefore = cpuSeconds(server.pid)
    let peakMb = baselineMb
    const samples = []
    const started = performance.now()
    while (performance.now() - started < pauseSeconds * 1000) {
      await sleep(100)
      const mb = rssMb(server.pid)
      samples.push(mb)
      peakMb = Math.max(peakMb, mb)
    }
    const cpuWhilePaused = cpuSeconds(server.pid) - cpuBefore
    // The client reads again: the whole stream, every line in position order.
    let lines = 0
    let outOfOrder = 0
    let bytes = 0
    let tail = ''
    const readStarted = performance.now()
    response.setEncoding('utf8')
    response.on('data', chunk => {
      bytes += Buffer.byteLength(chunk)
      const text = tail + chunk
      const end = text.lastIndexOf('\n')
      if (end === -1) {
        tail = text
        return
      }
      for (const line of text.slice(0, end).split('\n')) {
        if (Number(/"position":(\d+),"streamId"/.exec(line)?.[1]) !== ++lines) outOfOrder++
      }
      tail = text.slice(end + 1)
    })
    response.resume()
    await once(response, 'end')
    const readSeconds = (performance.now() - readStarted) / 1000
    const run = {
      baselineMb,
      peakMb,
      growthMb: peakMb - baselineMb,
      lastMb: samples.at(-1),
      cpuSecondsWhilePaused: cpuWhilePaused,
      lines,
      outOfOrder,
      bytes,
      readSeconds,
      eventsPerSecond: lines / readSeconds
    }
    log(`RSS ${baselineMb.toFixed(0)} MB → at most ${peakMb.toFixed(0)} MB in ${pauseSeconds} s of reading nothing (server CPU meanwhile ${cpuWhilePaused.toFixed(2)} s); ` +
      `then ${lines} lines (${(bytes / 2 ** 20).toFixed(0)} MiB) in ${readSeconds.toFixed(1)} s, ${outOfOrder} out of order`)
    return run
  } finally {
    await server.stop()
    server.cleanup()
  }
}

const largeEvents = 2_000
const logs = [
  {
    name: 'usual',
    script: 'generate-log.js',
    args: [],
    describe: generated => `the log of bench/generate-log.js: ${events.toLocaleString('en-US')} events over ${generated.orders.toLocaleString('en-US')} orders, generic callbacks of about 200 bytes with their raw bodies (~700 bytes a line)`
  },
  {
    name: 'large-first',
    script: 'generate-large-log.js',
    args: [String(largeEvents)],
    describe: generated => `bench/generate-large-log.js: ${events.toLocaleString('en-US')} events, the first ${largeEvents.toLocaleString('en-US')} carrying a callback padded to 64 KiB (${(largeEvents * 64 / 1024).toFixed(0)} MiB of lines, as in a log holding the replays of issue 10), the rest a 200-byte one`
  }
]

/** The log, generated unless `path` holds it already (a kept one), its chain checked once. */
function prepare (spec, path) {
  let generated
  if (existsSync(path)) {
    const db = new SQLite(path, { readonly: true })
    const count = db.prepare('SELECT count(*) FROM events').pluck().get()
    generated = { seconds: NaN, orders: db.prepare('SELECT count(*) FROM orders').pluck().get() }
    db.close()
    if (count !== events) throw new Error(`${path} holds ${count} events, not ${events}`)
    log(`using ${path}`)
  } else {
    log(`generating ${events} events (${spec.script})`)
    generated = JSON.parse(execFileSync(process.execPath, [join(root, 'bench', spec.script), path, String(events), ...spec.args], { cwd: root, encoding: 'utf8', timeout: 60 * 60_000 }).trim())
    log(`generated in ${generated.seconds.toFixed(1)} s`)
  }
  // A start checks the chain from the last verified position: check the new log once here, so
  // each round's server is ready within startPaynotify's wait however loaded the machine is.
  const db = new SQLite(path)
  checkChainSinceCheckpoint(db, new Date())
  db.close()
  return generated
}

const kept = process.argv[2]
const dir = kept ?? mkdtempSync(join(tmpdir(), 'paynotify-stream-'))
try {
  const results = []
  for (const spec of logs) {
    const path = join(dir, `${spec.name}-${events}.db`)
    const generated = prepare(spec, path)
    const runs = []
    for (let i = 0; i < rounds; i++) runs.push(await round(path))
    const growth = summarize(runs.map(r => r.growthMb))
    results.push({
      name: spec.name,
      description: spec.describe(generated),
      generateSeconds: Number.isNaN(generated.seconds) ? undefined : generated.seconds,
      growthMb: growth,
      baselineMb: summarize(runs.map(r => r.baselineMb)),
      cpuSecondsWhilePaused: summarize(runs.map(r => r.cpuSecondsWhilePaused)),
      readEventsPerSecond: summarize(runs.map(r => r.eventsPerSecond)),
      complete: runs.every(r => r.lines === events && r.outOfOrder === 0),
      met: growth.max < targetMb,
      runs
    })
  }
  saveResult('stream-backpressure', {
    machine: machineInfo(),
    settings: {
      events,
      rounds,
      pauseSeconds,
      targetMb,
      description: 'the service as `node dist/cli/main.js serve` with its defaults; one client on loopback opens `GET /admin/events` with `Accept: application/x-ndjson` and reads nothing, then reads it all'
    },
    logs: results,
    met: results.every(r => r.met)
  })
  writeReport()
} finally {
  if (kept === undefined) rmSync(dir, { recursive: true, force: true })
}
