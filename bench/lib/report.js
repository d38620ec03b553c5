import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { root } from './machine.js'
import { formatNumber, formatSummary } from './stats.js'

const resultsDir = join(root, 'bench', 'results')

/** Keeps one benchmark's figures (bench/results/<name>.json) so RESULTS.md can be rebuilt from all of them. */
export function saveResult (name, result) {
  mkdirSync(resultsDir, { recursive: true })
  writeFileSync(join(resultsDir, `${name}.json`), JSON.stringify(result, null, 2) + '\n')
}

function load (name) {
  const file = join(resultsDir, `${name}.json`)
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : undefined
}

// What was tuned, and what the profiles say about the targets still missed (kept by hand: bench/lib/report.js).
const notes = readNotes()

function readNotes () {
  const file = join(root, 'bench', 'NOTES.md')
  return existsSync(file) ? readFileSync(file, 'utf8').trim() + '\n' : ''
}

const mark = met => (met ? '✅ met' : '❌ missed')
const s0 = summary => formatSummary(summary, 0)
const s1 = summary => formatSummary(summary, 1)
const s2 = summary => formatSummary(summary, 2)

function machineSection (machine, what) {
  const p = machine.packages
  return `- ${what}: ${machine.date} on ${machine.cpu}, ${machine.memory}, ${machine.os}, Node ${machine.node}, commit ${machine.commit}\n` +
    `  (fastify ${p.fastify}, better-sqlite3 ${p['better-sqlite3']}, autocannon ${p.autocannon}` +
    (what.startsWith('peer') ? `, @event-driven-io/emmett-sqlite ${p['@event-driven-io/emmett-sqlite']} with @event-driven-io/emmett ${p['@event-driven-io/emmett']} and sqlite3 ${p.sqlite3}` : '') + ')'
}

function targetsTable (ingest, peer, rebuild, flood, stream, outbound, metrics, refusals, startup) {
  const rows = ['| figure | target | measured: min / **median** / max | |', '|---|---|---|---|']
  if (startup !== undefined) {
    for (const [name, figures] of Object.entries(startup.starts)) {
      if (!name.startsWith('npm start')) continue
      const target = name.includes('empty') ? startup.settings.targets.emptyMs : startup.settings.targets.largeMs
      rows.push(`| ${name} to "listening" | ≤ ${formatNumber(target)} ms | ${formatSummary(figures.toListeningMs, 0, ' ms')} | ${mark(figures.toListeningMs.median <= target)} |`)
    }
  }
  if (ingest !== undefined) {
    const r = ingest.ratios
    rows.push(`| durable ingest / bare Fastify ceiling | ≥ 0.50 | ${s2(r.durableOverCeiling)} | ${mark(r.durableOverCeiling.median >= 0.5)} |`)
    rows.push(`| durable ingest / naive per-request commit | ≥ 8× | ${formatSummary(r.durableOverNaive, 1, '×')} | ${mark(r.durableOverNaive.median >= 8)} |`)
    rows.push(`| p99 latency at half of max rate (a steady ${formatNumber(ingest.settings.halfRate)} req/s) | ≤ 10 ms | ${formatSummary(ingest.latency.halfRate.p99, 1, ' ms')} | ${mark(ingest.latency.halfRate.p99.median <= 10)} |`)
    rows.push(`| acked requests = rows appended, chain verifies (${ingest.correctness.runsChecked} runs) | every run | ${formatNumber(ingest.correctness.acked)} acked, ${formatNumber(ingest.correctness.appended)} appended | ${mark(ingest.correctness.passed)} |`)
  }
  if (peer !== undefined) {
    rows.push(`| paynotify append / Emmett-sqlite append | ≥ 10× | ${formatSummary(peer.ratios.bareOverBestEmmett, 1, '×')} | ${mark(peer.ratios.bareOverBestEmmett.median >= 10)} |`)
  }
  if (rebuild !== undefined) {
    const rb = rebuild.rebuild
    const ex = rebuild.export
    rows.push(`| rebuild of ${formatNumber(rebuild.settings.events)} events | ≥ 300,000 events/s | ${s0(rb.eventsPerSecond)} events/s | ${mark(rb.eventsPerSecond.median >= 300_000)} |`)
    rows.push(`| rebuild peak RSS | ≤ 200 MB | ${formatSummary(rb.peakRssMb, 0, ' MB')} | ${mark(rb.peakRssMb.max <= 200)} |`)
    const re = rebuild.rebuildEmptied
    if (re !== undefined) {
      rows.push(`| rebuild of ${formatNumber(rebuild.settings.events)} events into an emptied orders table (every row written) | ≥ 300,000 events/s | ${s0(re.eventsPerSecond)} events/s | ${mark(re.eventsPerSecond.median >= 300_000)} |`)
      rows.push(`| its peak RSS | ≤ 200 MB | ${formatSummary(re.peakRssMb, 0, ' MB')} | ${mark(re.peakRssMb.max <= 200)} |`)
    }
    rows.push(`| export of ${formatNumber(rebuild.settings.events)} events | ≥ 200,000 events/s | ${s0(ex.eventsPerSecond)} events/s | ${mark(ex.eventsPerSecond.median >= 200_000)} |`)
    rows.push(`| export memory (peak RSS at 1/10 of the log vs the whole log) | constant | ${formatNumber(ex.smallPeakRssMb.median)} MB vs ${formatNumber(ex.peakRssMb.median)} MB | ${mark(ex.constantMemory)} |`)
  }
  if (flood !== undefined) {
    const p50 = flood.table['after.flood63k'].p50
    const reference = flood.table['after.none'].p50
    const before = flood.table['before.flood63k']?.p50
    rows.push(`| generic callbacks' p50 beside ${flood.settings.floodRate} req/s of unsigned 63 KB Alipay bodies | < 5 ms | ${formatSummary(p50, 1, ' ms')} (the same runs without a flood: ${formatSummary(reference, 1, ' ms')}${before === undefined ? '' : `; before: ${formatSummary(before, 0, ' ms')}`}) | ${mark(p50.median < 5)} |`)
  }
  for (const log of stream?.logs ?? []) {
    rows.push(`| server RSS growth while a client reads nothing from the NDJSON stream of ${formatNumber(stream.settings.events)} events (${log.name} log) | < ${stream.settings.targetMb} MB | ${formatSummary(log.growthMb, 1, ' MB')} | ${mark(log.met)} |`)
  }
  if (outbound !== undefined) {
    const target = outbound.settings.targetRatio
    for (const name of ['all', 'paid']) {
      const r = outbound.ratios[name]?.pairedByRound
      if (r === undefined) continue
      rows.push(`| server CPU per callback with ${outbound.settings.variants[name].replace(/^one /, 'one subscribed ')} / with none (delivery included) | ≤ ${formatNumber(target, 2)}× | ${formatSummary(r, 2, '×')} | ${mark(r.median <= target)} |`)
    }
    const d = outbound.delivery.backlog[0]
    if (d !== undefined) rows.push(`| deliveries/s to a local receiver (a backlog of ${formatNumber(d.deliveries)}, every signature verified) | (measured) | ${formatNumber(d.deliveriesPerSecond)} | |`)
  }
  if (metrics !== undefined) {
    const r = metrics.ratios.on.pairedByRound
    rows.push(`| server CPU per durable callback, metrics on (scraped every ${formatNumber(metrics.settings.scrapeMs / 1000)} s) / off | ≤ ${formatNumber(metrics.settings.targetRatio, 2)}× | ${formatSummary(r, 3, '×')} | ${mark(r.median <= metrics.settings.targetRatio)} |`)
    const w = metrics.ownWork
    if (w !== undefined) rows.push(`| the same from the metrics' own work measured alone (${formatNumber(w.addedMicrosPerRequest, 2)} µs per callback over off's ${formatNumber(w.offMicrosPerRequest)} µs) | ≤ ${formatNumber(metrics.settings.targetRatio, 2)}× | ${formatNumber(w.estimatedRatio, 3)}× | ${mark(w.estimatedRatio <= metrics.settings.targetRatio)} |`)
  }
  if (refusals !== undefined) {
    const target = refusals.settings.targetRatio
    const accepted = refusals.ratios.accepted.pairedByRound
    const refused = refusals.ratios.refused.pairedByRound
    rows.push(`| server CPU per accepted callback, refusal store on / off | ≤ ${formatNumber(target, 2)}× | ${formatSummary(accepted, 3, '×')} | ${mark(accepted.median <= target)} |`)
    rows.push(`| server CPU per refused callback (a storm of bad signatures, each recorded) / off | (measured) | ${formatSummary(refused, 3, '×')} | |`)
    const w = refusals.ownWork
    rows.push(`| the store's own work per refused callback, measured alone (${formatNumber(w.perRecord, 2)} µs over off's ${formatNumber(w.offRefusedMicrosPerRequest)} µs) | (measured) | ${formatNumber(w.estimatedRefusedRatio, 3)}× | |`)
  }
  return rows.join('\n')
}

function ownWorkParagraph (metrics) {
  const w = metrics.ownWork
  if (w === undefined) return ''
  const st = metrics.settings
  return `Two runs of one server differ by about ±10 % on this shared machine whatever they run, so the paired ratio above cannot resolve 3 %. The metrics' own work, measured alone in the benchmark's process on the same build (CPU of many calls, the least of 7 repetitions): ${formatNumber(w.perRequest, 2)} µs per answered callback (its request time observed and its outcome counted), ${formatNumber(w.perCommit, 2)} µs per commit (its size and time observed; ${formatNumber(w.batchEvents, 1)} events per commit in these runs), ${formatNumber(w.perScrape / 1000, 2)} ms per scrape (shared by the ${formatNumber(st.rate * st.scrapeMs / 1000)} callbacks of one interval): **${formatNumber(w.addedMicrosPerRequest, 2)} µs per callback, ${formatNumber(100 * (w.estimatedRatio - 1), 2)} %** of the metrics-off server's ${formatNumber(w.offMicrosPerRequest)} µs (Fastify's call of the response hook and the default metrics' event-loop sampling are not in this figure; they are in the paired runs).

`
}

function metricsSection (metrics) {
  const st = metrics.settings
  const rows = Object.entries(metrics.cpu).map(([name, c]) => {
    const r = metrics.ratios[name]
    return `| ${st.variants[name]} | ${s1(c.cpuMicrosPerRequest)} | ${s1(c.mainThreadCpuMicrosPerRequest)} | ${s1(c.otherThreadsCpuMicrosPerRequest)} | ${r === undefined ? '–' : formatSummary(r.pairedByRound, 3, '×')} | ${r === undefined ? '–' : formatSummary(r.mainThreadPairedByRound, 3, '×')} | ${formatSummary(c.p50, 1, ' ms')} | ${formatSummary(c.p99, 0, ' ms')} | ${formatNumber(c.scrapes)} |`
  })
  const a = metrics.accounted
  return `## Metrics: what GET /metrics and its counters cost a callback (issue 12)

\`node bench/metrics.js\`. The service with its metrics on (the default: every answer timed by route template, every callback counted by gateway and outcome, every commit's size and time observed, and \`GET /metrics\` scraped every ${formatNumber(st.scrapeMs / 1000)} s during the runs, Prometheus is usually set to scrape every 15 to 60 s) against the same build started with \`PAYNOTIFY_METRICS=0\` (no hook, no counter, no route)${st.variants.before === undefined ? '' : `, and ${st.variants.before}`}. Signed generic callbacks (${formatNumber(st.repeatRatio * 100)} % gateway repeats), each acked after its commit (\`synchronous=FULL\`), at a steady ${formatNumber(st.rate)} req/s (bench/lib/fixed-rate.js, ${st.connections} connections), ${formatNumber(st.requests)} per run. CPU: user + system of the server process from /proc/<pid>/stat (every thread), over the run, per callback. One server per variant, started once (${formatNumber(st.warmup)} warm-up callbacks) and kept for every round; ${st.rounds} rounds, the variants in turn within each, the order turning every round; each ratio pairs a run with the metrics-off run of its own round (the machine's load average: ${formatNumber(st.loadAverage.before, 1)} at the start, ${formatNumber(st.loadAverage.after, 1)} at the end, on 2 cores).

| server | CPU µs per callback | of which HTTP thread | other threads (writer, GC) | ratio to off (paired by round) | HTTP thread ratio to off | p50 | p99 | scrapes |
|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

${ownWorkParagraph(metrics)}One scrape at the end: ${formatNumber(metrics.scrape.bytes)} bytes, ${formatNumber(metrics.scrape.series)} samples, answered in ${formatNumber(metrics.scrape.ms, 1)} ms. The metrics server's own counters account for every callback sent: ${formatNumber(a.accepted)} accepted + ${formatNumber(a.duplicate)} duplicate = ${formatNumber(a.accepted + a.duplicate)} of ${formatNumber(a.sent)} (${a.ok ? 'all' : '**NOT all**'}), log position ${formatNumber(a.position)}.
`
}

function refusalsSection (refusals) {
  const st = refusals.settings
  const rows = []
  for (const [loadName, byVariant] of Object.entries(refusals.cpu)) {
    for (const [name, c] of Object.entries(byVariant)) {
      const r = name === 'off' ? undefined : refusals.ratios[loadName]
      rows.push(`| ${loadName} | ${st.variants[name]} | ${s1(c.cpuMicrosPerRequest)} | ${s1(c.mainThreadCpuMicrosPerRequest)} | ${r === undefined ? '–' : formatSummary(r.pairedByRound, 3, '×')} | ${r === undefined ? '–' : formatSummary(r.mainThreadPairedByRound, 3, '×')} | ${formatSummary(c.p50, 1, ' ms')} | ${formatSummary(c.p99, 0, ' ms')} |`)
    }
  }
  const w = refusals.ownWork
  const a = refusals.accounted
  return `## Refusals: what keeping the last refused callbacks costs ingest (issue 12)

\`node bench/refusals.js\`. The service with its refusal store on (the default: the last 500 refused callbacks, at most 1 MiB, headers redacted and 1 KiB of body kept) against the same build started with \`PAYNOTIFY_REFUSALS_MAX=0\` (no store, no route), under two loads: ${st.loads.accepted}, at a steady ${formatNumber(st.rate)} req/s; and ${st.loads.refused}, at ${formatNumber(st.refusedRate)} req/s. ${formatNumber(st.requests)} requests per run, ${st.connections} connections (bench/lib/fixed-rate.js). CPU: user + system of the server process from /proc/<pid>/stat (every thread), per request. One server per variant, started once (${formatNumber(st.warmup)} warm-up requests of each load) and kept for every round; ${st.rounds} rounds, the variants in turn within each, the order turning every round; each ratio pairs a run with the store-off run of its own round and load (the machine's load average: ${formatNumber(st.loadAverage.before, 1)} at the start, ${formatNumber(st.loadAverage.after, 1)} at the end, on 2 cores).

| load | server | CPU µs per request | of which HTTP thread | ratio to off (paired by round) | HTTP thread ratio to off | p50 | p99 |
|---|---|---|---|---|---|---|---|
${rows.join('\n')}

An accepted callback never reaches the store (it is called from the notify route's error handler only). The store's own work, measured alone in the benchmark's process on the same build (CPU of many calls, the least of 7 repetitions): **${formatNumber(w.perRecord, 2)} µs per recorded refusal** of the storm's kind (a ${formatNumber(w.refusedBodyBytes)}-byte body, 7 headers, into a full store that evicts one per record), ${formatNumber(100 * (w.estimatedRefusedRatio - 1), 2)} % of the ${formatNumber(w.offRefusedMicrosPerRequest)} µs a refused callback costs the store-off server; ${formatNumber(w.perLargeRecord, 2)} µs with a 4 KiB body (1 KiB kept) and 30 headers. The store-on server recorded ${formatNumber(a.recorded)} of the ${formatNumber(a.sent)} refusals sent (${a.ok ? 'all, within its bounds' : '**NOT all, or not within its bounds**'}): it kept ${formatNumber(a.kept.entries)} (${formatNumber(a.kept.bytes)} bytes) and dropped ${formatNumber(a.kept.evicted)}.
`
}

function startupSection (startup) {
  const rows = ['| start | to "listening" | CPU of the serve process to then |', '|---|---|---|']
  for (const [name, figures] of Object.entries(startup.starts)) {
    rows.push(`| ${name} | ${formatSummary(figures.toListeningMs, 0, ' ms')} | ${figures.cpuMs === undefined ? 'n/a (npm, a shell and node)' : formatSummary(figures.cpuMs, 0, ' ms')} |`)
  }
  return `## Start-up (issue 13)

\`node bench/startup.js\`: ${startup.settings.rounds} rounds, the four starts in turn each round (load average ${formatSummary(startup.loadAverage, 1)}). Each start is timed from the spawn to the "paynotify listening on" line; the empty database is new each start (schema created, secrets generated), the ${formatNumber(startup.settings.events)}-event one is checked from its last signed checkpoint.

${rows.join('\n')}
`
}

function ingestSection (ingest) {
  const t = ingest.throughput
  const l = ingest.latency
  const c = ingest.cpuMicrosPerRequest
  const m = ingest.mainThreadCpuMicrosPerRequest ?? {}
  const e = ingest.eventsPerCommit
  const mc = key => m[key] === undefined ? '–' : s0(m[key])
  const st = ingest.settings
  return `## Ingest: ceiling, group commit, naive (benchmarks 1, 2, 3, 6)

Every run on a fresh server in a child process, the servers in turn within each of ${st.rounds} rounds (the order rotating from round to round), so the ratios compare runs that shared the machine's conditions.
Load: autocannon, ${st.connections} connections, pipelining 1, a fixed number of requests per run (about ${st.secondsPerRun} s each: ${Object.entries(st.amounts).map(([k, v]) => `${k} ${formatNumber(v)}`).join(', ')}) after ${formatNumber(st.warmupRequests)} warm-up requests; time from autocannon's start to the last response.
Every request carries its own body: the bodies are generated before the run and each connection gets its slice as pre-built requests in \`setupClient\`, so the load generator does no per-request work beyond sending (building a body per request in \`setupRequest\` held autocannon itself to about 10,000 req/s here).
Bodies: signed \`generic\` form callbacks (HMAC-SHA256 \`sign\`), each paying a distinct order, ${Math.round(st.repeatRatio * 100)}% of them a byte-for-byte resend of a recent one (a gateway retry).
paynotify runs \`node dist/cli/main.js serve\` with its defaults (WAL, \`synchronous=FULL\`, batch limit 1024, log level info to a file); the naive server differs only by \`PAYNOTIFY_BATCH_MAX=1\`, the inline one only by \`PAYNOTIFY_WRITER=inline\` (appends, projection and commits on the HTTP thread, as before the writer thread).
CPU per request is the server process's user + system time over the run divided by the requests (from /proc): it is much less sensitive to other load on the machine than req/s. The HTTP thread's share is its own thread's time (/proc/<pid>/task/<pid>); the rest is the writer thread, V8's GC helpers and libuv's pool.

| server | req/s | p50 ms | p99 ms | max ms | server CPU µs/request | of it, HTTP thread | events per commit |
|---|---|---|---|---|---|---|---|
| bare Fastify ceiling | ${s0(t.ceiling)} | ${s0(l.ceiling.p50)} | ${s0(l.ceiling.p99)} | ${s0(l.ceiling.max)} | ${s0(c.ceiling)} | ${mc('ceiling')} | – |
| paynotify, group commit on the writer thread (defaults) | ${s0(t.durable)} | ${s0(l.durable.p50)} | ${s0(l.durable.p99)} | ${s0(l.durable.max)} | ${s0(c.durable)} | ${mc('durable')} | ${s1(e.durable)} |
| paynotify, naive (batch 1) | ${s0(t.naive)} | ${s0(l.naive.p50)} | ${s0(l.naive.p99)} | ${s0(l.naive.max)} | ${s0(c.naive)} | ${mc('naive')} | ${s1(e.naive)} |
${t.inline === undefined ? '' : `| paynotify, group commit on the HTTP thread (PAYNOTIFY_WRITER=inline) | ${s0(t.inline)} | ${s0(l.inline.p50)} | ${s0(l.inline.p99)} | ${s0(l.inline.max)} | ${s0(c.inline)} | ${mc('inline')} | ${s1(e.inline)} |\n`}| paynotify at a steady ${formatNumber(st.halfRate)} req/s (half the median max; bench/lib/fixed-rate.js) | (fixed) | ${s1(l.halfRate.p50)} | ${s1(l.halfRate.p99)} | ${s1(l.halfRate.max)} | ${s0(c.halfRate)} | ${mc('halfRate')} | ${s1(e.halfRate)} |
| paynotify at ${formatNumber(st.halfRate)} req/s with autocannon \`overallRate\` | (fixed) | ${s1(l.halfRateAutocannon.p50)} | ${s1(l.halfRateAutocannon.p99)} | ${s1(l.halfRateAutocannon.max)} | ${s0(c.halfRateAutocannon)} | ${mc('halfRateAutocannon')} | ${s1(e.halfRateAutocannon)} |

Latency at half the maximum rate is judged on the steady-rate run. autocannon's rate limiter lets every connection send its share of the second back to back as the second starts and then pause, so \`overallRate\` loads the server in one burst per second; its latencies are also adjusted for coordinated omission with an expected interval of ⌈1/rate⌉ ms per connection, which adds synthetic samples to every slow answer. bench/lib/fixed-rate.js instead sends request *i* at start + *i*/rate (a 1 ms timer sends whatever has come due, on up to ${st.connections} keep-alive sockets) and measures each latency from that due time, so a server that falls behind is charged for the wait; its first second opens the sockets and is left out of the latency figures (not out of the ack count).

Ratios (median over median; min pairs the worst durable run with the best other run, max the reverse): durable / ceiling ${s2(ingest.ratios.durableOverCeiling)}, durable / naive ${formatSummary(ingest.ratios.durableOverNaive, 1, '×')}${ingest.ratios.durableOverInline === undefined ? '' : `, writer thread / inline ${s2(ingest.ratios.durableOverInline)}`}.

Correctness (benchmark 6): ${ingest.correctness.runsChecked} paynotify runs checked; in each, the 2xx answers equal the rows the run appended and \`verifyChain\` passes over the whole log: **${ingest.correctness.passed ? 'all passed' : 'FAILED'}** (${formatNumber(ingest.correctness.acked)} acks, ${formatNumber(ingest.correctness.appended)} rows).${ingest.correctness.failures.length > 0 ? '\n\nFailures:\n```json\n' + JSON.stringify(ingest.correctness.failures, null, 2) + '\n```' : ''}
`
}

function peerSection (peer) {
  const rows = peer.variants.map(v => `| ${v.label} | ${s0(v.appendsPerSecond)} | ${s0(v.cpuMicrosPerAppend)} | ${v.eventsPerCommit === undefined ? '–' : s1(v.eventsPerCommit)} |`)
  return `## Peer event store: single-event appends from ${peer.settings.callers} concurrent callers (benchmark 4)

In-process, each variant in its own child process, in turn, ${peer.settings.rounds} rounds of ${peer.settings.seconds} s; every caller appends one event at a time to a stream of its own choosing (${peer.settings.streams}), awaiting each append before the next.

| store | appends/s | CPU µs/append | events per commit |
|---|---|---|---|
${rows.join('\n')}

Ratios: paynotify EventLog.append / best Emmett variant ${formatSummary(peer.ratios.bareOverBestEmmett, 1, '×')}; with the order projection in the same transaction ${formatSummary(peer.ratios.projectedOverBestEmmett, 1, '×')}.

Durability settings, read back from each connection during the run:
${peer.settings.pragmas.map(p => `- ${p}`).join('\n')}

${peer.settings.notes.map(n => `- ${n}`).join('\n')}
`
}

function rebuildSection (rebuild) {
  const rb = rebuild.rebuild
  const ex = rebuild.export
  return `## Rebuild and export of ${formatNumber(rebuild.settings.events)} events (benchmark 5)

Log: ${rebuild.settings.description}
Each command runs as \`node dist/cli/main.js …\` in a child process under \`/usr/bin/time -v\` (peak RSS = maximum resident set size), ${rebuild.settings.rounds} rounds.

| command | seconds (whole process) | events/s (whole process) | events/s (the command's own summary, without start-up) | peak RSS MB |
|---|---|---|---|---|
| \`rebuild\` (the projection intact: every fresh row compared with the stored one, none written) | ${s2(rb.seconds)} | ${s0(rb.eventsPerSecond)} | ${s0(rb.ownEventsPerSecond)} | ${s0(rb.peakRssMb)} |
${rebuild.rebuildEmptied === undefined ? '' : `| \`rebuild\` after \`DELETE FROM orders\` (every row written) | ${s2(rebuild.rebuildEmptied.seconds)} | ${s0(rebuild.rebuildEmptied.eventsPerSecond)} | ${s0(rebuild.rebuildEmptied.ownEventsPerSecond)} | ${s0(rebuild.rebuildEmptied.peakRssMb)} |\n`}| \`export --out file\` | ${s2(ex.seconds)} | ${s0(ex.eventsPerSecond)} | ${s0(ex.ownEventsPerSecond)} | ${s0(ex.peakRssMb)} |
| \`export --out file --after ${formatNumber(rebuild.settings.smallAfter)}\` (the last tenth) | ${s2(ex.smallSeconds)} | – | – | ${s0(ex.smallPeakRssMb)} |

The targets are judged on the whole process (start-up included), as a user would time the command.

Export memory is constant when exporting the whole log takes no more resident memory than exporting its last tenth (within ${rebuild.settings.constantToleranceMb} MB; the whole export is ${formatNumber(rebuild.runs.export[0].bytes / 2 ** 20)} MiB of NDJSON): ${ex.constantMemory ? 'yes' : 'no'}.
Generating the log took ${formatNumber(rebuild.settings.generateSeconds, 1)} s (${rebuild.settings.generatedBy}).
`
}

function floodSection (flood) {
  const st = flood.settings
  const rows = []
  for (const [build, label] of Object.entries(st.builds)) {
    for (const [scenario, about] of Object.entries(st.scenarios)) {
      const row = flood.table[`${build}.${scenario}`]
      if (row === undefined) continue
      const answers = Object.entries(row.floodStatuses).map(([status, n]) => `${formatNumber(n)} × ${status}`).join(', ') || '–'
      const what = about.bytes === 0 ? about.label : `${about.label} (${formatNumber(about.bytes)} bytes, ${formatNumber(about.fields)} fields)`
      rows.push(`| ${label} | ${what} | ${formatSummary(row.p50, 1, ' ms')} | ${formatSummary(row.p99, 1, ' ms')} | ${formatSummary({ min: row.serverCpuShare.min * 100, median: row.serverCpuShare.median * 100, max: row.serverCpuShare.max * 100 }, 0, '%')} | ${answers} | ${formatNumber(row.legitNon2xx)} |`)
    }
  }
  return `## Unsigned Alipay flood beside legitimate callbacks (issue 10 §1)

\`node bench/alipay-flood.js\` (\`BENCH_BASELINE_DIST=<another build's dist>\` adds the same runs against that build, side by side). Signed \`generic\` callbacks arrive at a steady ${formatNumber(st.legitRate)} req/s (bench/lib/fixed-rate.js, latency from each request's due time) while unsigned form bodies are posted to \`/notify/alipay\` at ${formatNumber(st.floodRate)} req/s, each \`charset=gbk\`, a junk \`sign\` and distinct one-character fields; ${st.rounds} rounds of ${st.seconds} s, every run on a fresh server, the builds and flood kinds in turn within each round${st.loadAverage === undefined ? '' : ` (the machine's load average: ${formatNumber(st.loadAverage[0], 1)} at the start, ${formatNumber(st.loadAverage[1], 1)} at the end, on 2 cores)`}.

| build | flood | generic p50 | generic p99 | server CPU (of one core) | flood answers | generic callbacks not acked |
|---|---|---|---|---|---|---|
${rows.join('\n')}

The 63 KB bodies are over Alipay's 16 KiB body limit: they are refused (413) from their Content-Length, unread. The 16 KB bodies fit it and are refused by the 256-parameter cap, counted before any field is decoded; before, every field was percent-decoded and GBK-decoded first (about 23 ms for 8,000 fields, measured in a loop).
`
}

function streamSection (stream) {
  const st = stream.settings
  const rows = stream.logs.map(log => `| ${log.name} | ${formatSummary(log.baselineMb, 0, ' MB')} | ${formatSummary(log.growthMb, 1, ' MB')} | ${formatSummary(log.cpuSecondsWhilePaused, 2, ' s')} | ${formatSummary(log.readEventsPerSecond, 0)} | ${log.complete ? 'yes' : 'NO'} |`)
  return `## A reader that reads nothing: the admin NDJSON stream (issue 10)

Setup: ${st.description}. ${st.rounds} rounds per log, each on a freshly started server: the client reads nothing for ${st.pauseSeconds} s while the server's RSS is sampled from /proc every 100 ms, then reads the whole stream (and checks every line arrives once, in position order).

Logs:
${stream.logs.map(log => `- ${log.name}: ${log.description}.`).join('\n')}

| log | server RSS before the stream | its growth while the client read nothing | server CPU over those ${st.pauseSeconds} s | then reading the whole stream, events/s | every event, in order |
|---|---|---|---|---|---|
${rows.join('\n')}
`
}

/**
 * The same question answered from the backlog run, where the server did nothing but deliver:
 * its CPU per delivery times each variant's deliveries per callback, over no endpoint's CPU per
 * callback. Less noisy than the ratio of two loaded runs, whose writer batches differ.
 */
function estimate (outbound) {
  const perDelivery = outbound.delivery.backlog[0]?.cpuMicrosPerDelivery
  const none = outbound.cpu.none?.cpuMicrosPerRequest.median
  if (perDelivery === undefined || none === undefined) return ''
  const parts = ['all', 'paid'].filter(name => outbound.cpu[name] !== undefined).map(name => {
    const added = outbound.cpu[name].deliveriesPerRequest.median * perDelivery
    return `${outbound.settings.variants[name]}: ${formatNumber(outbound.cpu[name].deliveriesPerRequest.median, 2)} × ${formatNumber(perDelivery)} = ${formatNumber(added)} µs per callback, **+${formatNumber(100 * added / none)} %** of no endpoint's ${formatNumber(none)} µs`
  })
  return `Estimated from the backlog run instead (the server delivering alone, ${formatNumber(perDelivery)} µs of CPU per delivery, times the deliveries per callback): ${parts.join('; ')}.\n\n`
}

function outboundSection (outbound) {
  const st = outbound.settings
  const deliveryRows = [...outbound.delivery.backlog, ...outbound.delivery.live].map(d => {
    const how = d.mode === 'backlog' ? 'backlog: the receiver held its answers until the last ack, then answered all' : 'live: the receiver answered at once, delivery beside ingest'
    const cpu = d.mode === 'backlog' ? `${formatNumber(d.cpuMicrosPerDelivery)} µs per delivery (after the last ack: delivering alone)` : `${formatNumber(d.cpuMicrosPerRequest)} µs per callback (ingest and delivery together)`
    return `| ${how} | ${formatNumber(d.callbacksPerSecond)} | ${formatNumber(d.deliveries)} of ${formatNumber(d.expected)} | **${formatNumber(d.deliveriesPerSecond)}** | ${formatNumber(d.trailSeconds, 1)} s | ${cpu} | ${formatNumber(d.badSignatures)} / ${formatNumber(d.outOfOrder)} / ${formatNumber(d.repeats)} |`
  })
  const cpuRows = Object.entries(outbound.cpu).map(([name, c]) => {
    const r = outbound.ratios[name]
    return `| ${st.variants[name]} | ${s0(c.cpuMicrosPerRequest)} | ${s0(c.mainThreadCpuMicrosPerRequest)} | ${s0(c.otherThreadsCpuMicrosPerRequest)} | ${s2(c.deliveriesPerRequest)} | ${r === undefined ? '–' : formatSummary(r.pairedByRound, 2, '×')} | ${formatSummary(c.p50, 1, ' ms')} | ${formatSummary(c.p99, 0, ' ms')} |`
  })
  const c = outbound.correctness
  return `## Outbound: delivery to the merchant's endpoints (issue 11)

\`node bench/outbound.js\`. The servers are started with \`PAYNOTIFY_OUTBOUND_ALLOW_PRIVATE=1\`; the receiver is a plain HTTP server in the benchmark's process on 127.0.0.1 answering 200, which verifies every signature with the \`standardwebhooks\` library and checks that each order's messages arrive in version order${st.loadAverage === undefined ? '' : ` (the machine's load average: ${formatNumber(st.loadAverage[0], 1)} at the start, ${formatNumber(st.loadAverage[1], 1)} at the end, on 2 cores)`}.

**Deliveries/s.** One endpoint taking every type; ${formatNumber(st.orders)} orders registered (\`POST /orders\`) and then paid (signed generic callbacks), on ${st.connections} connections as fast as the service acks: 3 messages per order (\`order.updated\` on registration, \`order.updated\` and \`order.paid\` on payment). Deliveries/s: the backlog run counts from the moment the receiver opened, the live run from its first delivery; one run each, each on a fresh server.

| run | callbacks acked/s (registrations and payments) | delivered | deliveries/s | last delivery after the last ack | server CPU | bad signatures / out of order / repeats |
|---|---|---|---|---|---|---|
${deliveryRows.join('\n')}

**What an endpoint adds to ingest CPU.** Signed generic callbacks (${formatNumber(st.repeatRatio * 100)} % gateway repeats, as in the ingest benchmark; each new one pays a new order: \`order.updated\` and \`order.paid\`) at a steady ${formatNumber(st.rate)} req/s (bench/lib/fixed-rate.js), ${formatNumber(st.requests)} per run. The server's CPU (user + system from /proc/<pid>/stat, every thread) is counted from the first callback until every delivery the run caused is recorded, and divided by the callbacks. One server per variant, started once (${formatNumber(st.warmup)} warm-up callbacks, their deliveries drained) and kept for every round, so the runs of a round meet the same history; ${st.rounds} rounds, the variants in turn within each (the order turning every round); the ratio pairs each run with the no-endpoint run of its own round.

| server | CPU µs per callback | of which HTTP thread (routes, dispatcher) | other threads (writer, GC) | deliveries per callback | ratio to no endpoint (paired by round) | p50 | p99 |
|---|---|---|---|---|---|---|---|
${cpuRows.join('\n')}

${estimate(outbound)}Correctness over every run: ${c.passed ? '**all passed**' : '**FAILED**'}: ${formatNumber(c.badSignatures)} bad signatures, ${formatNumber(c.outOfOrder)} messages out of order, ${formatNumber(c.notDelivered)} deliveries not delivered.
`
}

function profileTable (title, profile, rows = 10) {
  const groups = profile.groups.slice(0, rows).map(g => `${g.percent}% ${g.name}`).join(' · ')
  const self = profile.self.slice(0, rows).map(f => `| ${f.percent}% | \`${f.name}\` |`).join('\n')
  return `**${title}** (${formatNumber(profile.samples)} samples). By group: ${groups}.

| self | function |
|---|---|
${self}
`
}

function profileSection (profile, rebuild) {
  const parts = ['## Where the time goes (profiles)\n',
    'Sampled with `node --cpu-prof` (wall-clock samples: `(idle)` is the event loop waiting, and time blocked in a synchronous call — SQLite\'s COMMIT waiting for fsync — counts as the JavaScript function that made the call, e.g. `sqliteTransaction`). Self time only; native SQLite work shows under the JavaScript function that called it.\n']
  if (profile?.attribution !== undefined) {
    const a = profile.attribution
    parts.push(`**Attribution** (medians of 3 rounds of 20,000 requests, the three servers in turn): the bare Fastify route ${formatNumber(a.ceiling.reqPerSec)} req/s at ${formatNumber(a.ceiling.cpuMicrosPerRequest)} µs CPU per request; the paynotify app with \`EventLog.append\` answered without SQLite (bench/stub-store-server.js: routing, logger, signature check, parsing, the notify handler) ${formatNumber(a.stubbedStore.reqPerSec)} req/s at ${formatNumber(a.stubbedStore.cpuMicrosPerRequest)} µs; the real server ${formatNumber(a.paynotify.reqPerSec)} req/s at ${formatNumber(a.paynotify.cpuMicrosPerRequest)} µs${a.paynotify.mainThreadCpuMicrosPerRequest === undefined ? '' : `, of which ${formatNumber(a.paynotify.mainThreadCpuMicrosPerRequest)} µs on its HTTP thread (the stub: ${formatNumber(a.stubbedStore.mainThreadCpuMicrosPerRequest)} µs on its one)`}. So the HTTP side costs ${formatNumber(a.stubbedStore.cpuMicrosPerRequest - a.ceiling.cpuMicrosPerRequest)} µs more than the bare route, and the append, projection and commit ${formatNumber(a.paynotify.cpuMicrosPerRequest - a.stubbedStore.cpuMicrosPerRequest)} µs${a.paynotify.mainThreadCpuMicrosPerRequest === undefined ? ', all on the one thread' : ', most of it on the writer thread'}.\n`)
  }
  if (profile !== undefined) {
    parts.push(profileTable(`paynotify serve, group commit, ${formatNumber(profile.ingest.requests)} requests at ${formatNumber(profile.ingest.reqPerSec)} req/s: the HTTP thread`, profile.ingest))
    if (profile.ingest.writer !== undefined) parts.push(profileTable('the same run: the writer thread', profile.ingest.writer))
    parts.push(profileTable(`paynotify serve, naive (batch 1), ${formatNumber(profile.naive.requests)} requests at ${formatNumber(profile.naive.reqPerSec)} req/s: the HTTP thread`, profile.naive))
    if (profile.naive.writer !== undefined) parts.push(profileTable('the same run: the writer thread', profile.naive.writer))
  }
  if (rebuild?.profiles !== undefined) {
    parts.push(profileTable(`paynotify rebuild of ${formatNumber(rebuild.settings.events)} events`, rebuild.profiles.rebuild))
    parts.push(profileTable(`paynotify export of ${formatNumber(rebuild.settings.events)} events`, rebuild.profiles.export))
  }
  return parts.join('\n')
}

/** Rebuilds bench/RESULTS.md from every saved result. */
export function writeReport () {
  const ingest = load('ingest')
  const peer = load('peer-append')
  const rebuild = load('rebuild')
  const profile = load('profile')
  const flood = load('alipay-flood')
  const stream = load('stream-backpressure')
  const outbound = load('outbound')
  const metrics = load('metrics')
  const refusals = load('refusals')
  const startup = load('startup')
  const machines = [
    ingest && machineSection(ingest.machine, 'ingest (1, 2, 3, 6)'),
    peer && machineSection(peer.machine, 'peer store (4)'),
    rebuild && machineSection(rebuild.machine, 'rebuild/export (5)'),
    flood && machineSection(flood.machine, 'alipay flood (issue 10)'),
    stream && machineSection(stream.machine, 'stream backpressure'),
    outbound && machineSection(outbound.machine, 'outbound (issue 11)'),
    metrics && machineSection(metrics.machine, 'metrics (issue 12)'),
    refusals && machineSection(refusals.machine, 'refusals (issue 12)'),
    startup && machineSection(startup.machine, 'start-up (issue 13)')
  ].filter(Boolean)
  const text = `# paynotify benchmarks

Written by \`npm run bench\` (each script also runs alone: \`node bench/ingest.js\`, \`node bench/peer-append.js\`, \`node bench/rebuild.js\`, \`node bench/profile.js\`, \`node bench/alipay-flood.js\`, \`node bench/stream-backpressure.js\`, \`node bench/outbound.js\`, \`node bench/metrics.js\`, \`node bench/refusals.js\`, \`node bench/startup.js\`; this file is rebuilt from \`bench/results/*.json\` after each).
All traffic is loopback. Every figure is min / **median** / max over the runs stated; the targets are judged on the median.
This is a 2-core machine shared with other work while these ran, so absolute figures move from run to run; the ratios come from runs made side by side in one invocation.

Measured:
${machines.join('\n')}

## Targets

${targetsTable(ingest, peer, rebuild, flood, stream, outbound, metrics, refusals, startup)}

${ingest === undefined ? '' : ingestSection(ingest)}
${peer === undefined ? '' : peerSection(peer)}
${rebuild === undefined ? '' : rebuildSection(rebuild)}
${flood === undefined ? '' : floodSection(flood)}
${stream === undefined ? '' : streamSection(stream)}
${outbound === undefined ? '' : outboundSection(outbound)}
${metrics === undefined ? '' : metricsSection(metrics)}
${refusals === undefined ? '' : refusalsSection(refusals)}
${startup === undefined ? '' : startupSection(startup)}
${profile === undefined && rebuild?.profiles === undefined ? '' : profileSection(profile, rebuild)}
${notes}
`
  writeFileSync(join(root, 'bench', 'RESULTS.md'), text.replace(/\n{3,}/g, '\n\n'))
}

if (process.argv[1] === new URL(import.meta.url).pathname) writeReport()
