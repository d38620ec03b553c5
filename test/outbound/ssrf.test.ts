import { join } from 'node:path'
import t from 'tap'
import { adminAuth, tempDir } from '../helpers.js'
import { adminGet, callbackParams, createEndpoint, eventually, outboxRows, sendCallback, startOutboundApp } from './harness.js'
import { startReceiver } from './receiver.js'

const strict = { PAYNOTIFY_OUTBOUND_ALLOW_PRIVATE: '0' }

const internal = /loopback, private or reserved address/

// Each is refused before any connection: IP literals are judged as parsed, `localhost` as /etc/hosts resolves it.
const refusedUrls = [
  ['http://198.51.99.10/hooks', 'plain http', /must be https/],
  ['ftp://198.51.99.10/hooks', 'not http at all', /must be https/],
  ['https://127.0.0.1/hooks', 'loopback', internal],
  ['https://127.1/hooks', 'loopback, short form', internal],
  ['https://2130706433/hooks', 'loopback as one decimal number', internal],
  ['https://0x7f000001/hooks', 'loopback in hex', internal],
  ['https://[::1]/hooks', 'IPv6 loopback', internal],
  ['https://[::ffff:127.0.0.1]/hooks', 'loopback mapped into IPv6', internal],
  ['https://localhost/hooks', 'a name that resolves to loopback', internal],
  ['https://10.1.2.3/hooks', 'private 10/8', internal],
  ['https://172.16.0.1/hooks', 'private 172.16/12', internal],
  ['https://192.168.1.1/hooks', 'private 192.168/16', internal],
  ['https://169.254.169.254/latest/meta-data/', 'link-local (cloud metadata)', internal],
  ['https://100.64.0.1/hooks', 'carrier-grade NAT', internal],
  ['https://[fd00::1]/hooks', 'IPv6 unique-local', internal],
  ['https://0.0.0.0/hooks', 'unspecified', internal],
  ['https://user:secret@198.51.99.10/hooks', 'credentials in the URL', /user name or password/]
] as const

t.test('SSRF at creation: https only, and no loopback, private or link-local host, unless PAYNOTIFY_OUTBOUND_ALLOW_PRIVATE=1', async t => {
  const { app, store } = await startOutboundApp(t, { env: strict })
  for (const [url, what, reason] of refusedUrls) {
    const res = await app.inject({ method: 'POST', url: '/admin/endpoints', headers: adminAuth, payload: { url } })
    t.equal(res.statusCode, 400, `${what}: ${url} refused`)
    t.match(res.json().error, { code: 'invalid_endpoint_url', message: reason })
  }
  // A public address is taken (nothing is sent to it: no order changes in this test).
  const accepted = await createEndpoint(app, { url: 'https://198.51.99.10/hooks' })
  t.equal(accepted.url, 'https://198.51.99.10/hooks')
  const moved = await app.inject({ method: 'PATCH', url: `/admin/endpoints/${accepted.id}`, headers: adminAuth, payload: { url: 'https://169.254.169.254/' } })
  t.equal(moved.statusCode, 400, 'nor can an endpoint be moved to one')
  t.equal((await adminGet(app, `/admin/endpoints/${accepted.id}`)).url, 'https://198.51.99.10/hooks')
  t.equal(store.sqlite.prepare("SELECT count(*) FROM events WHERE stream_id = '~endpoints'").pluck().get(), 1, 'a refusal logs nothing')
})

t.test('SSRF at delivery: with PAYNOTIFY_OUTBOUND_ALLOW_PRIVATE off, loopback endpoints made while it was on are refused without a connection', async t => {
  const receiver = await startReceiver(t)
  const dbPath = join(tempDir(t), 'ssrf.db')
  const lenient = await startOutboundApp(t, { dbPath })
  const literal = await createEndpoint(lenient.app, { url: `${receiver.url}/hooks` }, receiver)
  const named = await createEndpoint(lenient.app, { url: `https://localhost:${receiver.port}/hooks` }, receiver)
  await lenient.close()

  const setup = await startOutboundApp(t, { dbPath, signingKey: lenient.signingKey, env: strict })
  const { app } = setup
  await sendCallback(app, callbackParams('ssrf-1', 'paid', 5_000))
  const messages = outboxRows(setup, 'ssrf-1')
  for (const message of messages) await eventually(async () => (await adminGet(app, `/admin/messages/${message.message_id}`)).state === 'dead')
  const attempts = async (endpointId: string): Promise<any[]> => (await adminGet(app, `/admin/endpoints/${endpointId}/attempts?limit=500`)).attempts
  const byLiteral = await attempts(literal.id)
  const byName = await attempts(named.id)
  t.equal(byLiteral.length, 8, 'two messages, four attempts each')
  t.equal(byName.length, 8)
  for (const attempt of byLiteral) t.match(attempt, { status: null, error: 'refused: 127.0.0.1 is not a public address' })
  for (const attempt of byName) t.match(attempt, { status: null, error: /refused: localhost resolves to a non-public address/ })
  t.equal(receiver.connections, 0, 'the receiver was never connected to')
})

t.test('redirects are not followed: a 302 is recorded as the answer and the message is dead', async t => {
  const target = await startReceiver(t)
  const redirecting = await startReceiver(t, () => ({ status: 302, headers: { location: `${target.url}/elsewhere` } }))
  const setup = await startOutboundApp(t)
  const { app } = setup
  const endpoint = await createEndpoint(app, { url: redirecting.url }, redirecting)
  target.trust(endpoint.secret)
  await sendCallback(app, callbackParams('redirect-1', 'paid', 5_000))
  const [first] = outboxRows(setup, 'redirect-1')
  const dead = await eventually(async () => {
    const message = await adminGet(app, `/admin/messages/${first!.message_id}`)
    return message.state === 'dead' ? message : undefined
  })
  t.match(dead.deliveries, [{ endpointId: endpoint.id, state: 'dead', attempts: 1, lastStatus: 302, lastError: /HTTP 302: not retried/ }])
  t.match(dead.deliveries[0].attemptLog, [{ status: 302 }])
  t.equal(redirecting.attemptsOf(first!.message_id).length, 1, 'one attempt')
  t.equal(target.connections, 0, 'the Location was never visited')
})
