// Benchmark 4 of issue 4: appends per second of @event-driven-io/emmett-sqlite
// versus paynotify's EventLog.append, in-process, synchronous=FULL on both,
// single-event appends from 100 concurrent callers. Each variant runs in a
// child process of its own (bench/peer-append-worker.js), in turn, for
// several rounds. Usage: node bench/peer-append.js (BENCH_ROUNDS, BENCH_PEER_SECONDS).
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { machineInfo, root } from './lib/machine.js'
import { saveResult, writeReport } from './lib/report.js'
import { ratio, summarize } from './lib/stats.js'

const rounds = Math.max(3, Number(process.env.BENCH_ROUNDS ?? 3))
const seconds = Number(process.env.BENCH_PEER_SECONDS ?? 5)
const callers = 100

if (!existsSync(join(root, 'bench', 'peers', 'node_modules', '@event-driven-io', 'emmett-sqlite'))) {
  process.stderr.write('[peer] installing bench/peers (npm install there, once)\n')
  execFileSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: join(root, 'bench', 'peers'), stdio: 'inherit' })
}

const variants = {
  'paynotify-bare': 'paynotify EventLog.append (group commit, no projection)',
  'paynotify-store': 'paynotify EventLog.append with the order projection in the same transaction (as the service runs it)',
  'emmett-connection': 'Emmett appendToStream on one long-lived connection, appends queued one at a time',
  'emmett-store': 'Emmett getSQLiteEventStore().appendToStream, appends queued one at a time'
}

const runs = Object.fromEntries(Object.keys(variants).map(name => [name, []]))
for (let round = 0; round < rounds; round++) {
  for (const name of Object.keys(variants)) {
    const out = execFileSync(process.execPath, [join(root, 'bench', 'peer-append-worker.js'), name, String(seconds), String(callers)], { cwd: root, encoding: 'utf8', timeout: (seconds + 120) * 1000 })
    const result = JSON.parse(out.trim().split('\n').pop())
    runs[name].push(result)
    process.stderr.write(`[peer] ${name}: ${Math.round(result.appendsPerSecond)} appends/s, ${Math.round(result.cpuMicrosPerAppend)} µs CPU/append, ${result.eventsPerCommit.toFixed(1)} events/commit\n`)
  }
}

const summaries = Object.fromEntries(Object.entries(runs).map(([name, list]) => [name, {
  appendsPerSecond: summarize(list.map(r => r.appendsPerSecond)),
  cpuMicrosPerAppend: summarize(list.map(r => r.cpuMicrosPerAppend)),
  eventsPerCommit: summarize(list.map(r => r.eventsPerCommit))
}]))
const bestEmmett = summaries['emmett-connection'].appendsPerSecond.median >= summaries['emmett-store'].appendsPerSecond.median ? 'emmett-connection' : 'emmett-store'
const result = {
  machine: machineInfo(),
  settings: {
    rounds,
    seconds,
    callers,
    streams: 'caller c appends its n-th event to stream order-c-⌊n/3⌋, so a third of the appends start a stream and two thirds extend one; every event is the same paid-callback payload (data and metadata with the raw body, about 700 bytes of JSON)',
    pragmas: [
      `paynotify (better-sqlite3, one connection, src/db/database.ts): ${runs['paynotify-bare'][0].pragmas}`,
      `Emmett (node sqlite3, connection opened by Emmett, which sets only journal_mode): ${runs['emmett-connection'][0].pragmas}`
    ],
    notes: [
      'synchronous=2 is FULL on both: every commit fsyncs the WAL before the append resolves.',
      'Emmett\'s SQLite store shares one connection between concurrent calls and closes it after each call, and its transactions are not re-entrant across concurrent callers (100 unqueued callers fail with SQLITE_MISUSE and roll each other back), so its callers are queued one at a time: one transaction and one fsync per append, which is how it can be used safely.',
      'paynotify queues the 100 callers into one BEGIN IMMEDIATE transaction per event-loop turn (group commit): one fsync serves every caller waiting.',
      `The target ratio compares paynotify's bare EventLog with the faster Emmett variant (${bestEmmett}).`,
      'bench/peers pins @event-driven-io/emmett-sqlite 0.38.5 with its matching @event-driven-io/emmett 0.38.5: the newest emmett-sqlite (0.42.4) needs @event-driven-io/emmett 0.42.4, which the registry reachable here does not serve.'
    ]
  },
  variants: Object.entries(variants).map(([name, label]) => ({ name, label, ...summaries[name] })),
  ratios: {
    bareOverBestEmmett: ratio(summaries['paynotify-bare'].appendsPerSecond, summaries[bestEmmett].appendsPerSecond),
    projectedOverBestEmmett: ratio(summaries['paynotify-store'].appendsPerSecond, summaries[bestEmmett].appendsPerSecond)
  },
  runs
}
saveResult('peer-append', result)
writeReport()
process.stderr.write(`[peer] paynotify / Emmett (${bestEmmett}) ${result.ratios.bareOverBestEmmett.median.toFixed(1)}×\n`)
