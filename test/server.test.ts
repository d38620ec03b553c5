import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import t from 'tap'
import { verifyChain } from '../src/event-log/verify-chain.js'
import { signGenericParams } from '../src/gateways/generic.js'
import { tempDir } from './helpers.js'

const main = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js')

/** A port that was free a moment ago: listen on 0, read it, let it go. */
async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => { resolve(typeof address === 'object' && address !== null ? address.port : 0) })
    })
  })
}

interface Running {
  child: ChildProcess
  output: () => { stdout: string, stderr: string }
  /** Resolves with the exit code (or signal) once the process has ended. */
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

interface Teardown { teardown: (fn: () => unknown) => void }

function startCli (t: Teardown, args: string[], env: Record<string, string>, cwd?: string): Running {
  const child = spawn(process.execPath, [main, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => {
    child.once('exit', (code, signal) => { resolve({ code, signal }) })
  })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  return { child, output: () => ({ stdout, stderr }), exited }
}

/** Waits, at most `ms`, for `done` to hold, or for the process to end; then says which. */
async function waitFor (running: Running, done: () => boolean, ms: number): Promise<'done' | 'exited' | 'timeout'> {
  const deadline = Date.now() + ms
  let ended = false
  running.exited.then(() => { ended = true }, () => { ended = true })
  while (Date.now() < deadline) {
    if (done()) return 'done'
    if (ended) return 'exited'
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return 'timeout'
}

/** Sends SIGTERM and waits, at most `ms`, for the exit. */
async function stop (running: Running, ms: number): Promise<{ code: number | null, signal: NodeJS.Signals | null } | 'timeout'> {
  running.child.kill('SIGTERM')
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<'timeout'>(resolve => { timer = setTimeout(() => { resolve('timeout') }, ms) })
  const result = await Promise.race([running.exited, timeout])
  clearTimeout(timer)
  return result
}

function signedBody (params: Record<string, string>, secret: string): string {
  return new URLSearchParams({ ...params, sign: signGenericParams(params, secret) }).toString()
}

t.test('serve: a signed form POST over real HTTP gets success; SIGTERM closes cleanly; a restart keeps state and secrets', async t => {
  const dir = tempDir(t)
  const dbPath = join(dir, 'data', 'paynotify.db')
  const port = await freePort()
  // As on a fresh machine: no PAYNOTIFY_DB, so the default ./data is created in the current directory.
  const env = { PAYNOTIFY_HOST: '127.0.0.1', PAYNOTIFY_PORT: String(port) }

  const first = startCli(t, ['serve'], env, dir)
  const listening = await waitFor(first, () => first.output().stderr.includes('paynotify listening on'), 30_000)
  t.equal(listening, 'done', `the service started (stderr: ${first.output().stderr.slice(0, 500)})`)
  if (listening !== 'done') return
  const { stderr } = first.output()
  t.match(stderr, `paynotify listening on http://127.0.0.1:${port}`, 'a person reads the address on stderr')
  const secretsFile = join(dir, 'data', 'paynotify.secrets.json')
  const secrets = JSON.parse(readFileSync(secretsFile, 'utf8')) as Record<string, string>
  // stderr is a pipe here, as under a supervisor that ships it to a log collector: the values stay in the file.
  t.match(stderr, `paynotify generated PAYNOTIFY_GENERIC_SECRET, PAYNOTIFY_ADMIN_TOKEN, PAYNOTIFY_MERCHANT_TOKEN and stored them in ${secretsFile} (mode 0600); their values are not printed because this output is not a terminal`)
  for (const value of Object.values(secrets)) t.notMatch(first.output().stdout + stderr, value, 'no generated secret is printed when the output is not a terminal')

  const body = signedBody({ order_id: 'SRV-1', amount: '100', status: '1' }, secrets.genericSecret!)
  const res = await fetch(`http://127.0.0.1:${port}/notify/generic`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body
  })
  t.equal(res.status, 200)
  t.equal(await res.text(), 'success')
  t.match(res.headers.get('content-type'), /^text\/plain/)
  const unsigned = await fetch(`http://127.0.0.1:${port}/notify/generic`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'order_id=SRV-2&amount=1&status=1'
  })
  t.equal(unsigned.status, 401)

  const exit = await stop(first, 20_000)
  t.same(exit, { code: 0, signal: null }, 'SIGTERM: exit code 0 after a graceful close')
  const logLines = first.output().stdout.split('\n').filter(line => line !== '')
  t.ok(logLines.length > 0, 'the service logs on stdout')
  t.same(logLines.filter(line => { try { JSON.parse(line); return false } catch { return true } }), [], 'every line on stdout is JSON (the log), nothing else')
  t.ok(logLines.some(line => (JSON.parse(line) as { msg?: string }).msg === `paynotify listening on http://127.0.0.1:${port}`), 'listening is a JSON log line too')
  t.notMatch(first.output().stdout, secrets.genericSecret!, 'the secret does not reach the log')
  t.notMatch(first.output().stdout + first.output().stderr, body.split('sign=')[1]!, 'nor does the signature')

  // What was acked is on disk, with an intact chain.
  const db = new SQLite(dbPath, { readonly: true })
  t.teardown(() => db.close())
  t.equal((db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n, 1)
  t.match(verifyChain(db), { ok: true, checked: 1 })
  db.close()

  const second = startCli(t, ['serve'], env, dir)
  t.equal(await waitFor(second, () => second.output().stderr.includes('paynotify listening on'), 30_000), 'done', 'restarted')
  t.notMatch(second.output().stderr, /generated/, 'nothing generated on the second start')
  const order = await fetch(`http://127.0.0.1:${port}/admin/orders/SRV-1`, { headers: { authorization: `Bearer ${secrets.adminToken}` } })
  t.equal(order.status, 200)
  t.match(await order.json(), { orderId: 'SRV-1', status: 'paid', paidAmount: 10000 })
  const repeat = await fetch(`http://127.0.0.1:${port}/notify/generic`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body })
  t.equal(await repeat.text(), 'success', 'the stored secret still verifies')

  // SIGTERM while callbacks keep coming (4 senders, each until refused): whatever was acked must be on disk.
  const acked: string[] = []
  let signalled: Promise<{ code: number | null, signal: NodeJS.Signals | null } | 'timeout'> | undefined
  const sender = async (worker: number): Promise<void> => {
    for (let i = 0; i < 500; i++) {
      const orderId = `LATE-${worker}-${i}`
      try {
        const r = await fetch(`http://127.0.0.1:${port}/notify/generic`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: signedBody({ order_id: orderId, amount: '1', status: '1' }, secrets.genericSecret!)
        })
        if ((await r.text()) !== 'success') return
        acked.push(orderId)
      } catch {
        return
      }
      if (acked.length === 20 && signalled === undefined) signalled = stop(second, 20_000)
    }
  }
  await Promise.all([0, 1, 2, 3].map(sender))
  t.ok(signalled !== undefined, 'SIGTERM was sent while callbacks were being acked')
  t.same(await (signalled ?? stop(second, 20_000)), { code: 0, signal: null })
  const after = new SQLite(dbPath, { readonly: true })
  t.teardown(() => after.close())
  const stored = new Set((after.prepare("SELECT stream_id FROM events WHERE stream_id LIKE 'LATE-%'").all() as Array<{ stream_id: string }>).map(r => r.stream_id))
  t.ok(acked.every(id => stored.has(id)), `all ${acked.length} callbacks acked during shutdown are stored`)
  t.match(verifyChain(after), { ok: true })
})

t.test('serve: an invalid configuration stops the start with exit code 2, naming the variable', async t => {
  const dir = tempDir(t)
  const running = startCli(t, ['serve'], { PAYNOTIFY_PORT: 'eighty', PAYNOTIFY_DB: join(dir, 'x.db') })
  t.equal(await waitFor(running, () => false, 30_000), 'exited')
  t.same(await running.exited, { code: 2, signal: null })
  t.match(running.output().stderr, /^paynotify: invalid configuration: PAYNOTIFY_PORT must be integer/)
  t.equal(running.output().stdout, '')
})

t.test('serve: a port already in use fails the start with exit code 1', async t => {
  const dir = tempDir(t)
  const blocker = createServer()
  await new Promise<void>(resolve => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { blocker.close() })
  const address = blocker.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const running = startCli(t, ['serve'], { PAYNOTIFY_HOST: '127.0.0.1', PAYNOTIFY_PORT: String(port), PAYNOTIFY_DB: join(dir, 'x.db'), PAYNOTIFY_LOG_LEVEL: 'silent' })
  t.equal(await waitFor(running, () => false, 30_000), 'exited')
  t.same(await running.exited, { code: 1, signal: null })
  t.match(running.output().stderr, /EADDRINUSE/)
})
