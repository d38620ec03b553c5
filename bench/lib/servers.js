import { spawn } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { root } from './machine.js'
import { benchAdminToken, benchMerchantToken, benchSecret } from './bodies.js'

/** A free loopback port (bound and released; nothing else on this machine races for it in a benchmark). */
export async function freePort () {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

async function waitReady (url, child, deadlineMs = 30_000) {
  const deadline = Date.now() + deadlineMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with code ${child.exitCode} before it was ready`)
    try {
      const res = await fetch(url)
      if (res.ok) return
    } catch {}
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`server at ${url} not ready within ${deadlineMs} ms`)
}

function spawnServer (args, env, logFile) {
  const out = openSync(logFile, 'a')
  const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', out, out] })
  closeSync(out)
  return child
}

/**
 * CPU seconds (user + system) a process has used so far, from /proc: the
 * per-request CPU cost it gives is far less sensitive to other load on a
 * shared machine than req/s. Null where /proc is not available.
 */
export function cpuSeconds (pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // Fields 14 and 15 of stat (utime, stime) in clock ticks; Linux reports them at 100 Hz to user space.
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return null
  }
}

/**
 * CPU seconds of a process's main thread (the HTTP thread: its thread id is
 * the pid) and of all its other threads together (the writer thread, V8's GC
 * helpers, the libuv pool), from /proc/<pid>/task. Null where /proc is not available.
 */
export function threadCpuSeconds (pid) {
  try {
    let main = 0
    let others = 0
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const seconds = (Number(fields[11]) + Number(fields[12])) / 100
      if (tid === String(pid)) main += seconds
      else others += seconds
    }
    return { main, others }
  } catch {
    return null
  }
}

async function stopChild (child, deadlineMs = 30_000) {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
  const exited = new Promise(resolve => child.once('exit', code => resolve(code)))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), deadlineMs)
  const code = await exited
  clearTimeout(timer)
  return code
}

/** The environment a benchmarked service runs with: its database and port, the bench's secrets, then `env`. */
export function serviceEnv (dbPath, port, env = {}) {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    PAYNOTIFY_DB: dbPath,
    PAYNOTIFY_HOST: '127.0.0.1',
    PAYNOTIFY_PORT: String(port),
    PAYNOTIFY_GENERIC_SECRET: benchSecret,
    PAYNOTIFY_ADMIN_TOKEN: benchAdminToken,
    PAYNOTIFY_MERCHANT_TOKEN: benchMerchantToken,
    ...env
  }
}

/**
 * Starts the real service (`node dist/cli/main.js serve`) in a child process
 * on a fresh database in a temp dir, with the default settings unless `env`
 * overrides them. Its log goes to a file beside the database, as a deployed
 * service's stdout would go to a file or the journal.
 */
export async function startPaynotify ({ env = {}, nodeArgs = [], dist, readyTimeoutMs } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'paynotify-bench-'))
  const dbPath = join(dir, 'paynotify.db')
  const port = await freePort()
  const childEnv = serviceEnv(dbPath, port, env)
  // `dist` or BENCH_DIST points at another build of the service (an A/B comparison of two builds); dist/ by default.
  const build = dist ?? process.env.BENCH_DIST ?? join(root, 'dist')
  const child = spawnServer([...nodeArgs, join(build, 'cli', 'main.js'), 'serve'], childEnv, join(dir, 'server.log'))
  const url = `http://127.0.0.1:${port}`
  await waitReady(`${url}/healthz`, child, readyTimeoutMs)
  return {
    url,
    dir,
    dbPath,
    pid: child.pid,
    /** Graceful stop (SIGTERM: queued batches commit, the database closes); resolves with the exit code. */
    stop: () => stopChild(child),
    cleanup: () => rmSync(dir, { recursive: true, force: true })
  }
}

/** Starts bench/ceiling-server.js: a bare Fastify route with the same body parser, answering `success`. */
export async function startCeiling ({ script = 'ceiling-server.js' } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'paynotify-ceiling-'))
  const port = await freePort()
  const child = spawnServer([join(root, 'bench', script)], { PATH: process.env.PATH, PORT: String(port) }, join(dir, 'server.log'))
  const url = `http://127.0.0.1:${port}`
  await waitReady(`${url}/healthz`, child)
  return { url, dir, pid: child.pid, stop: () => stopChild(child), cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}
