// Benchmark 5 of issue 4: generate a log of 1,000,000 events (bench/generate-log.js),
// then time `paynotify rebuild` and `paynotify export` as child processes under
// /usr/bin/time -v (peak RSS), several rounds. Export runs once more over the
// last tenth of the log only: memory that does not grow with the log is constant.
// Usage: node bench/rebuild.js (BENCH_ROUNDS, BENCH_EVENTS).
import { execFileSync, spawnSync } from 'node:child_process'
import SQLite from 'better-sqlite3'
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { machineInfo, root } from './lib/machine.js'
import { summarizeProfile } from './lib/profile-summary.js'
import { saveResult, writeReport } from './lib/report.js'
import { summarize } from './lib/stats.js'

const rounds = Math.max(3, Number(process.env.BENCH_ROUNDS ?? 3))
const events = Number(process.env.BENCH_EVENTS ?? 1_000_000)
const constantToleranceMb = 32
const cli = join(root, 'dist', 'cli', 'main.js')
const haveTime = existsSync('/usr/bin/time')

function log (message) {
  process.stderr.write(`[rebuild] ${message}\n`)
}

/** Runs the CLI once; wall time from here, peak RSS from /usr/bin/time -v (or the child's own report when it is missing). */
function timed (args) {
  const command = haveTime ? '/usr/bin/time' : process.execPath
  const argv = haveTime ? ['-v', process.execPath, cli, ...args] : [cli, ...args]
  const started = performance.now()
  const child = spawnSync(command, argv, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20, timeout: 15 * 60_000 })
  const seconds = (performance.now() - started) / 1000
  if (child.status !== 0) throw new Error(`paynotify ${args.join(' ')} exited ${child.status}: ${child.stderr.slice(-2000)}`)
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(child.stderr)
  // The command's own summary times the work without process start-up (module loading).
  const own = /in ([\d.]+) s \((\d+) events\/s\)/.exec(child.stdout + child.stderr)
  return {
    seconds,
    peakRssMb: rss === null ? NaN : Number(rss[1]) / 1024,
    ownSeconds: own === null ? NaN : Number(own[1]),
    output: (child.stdout + child.stderr).split('\n').filter(line => / in [\d.]+ s /.test(line)).slice(-1).join('')
  }
}

const dir = mkdtempSync(join(tmpdir(), 'paynotify-rebuild-'))
try {
  const dbPath = join(dir, 'log.db')
  log(`generating ${events} events`)
  const generated = JSON.parse(execFileSync(process.execPath, [join(root, 'bench', 'generate-log.js'), dbPath, String(events)], { cwd: root, encoding: 'utf8', timeout: 30 * 60_000 }).trim())
  log(`generated in ${generated.seconds.toFixed(1)} s: ${JSON.stringify(generated.counts)}`)
  const smallAfter = Math.floor(events * 0.9)
  const runs = { rebuild: [], rebuildEmptied: [], export: [], exportSmall: [] }
  for (let round = 0; round < rounds; round++) {
    const rebuild = timed(['rebuild', '--db', dbPath])
    runs.rebuild.push({ ...rebuild, eventsPerSecond: events / rebuild.seconds })
    log(`rebuild: ${rebuild.seconds.toFixed(2)} s, ${Math.round(events / rebuild.seconds)} events/s, peak RSS ${rebuild.peakRssMb.toFixed(0)} MB (${rebuild.output})`)
    // The log's projection is intact, so rebuild compares every fresh row with the stored one and writes none:
    // also time the case where every row must be written (after a projection is lost, or before its first build).
    const db = new SQLite(dbPath)
    db.exec('DELETE FROM orders')
    db.close()
    const emptied = timed(['rebuild', '--db', dbPath])
    runs.rebuildEmptied.push({ ...emptied, eventsPerSecond: events / emptied.seconds })
    log(`rebuild into an emptied orders table: ${emptied.seconds.toFixed(2)} s, ${Math.round(events / emptied.seconds)} events/s, peak RSS ${emptied.peakRssMb.toFixed(0)} MB (${emptied.output})`)
    const out = join(dir, 'export.ndjson')
    const exported = timed(['export', '--db', dbPath, '--out', out])
    runs.export.push({ ...exported, eventsPerSecond: events / exported.seconds, bytes: statSync(out).size })
    log(`export: ${exported.seconds.toFixed(2)} s, ${Math.round(events / exported.seconds)} events/s, peak RSS ${exported.peakRssMb.toFixed(0)} MB, ${(statSync(out).size / 2 ** 20).toFixed(0)} MiB`)
    rmSync(out, { force: true })
    const small = timed(['export', '--db', dbPath, '--out', out, '--after', String(smallAfter)])
    runs.exportSmall.push(small)
    log(`export of the last tenth: ${small.seconds.toFixed(2)} s, peak RSS ${small.peakRssMb.toFixed(0)} MB`)
    rmSync(out, { force: true })
  }
  // One more run of each under the V8 sampling profiler (not timed): where the time goes.
  const profiles = {}
  for (const [name, args] of [['rebuild', ['rebuild', '--db', dbPath]], ['export', ['export', '--db', dbPath, '--out', join(dir, 'export.ndjson')]]]) {
    const profileDir = join(dir, `profile-${name}`)
    execFileSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, cli, ...args], { cwd: root, stdio: 'ignore', timeout: 15 * 60_000 })
    profiles[name] = summarizeProfile(join(profileDir, readdirSync(profileDir).find(file => file.endsWith('.cpuprofile'))), 12)
    rmSync(join(dir, 'export.ndjson'), { force: true })
  }
  const exportRss = summarize(runs.export.map(r => r.peakRssMb))
  const smallRss = summarize(runs.exportSmall.map(r => r.peakRssMb))
  const result = {
    machine: machineInfo(),
    settings: {
      events,
      rounds,
      smallAfter,
      constantToleranceMb,
      generateSeconds: generated.seconds,
      generatedBy: 'bench/generate-log.js through paynotify\'s EventLog and live projector, synchronous=NORMAL while generating',
      description: `${events.toLocaleString('en-US')} events over ${generated.orders.toLocaleString('en-US')} orders: ${generated.counts.map(c => `${c.type} ${c.n.toLocaleString('en-US')}`).join(', ')}; ` +
        `${generated.repeats.toLocaleString('en-US')} of the callbacks are byte-for-byte resends; arrival shuffled within a window of 256 events (refunds before payments, pending after paid); every order registered by the merchant, 1% of payments with a mismatched amount.`
    },
    rebuild: {
      seconds: summarize(runs.rebuild.map(r => r.seconds)),
      ownEventsPerSecond: summarize(runs.rebuild.map(r => events / r.ownSeconds)),
      eventsPerSecond: summarize(runs.rebuild.map(r => r.eventsPerSecond)),
      peakRssMb: summarize(runs.rebuild.map(r => r.peakRssMb))
    },
    rebuildEmptied: {
      seconds: summarize(runs.rebuildEmptied.map(r => r.seconds)),
      ownEventsPerSecond: summarize(runs.rebuildEmptied.map(r => events / r.ownSeconds)),
      eventsPerSecond: summarize(runs.rebuildEmptied.map(r => r.eventsPerSecond)),
      peakRssMb: summarize(runs.rebuildEmptied.map(r => r.peakRssMb))
    },
    export: {
      seconds: summarize(runs.export.map(r => r.seconds)),
      ownEventsPerSecond: summarize(runs.export.map(r => events / r.ownSeconds)),
      eventsPerSecond: summarize(runs.export.map(r => r.eventsPerSecond)),
      peakRssMb: exportRss,
      smallSeconds: summarize(runs.exportSmall.map(r => r.seconds)),
      smallPeakRssMb: smallRss,
      constantMemory: exportRss.median - smallRss.median <= constantToleranceMb
    },
    profiles,
    runs
  }
  saveResult('rebuild', result)
  writeReport()
} finally {
  rmSync(dir, { recursive: true, force: true })
}
