// Issue 13: time from start to "listening", as a newcomer (`npm start`) and a supervisor
// (`node dist/cli/main.js serve`) start the service, on an empty database and on a
// 1M-event one (the start-time chain check included: from the last signed checkpoint).
//
// Each start is timed from the spawn to the "paynotify listening on" line on stderr; the
// serve process's CPU (/proc/<pid>/stat, every thread) is read at that line too, the
// steadier figure on a shared machine. Then SIGTERM, and the next start. The commands and
// the two databases take turns within each of BENCH_RUNS rounds (7), so a drift of the
// machine's speed falls on all of them alike. The empty database is a new directory each
// start (schema created, secrets generated); the 1M-event one is written once by
// bench/generate-log.js (about two minutes) and kept in BENCH_STARTUP_DB if that is set.
//
// BENCH_DIST points `serve` at another build (an A/B comparison of two builds). Loopback
// only. Usage: node bench/startup.js
import { spawn, execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { machineInfo, root } from './lib/machine.js'
import { saveResult, writeReport } from './lib/report.js'
import { cpuSeconds, freePort, serviceEnv } from './lib/servers.js'
import { summarize } from './lib/stats.js'

const rounds = Math.max(1, Number(process.env.BENCH_RUNS ?? 7))
const events = Number(process.env.BENCH_EVENTS ?? 1_000_000)
const build = process.env.BENCH_DIST ?? join(root, 'dist')

function log (message) {
  process.stderr.write(`[startup] ${message}\n`)
}

const work = mkdtempSync(join(tmpdir(), 'paynotify-startup-'))
const largeDb = process.env.BENCH_STARTUP_DB ?? join(work, 'large.db')
if (!existsSync(largeDb)) {
  log(`writing a ${events.toLocaleString('en-US')}-event log to ${largeDb} (bench/generate-log.js)…`)
  execFileSync(process.execPath, [join(root, 'bench', 'generate-log.js'), largeDb, String(events)], { stdio: 'inherit' })
}

/** One start: spawn, wait for the listening line, read the CPU, stop. */
async function startOnce ({ command, args, dbPath }) {
  const env = serviceEnv(dbPath, await freePort(), { PAYNOTIFY_LOG_LEVEL: 'warn' })
  const started = performance.now()
  // detached: `npm start` runs node under a shell; the whole group is stopped below.
  const child = spawn(command, args, { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'], detached: true })
  let stderr = ''
  const listening = await new Promise((resolve, reject) => {
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', chunk => {
      stderr += chunk
      if (stderr.includes('paynotify listening on')) resolve(performance.now() - started)
    })
    child.once('exit', code => reject(new Error(`${command} ${args.join(' ')} exited (${code}) before listening:\n${stderr.slice(-2000)}`)))
  })
  const cpu = command === process.execPath ? cpuSeconds(child.pid) : null
  const exited = new Promise(resolve => child.once('exit', resolve))
  process.kill(-child.pid, 'SIGTERM')
  await exited
  return { ms: listening, cpuMs: cpu === null ? null : cpu * 1000 }
}

const serveArgs = [join(build, 'cli', 'main.js'), 'serve']
const variants = {
  'npm start, empty database': { command: 'npm', args: ['start', '--silent'], db: 'empty' },
  'serve, empty database': { command: process.execPath, args: serveArgs, db: 'empty' },
  [`npm start, ${events.toLocaleString('en-US')}-event database`]: { command: 'npm', args: ['start', '--silent'], db: 'large' },
  [`serve, ${events.toLocaleString('en-US')}-event database`]: { command: process.execPath, args: serveArgs, db: 'large' }
}
const names = Object.keys(variants)
const samples = Object.fromEntries(names.map(name => [name, { ms: [], cpuMs: [] }]))
const load = []

// Once before the counted rounds: the build is current (npm start checks it), and the large log gets its
// checkpoint key (kept in the secrets file beside it, as on any first start) and its first signed checkpoint.
execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' })
await startOnce({ command: process.execPath, args: serveArgs, dbPath: largeDb })

for (let round = 0; round < rounds; round++) {
  // The order turns each round.
  for (let k = 0; k < names.length; k++) {
    const name = names[(round + k) % names.length]
    const variant = variants[name]
    const emptyDir = mkdtempSync(join(work, 'empty-'))
    const result = await startOnce({ ...variant, dbPath: variant.db === 'large' ? largeDb : join(emptyDir, 'paynotify.db') })
    rmSync(emptyDir, { recursive: true, force: true })
    samples[name].ms.push(result.ms)
    if (result.cpuMs !== null) samples[name].cpuMs.push(result.cpuMs)
    load.push(loadavg()[0])
  }
  log(`round ${round + 1}/${rounds}: ${names.map(name => `${name} ${Math.round(samples[name].ms.at(-1))} ms`).join(', ')}`)
}

const result = {
  machine: machineInfo(),
  settings: { rounds, events, build, targets: { emptyMs: 1000, largeMs: 2000 } },
  loadAverage: summarize(load),
  starts: Object.fromEntries(names.map(name => [name, {
    toListeningMs: summarize(samples[name].ms),
    cpuMs: samples[name].cpuMs.length > 0 ? summarize(samples[name].cpuMs) : undefined
  }]))
}
saveResult('startup', result)
writeReport()
if (process.env.BENCH_STARTUP_DB === undefined) rmSync(work, { recursive: true, force: true })
log(JSON.stringify(result.starts, null, 2))
