import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import t from 'tap'
import { verifyChain } from '../src/event-log/verify-chain.js'
import { signGenericParams } from '../src/gateways/generic.js'
import { tempDir } from './helpers.js'
import { startRefused, startService, type Exit } from './service-process.js'

function signedBody (params: Record<string, string>, secret: string): string {
  return new URLSearchParams({ ...params, sign: signGenericParams(params, secret) }).toString()
}

t.test('serve: a signed form POST over real HTTP gets success; SIGTERM closes cleanly; a restart keeps state and secrets', async t => {
  const dir = tempDir(t)
  const dbPath = join(dir, 'data', 'paynotify.db')
  // As on a fresh machine: no PAYNOTIFY_DB, so the default ./data is created in the current directory.
  const env = { PATH: process.env.PATH ?? '', PAYNOTIFY_HOST: '127.0.0.1', PAYNOTIFY_PORT: '0' }

  const first = await startService(t, env, ['serve'], { cwd: dir })
  t.match(first.url, /^http:\/\/127\.0\.0\.1:\d+$/, 'it announces the host it was given and the port the system chose')
  const stderr = first.stderr()
  t.match(stderr, `paynotify listening on ${first.url}`, 'a person reads the address on stderr')
  const secretsFile = join(dir, 'data', 'paynotify.secrets.json')
  const secrets = JSON.parse(readFileSync(secretsFile, 'utf8')) as Record<string, string>
  // stderr is a pipe here, as under a supervisor that ships it to a log collector: the values stay in the file.
  t.match(stderr, `paynotify generated PAYNOTIFY_GENERIC_SECRET, PAYNOTIFY_ADMIN_TOKEN, PAYNOTIFY_MERCHANT_TOKEN and stored them in ${secretsFile} (mode 0600); their values are not printed because this output is not a terminal`)
  for (const value of Object.values(secrets)) t.notMatch(first.output(), value, 'no generated secret is printed when the output is not a terminal')

  const body = signedBody({ order_id: 'SRV-1', amount: '100', status: '1' }, secrets.genericSecret!)
  const res = await fetch(`${first.url}/notify/generic`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body
  })
  t.equal(res.status, 200)
  t.equal(await res.text(), 'success')
  t.match(res.headers.get('content-type'), /^text\/plain/)
  const unsigned = await fetch(`${first.url}/notify/generic`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'order_id=SRV-2&amount=1&status=1'
  })
  t.equal(unsigned.status, 401)

  const exit = await first.stop()
  t.same(exit, { code: 0, signal: null }, 'SIGTERM: exit code 0 after a graceful close')
  const logLines = first.stdout().split('\n').filter(line => line !== '')
  t.ok(logLines.length > 0, 'the service logs on stdout')
  t.same(logLines.filter(line => { try { JSON.parse(line); return false } catch { return true } }), [], 'every line on stdout is JSON (the log), nothing else')
  t.ok(logLines.some(line => (JSON.parse(line) as { msg?: string }).msg === `paynotify listening on ${first.url}`), 'listening is a JSON log line too')
  t.notMatch(first.stdout(), secrets.genericSecret!, 'the secret does not reach the log')
  t.notMatch(first.output(), body.split('sign=')[1]!, 'nor does the signature')

  // What was acked is on disk, with an intact chain.
  const db = new SQLite(dbPath, { readonly: true })
  t.teardown(() => db.close())
  t.equal((db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n, 1)
  t.match(verifyChain(db), { ok: true, checked: 1 })
  db.close()

  const second = await startService(t, env, ['serve'], { cwd: dir })
  t.notMatch(second.stderr(), /generated/, 'nothing generated on the second start')
  const order = await fetch(`${second.url}/admin/orders/SRV-1`, { headers: { authorization: `Bearer ${secrets.adminToken}` } })
  t.equal(order.status, 200)
  t.match(await order.json(), { orderId: 'SRV-1', status: 'paid', paidAmount: 10000 })
  const repeat = await fetch(`${second.url}/notify/generic`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body })
  t.equal(await repeat.text(), 'success', 'the stored secret still verifies')

  // SIGTERM while callbacks keep coming (4 senders, each until refused): whatever was acked must be on disk.
  const acked: string[] = []
  let signalled: Promise<Exit> | undefined
  const sender = async (worker: number): Promise<void> => {
    for (let i = 0; i < 500; i++) {
      const orderId = `LATE-${worker}-${i}`
      try {
        const r = await fetch(`${second.url}/notify/generic`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: signedBody({ order_id: orderId, amount: '1', status: '1' }, secrets.genericSecret!)
        })
        if ((await r.text()) !== 'success') return
        acked.push(orderId)
      } catch {
        return
      }
      if (acked.length === 20 && signalled === undefined) signalled = second.stop()
    }
  }
  await Promise.all([0, 1, 2, 3].map(sender))
  t.ok(signalled !== undefined, 'SIGTERM was sent while callbacks were being acked')
  t.same(await (signalled ?? second.stop()), { code: 0, signal: null })
  const after = new SQLite(dbPath, { readonly: true })
  t.teardown(() => after.close())
  const stored = new Set((after.prepare("SELECT stream_id FROM events WHERE stream_id LIKE 'LATE-%'").all() as Array<{ stream_id: string }>).map(r => r.stream_id))
  t.ok(acked.every(id => stored.has(id)), `all ${acked.length} callbacks acked during shutdown are stored`)
  t.match(verifyChain(after), { ok: true })
})

t.test('serve: an invalid configuration stops the start with exit code 2, naming the variable', async t => {
  const dir = tempDir(t)
  const refused = await startRefused(t, { PATH: process.env.PATH ?? '', PAYNOTIFY_PORT: 'eighty', PAYNOTIFY_DB: join(dir, 'x.db') })
  t.same(refused.exit, { code: 2, signal: null })
  t.match(refused.stderr, /^paynotify: invalid configuration: PAYNOTIFY_PORT must be integer/)
  t.equal(refused.stdout, '')
})

t.test('serve: a port already in use fails the start with exit code 1', async t => {
  const dir = tempDir(t)
  const blocker = createServer()
  await new Promise<void>(resolve => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { blocker.close() })
  const address = blocker.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  // The blocker holds the port for the whole test: nothing else can take it in between.
  const refused = await startRefused(t, { PATH: process.env.PATH ?? '', PAYNOTIFY_HOST: '127.0.0.1', PAYNOTIFY_PORT: String(port), PAYNOTIFY_DB: join(dir, 'x.db'), PAYNOTIFY_LOG_LEVEL: 'silent' })
  t.same(refused.exit, { code: 1, signal: null })
  t.match(refused.stderr, /EADDRINUSE/)
})
