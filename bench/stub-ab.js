// A/B of the HTTP thread's CPU per accepted callback: bench/stub-store-server.js
// (the real app, the append answered without SQLite) started from two or more
// builds in turn, side by side, several rounds with the order rotating each
// round; CPU µs per request of the server process from /proc (user + system:
// far steadier than req/s on a shared machine; judge by min and median). With
// --profile, one more run of each is taken under `node --cpu-prof` and summarized
// (shares are the thing to read: on a loaded machine the sampler loses samples).
// `ceiling` in place of a build runs bench/ceiling-server.js, the bare route, for scale.
// Usage: node bench/stub-ab.js [--profile] [ceiling] DIST_A DIST_B … (e.g. .perf-c/base dist)
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { createBodyGenerator } from './lib/bodies.js'
import { runLoad } from './lib/load.js'
import { root } from './lib/machine.js'
import { summarizeProfile } from './lib/profile-summary.js'
import { freePort } from './lib/servers.js'
import { summarize } from './lib/stats.js'

const args = process.argv.slice(2)
const profile = args.includes('--profile')
const ceiling = 'ceiling'
const dists = args.filter(arg => arg !== '--profile').map(dist => (dist === ceiling ? ceiling : resolve(root, dist)))
if (dists.length === 0) throw new Error('usage: node bench/stub-ab.js [--profile] DIST_A DIST_B …')
const rounds = Number(process.env.BENCH_AB_ROUNDS ?? 4)
const amount = Number(process.env.BENCH_AB_REQUESTS ?? 20_000)
const warmup = 3000

/** User and system CPU seconds of a process so far, from /proc (Linux reports clock ticks at 100 Hz). */
function cpuTimes (pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 }
}

async function startStub (dist, profileFile) {
  const port = await freePort()
  const script = dist === ceiling ? 'ceiling-server.js' : 'stub-store-server.js'
  const env = { PATH: process.env.PATH, PORT: String(port), BENCH_DIST: dist }
  // The whole process is profiled (V8's --cpu-prof, 100 µs sampling): start-up shows as module loading and compiling.
  const nodeArgs = profileFile === undefined ? [] : ['--cpu-prof', '--cpu-prof-interval=100', `--cpu-prof-dir=${dirname(profileFile)}`, `--cpu-prof-name=${basename(profileFile)}`]
  const child = spawn(process.execPath, [...nodeArgs, join(root, 'bench', script)], {
    cwd: root,
    env,
    stdio: ['ignore', 'ignore', 'inherit']
  })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`stub server (${dist}) exited with code ${child.exitCode}`)
    try {
      if ((await fetch(`${url}/healthz`)).ok) break
    } catch {}
    if (Date.now() > deadline) throw new Error('stub server not ready in 30 s')
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  const stop = () => new Promise(resolve => {
    if (child.exitCode !== null) return resolve(child.exitCode)
    child.once('exit', code => resolve(code))
    child.kill('SIGTERM')
  })
  return { url, pid: child.pid, stop }
}

async function measure (dist, tag, profileFile) {
  const server = await startStub(dist, profileFile)
  try {
    const generator = createBodyGenerator({ prefix: `ab${process.pid}${tag}` })
    await runLoad({ url: server.url, generator, amount: warmup })
    const before = cpuTimes(server.pid)
    const load = await runLoad({ url: server.url, generator, amount })
    if (load.ok !== amount) throw new Error(`${dist}: ${amount - load.ok} of ${amount} requests not acked`)
    const after = cpuTimes(server.pid)
    const perRequest = seconds => seconds * 1e6 / amount
    return { cpu: perRequest(after.user + after.system - before.user - before.system), system: perRequest(after.system - before.system), reqPerSec: load.reqPerSec }
  } finally {
    await server.stop()
  }
}

const runs = dists.map(() => [])
for (let round = 0; round < rounds; round++) {
  for (let i = 0; i < dists.length; i++) {
    const k = (i + round) % dists.length
    const run = await measure(dists[k], `r${round}d${k}`)
    runs[k].push(run)
    process.stderr.write(`round ${round} ${dists[k]}: ${run.cpu.toFixed(1)} µs/req (system ${run.system.toFixed(1)}), ${Math.round(run.reqPerSec)} req/s\n`)
  }
}
for (let k = 0; k < dists.length; k++) {
  const cpu = summarize(runs[k].map(r => r.cpu))
  const system = summarize(runs[k].map(r => r.system))
  const rate = summarize(runs[k].map(r => r.reqPerSec))
  console.log(`${dists[k]}: CPU µs/req min ${cpu.min.toFixed(1)} / median ${cpu.median.toFixed(1)} / max ${cpu.max.toFixed(1)} (system median ${system.median.toFixed(1)}); req/s median ${Math.round(rate.median)}`)
}
if (profile) {
  for (const dist of dists) {
    const dir = mkdtempSync(join(tmpdir(), 'paynotify-stub-prof-'))
    try {
      const file = join(dir, 'stub.cpuprofile')
      await measure(dist, 'prof', file)
      const summary = summarizeProfile(file, Number(process.env.BENCH_AB_TOP ?? 40))
      // Per function: its share of the busy samples (idle left out) and the sampled time per request
      // (samples × the 100 µs interval / requests served, warm-up included; start-up shows as module loading).
      const idle = summary.groups.find(row => row.name === '(idle)')?.percent ?? 0
      const perRequest = percent => percent / 100 * summary.samples * 100 / (warmup + amount)
      console.log(`\n== ${dist}: ${summary.samples} samples, ${idle}% idle, ${perRequest(100 - idle).toFixed(1)} µs/req sampled ==`)
      for (const section of ['groups', 'self', 'inclusive']) {
        console.log(`-- ${section} (% of busy, sampled µs/req) --`)
        for (const row of summary[section].filter(row => row.name !== '(idle)')) {
          console.log(`${(100 * row.percent / (100 - idle)).toFixed(1).padStart(5)}% ${perRequest(row.percent).toFixed(2).padStart(6)}  ${row.name}`)
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
