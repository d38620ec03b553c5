// Where the time goes: the service under the ingest load of bench/ingest.js,
// profiled with `node --cpu-prof` (the V8 sampling profiler), summarized by
// self time per group (the service's own modules, each dependency, Node's
// JavaScript, native work, GC, idle) and per function. The rebuild and
// export profiles are taken by bench/rebuild.js. Usage: node bench/profile.js.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createBodyGenerator } from './lib/bodies.js'
import { runLoad } from './lib/load.js'
import { machineInfo } from './lib/machine.js'
import { summarizeProfile } from './lib/profile-summary.js'
import { saveResult, writeReport } from './lib/report.js'
import { cpuSeconds, startCeiling, startPaynotify, threadCpuSeconds } from './lib/servers.js'

const amount = Number(process.env.BENCH_PROFILE_REQUESTS ?? 30_000)

async function profileServer (label, key, env) {
  const dir = mkdtempSync(join(tmpdir(), 'paynotify-profile-'))
  try {
    const server = await startPaynotify({ env, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`] })
    const generator = createBodyGenerator({ prefix: `p${process.pid}${key}` })
    const result = await runLoad({ url: server.url, generator, amount })
    if (result.ok !== amount) throw new Error(`${label}: ${amount - result.ok} of ${amount} requests were not acked`)
    await server.stop()
    server.cleanup()
    // One profile per thread, named CPU.<date>.<time>.<pid>.<thread>.<seq>: thread 0 is the HTTP thread, the other the writer.
    const files = readdirSync(dir).filter(name => name.endsWith('.cpuprofile')).sort((a, b) => a.split('.')[4] - b.split('.')[4])
    if (files.length === 0) throw new Error('the server wrote no profile')
    process.stderr.write(`[profile] ${label}: ${Math.round(result.reqPerSec)} req/s while profiled\n`)
    const writer = files.length > 1 ? summarizeProfile(join(dir, files[1]), 15) : undefined
    return { label, requests: amount, reqPerSec: result.reqPerSec, ...summarizeProfile(join(dir, files[0]), 15), ...(writer === undefined ? {} : { writer }) }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * The HTTP thread's own share: the same load on bench/ceiling-server.js, on
 * bench/stub-store-server.js (the app with append answered without SQLite)
 * and on the real server, in turn, three rounds; CPU per request from /proc.
 */
async function attribution () {
  const kinds = {
    ceiling: () => startCeiling(),
    stubbedStore: () => startCeiling({ script: 'stub-store-server.js' }),
    paynotify: () => startPaynotify()
  }
  const runs = Object.fromEntries(Object.keys(kinds).map(kind => [kind, []]))
  for (let round = 0; round < 3; round++) {
    for (const [kind, start] of Object.entries(kinds)) {
      const server = await start()
      try {
        const generator = createBodyGenerator({ prefix: `a${process.pid}r${round}${kind}` })
        await runLoad({ url: server.url, generator, amount: 2000 })
        const before = cpuSeconds(server.pid)
        const threadsBefore = threadCpuSeconds(server.pid)
        const load = await runLoad({ url: server.url, generator, amount: 20_000 })
        if (load.ok !== 20_000) throw new Error(`${kind}: ${20_000 - load.ok} requests not acked`)
        const threadsAfter = threadCpuSeconds(server.pid)
        runs[kind].push({
          reqPerSec: load.reqPerSec,
          cpuMicrosPerRequest: (cpuSeconds(server.pid) - before) * 1e6 / 20_000,
          mainThreadCpuMicrosPerRequest: (threadsAfter.main - threadsBefore.main) * 1e6 / 20_000
        })
      } finally {
        await server.stop()
        server.cleanup()
      }
    }
  }
  const median = list => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)]
  return Object.fromEntries(Object.entries(runs).map(([kind, list]) => [kind, {
    reqPerSec: median(list.map(r => r.reqPerSec)),
    cpuMicrosPerRequest: median(list.map(r => r.cpuMicrosPerRequest)),
    mainThreadCpuMicrosPerRequest: median(list.map(r => r.mainThreadCpuMicrosPerRequest)),
    runs: list
  }]))
}

const result = {
  machine: machineInfo(),
  attribution: await attribution(),
  ingest: await profileServer('group commit (defaults)', 'g', {}),
  naive: await profileServer('naive (PAYNOTIFY_BATCH_MAX=1)', 'n', { PAYNOTIFY_BATCH_MAX: '1' })
}
saveResult('profile', result)
writeReport()
