import { Agent, type Server } from 'node:http'
import { connect, type Socket } from 'node:net'
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { join } from 'node:path'
import { buildTestApp, merchantAuth, tempDir } from '../helpers.js'
import { startService } from '../service-process.js'
import { genericDelivery, httpRequest, isAck, postDelivery, serverEnv, type TapTest } from './helpers.js'

// Issue 5 §6: slowloris clients and connection floods are cut off by configured limits while a
// healthy client keeps getting answers; bodies over a route's limit are refused without being read.

// Short enough for a quick test, long enough that the healthy client's requests (served by this
// same process) are read within them even when a loaded machine stalls it for a second.
const limits = {
  PAYNOTIFY_HEADERS_TIMEOUT_MS: '2000',
  PAYNOTIFY_REQUEST_TIMEOUT_MS: '3000',
  PAYNOTIFY_IDLE_TIMEOUT_MS: '4000'
}

interface RawClient {
  socket: Socket
  /** Resolves once the socket has closed. */
  closed: Promise<void>
  isClosed: () => boolean
  /** Whether the server hung up (a FIN or a reset from its side), not this client. */
  hungUpByServer: () => boolean
  received: () => string
  /** Resolves once what was received satisfies `done`, or the socket has closed. */
  receivedUntil: (done: (received: string) => boolean) => Promise<string>
}

async function rawClient (port: number): Promise<RawClient> {
  const socket = connect({ host: '127.0.0.1', port })
  let closed = false
  let hungUp = false
  let received = ''
  const waiters: Array<() => void> = []
  const wake = (): void => { for (const waiter of waiters.splice(0)) waiter() }
  socket.on('data', chunk => { received += chunk.toString('latin1'); wake() })
  socket.on('end', () => { hungUp = true })
  socket.on('error', () => { hungUp = true })
  const closedPromise = new Promise<void>(resolve => socket.once('close', () => { closed = true; wake(); resolve() }))
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  const receivedUntil = async (done: (received: string) => boolean): Promise<string> => {
    // Each data or close event wakes the waiter, which looks again.
    for (;;) {
      if (done(received) || closed) return received
      await new Promise<void>(resolve => waiters.push(resolve))
    }
  }
  return { socket, closed: closedPromise, isClosed: () => closed, hungUpByServer: () => hungUp, received: () => received, receivedUntil }
}

/**
 * Writes `byte` every `gapMs` until the server hangs up; resolves with how many were written.
 * The gap is the attack's pace, not a wait: the test's outcome is the hang-up, an event.
 */
async function dribble (client: RawClient, byte: string, gapMs: number): Promise<number> {
  let written = 0
  const pace = setInterval(() => {
    if (!client.isClosed()) client.socket.write(byte, () => { written++ })
  }, gapMs)
  await client.closed
  clearInterval(pace)
  return written
}

async function listen (t: TapTest, env: Record<string, string>): Promise<{ url: string, port: number, server: Server }> {
  const { app } = await buildTestApp(t, { env })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  return { url, port: Number(new URL(url).port), server: app.server }
}

/** An answer a cut-off client may have had: none, or the 408 Node sends when a request's deadline passes. */
const cutOff = (r: { hungUp: boolean, received: string }): boolean => r.hungUp && (r.received === '' || r.received.startsWith('HTTP/1.1 408 '))

t.test('slowloris headers, dribbled and stalled bodies, idle sockets: all cut off; a healthy client is answered meanwhile', async t => {
  const { url, port } = await listen(t, limits)
  // Each of these would hold its socket forever: a header line that never ends, a body that never completes.
  const slowHeaders = Array.from({ length: 20 }, async () => {
    const client = await rawClient(port)
    client.socket.write('POST /notify/generic HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ')
    const written = await dribble(client, 'a', 50)
    return { written, hungUp: client.hungUpByServer(), received: client.received() }
  })
  const slowBodies = Array.from({ length: 20 }, async (_, i) => {
    const client = await rawClient(port)
    client.socket.write('POST /notify/generic HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 4000\r\n\r\norder_id=slow&amount=1.00&status=1&x=')
    // Half of them dribble the body, half stall.
    const written = i % 2 === 0 ? await dribble(client, 'x', 50) : 0
    await client.closed
    return { written, hungUp: client.hungUpByServer(), received: client.received() }
  })
  const idle = Array.from({ length: 20 }, async () => {
    const client = await rawClient(port)
    await client.closed
    return { hungUp: client.hungUpByServer(), received: client.received() }
  })

  // The healthy client: 30 signed callbacks, one after another, while the abusive ones hold their sockets.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  let healthyAcks = 0
  for (let i = 0; i < 30; i++) {
    if (isAck(await postDelivery(url, genericDelivery({ order_id: `healthy-${i}`, amount: '1.00', status: '1', notify_id: `healthy-${i}` }), agent))) healthyAcks++
  }
  agent.destroy()
  t.equal(healthyAcks, 30, 'the healthy client got every answer while slow clients were connected')

  const headers = await Promise.all(slowHeaders)
  t.same(headers.filter(r => !cutOff(r)), [], 'the server hung up on every slowloris client, with at most a 408')
  t.ok(headers.every(r => r.written > 0), 'each of them was still dribbling its headers when cut', { written: headers.map(r => r.written) })
  const bodies = await Promise.all(slowBodies)
  t.same(bodies.filter(r => !cutOff(r)), [], 'the server hung up on every slow or stalled body, with at most a 408 (never an ack)')
  t.same((await Promise.all(idle)).filter(r => !cutOff(r)), [], 'and on every connection that sent nothing')
})

t.test('a connection flood is bounded by PAYNOTIFY_MAX_CONNECTIONS and the service recovers', async t => {
  const cap = 30
  const { url, port, server } = await listen(t, { ...limits, PAYNOTIFY_MAX_CONNECTIONS: String(cap) })
  // The server's own events: a socket it accepted, one it closed, one it dropped at the cap.
  let open = 0
  let peak = 0
  let accepted = 0
  let dropped = 0
  let allClosed: () => void = () => {}
  server.on('connection', (socket: Socket) => {
    accepted++
    peak = Math.max(peak, ++open)
    socket.once('close', () => { if (--open === 0) allClosed() })
  })
  server.on('drop', () => { dropped++ })
  const flood = await Promise.all(Array.from({ length: 3 * cap }, async () => await rawClient(port)))
  const serverSideClosed = new Promise<void>(resolve => { allClosed = resolve })
  // Dropped or timed out, every one of them ends; then nothing of the flood is left on the server.
  await Promise.all(flood.map(async c => await c.closed))
  if (open > 0) await serverSideClosed
  t.ok(peak <= cap, `the server never held more than ${cap} connections (peak ${peak})`)
  t.equal(accepted + dropped, 3 * cap, 'each connection was either accepted or dropped')
  t.ok(dropped > 0, `connections beyond the cap were refused (${dropped} of ${3 * cap})`)

  t.ok(isAck(await postDelivery(url, genericDelivery({ order_id: 'after-flood', amount: '1.00', status: '1', notify_id: 'after-flood' }), false)),
    'a healthy callback is acked once the flood has been cut off')
})

t.test('per-route body limits: 413 without reading the body', async t => {
  const { url, port } = await listen(t, { ...limits, PAYNOTIFY_BODY_LIMIT: '8192' })
  const big = await postDelivery(url, { params: {}, body: 'order_id=a&pad=' + 'x'.repeat(9000) })
  t.match(big, { ok: true, status: 413 }, 'notify: a body over PAYNOTIFY_BODY_LIMIT is 413')
  const order = await httpRequest(`${url}/orders`, {
    method: 'POST',
    headers: { ...merchantAuth, 'content-type': 'application/json' },
    body: JSON.stringify({ order_id: 'big', amount: '1.00', note: 'x'.repeat(5000) })
  })
  t.match(order, { ok: true, status: 413 }, 'orders: a registration over 4 KiB is 413, though under the notify limit')

  // A client announcing 100 MB gets its answer at once: the server does not wait for (or buffer) the body.
  const client = await rawClient(port)
  client.socket.write('POST /notify/generic HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000000\r\n\r\norder_id=a')
  t.match(await client.receivedUntil(received => received.includes('\r\n\r\n')), /^HTTP\/1\.1 413 /, 'an announced oversize body is refused before it is sent')
  client.socket.destroy()
})

t.test('the limits are configuration, validated at start', async t => {
  t.match(loadConfig({}), { busyTimeoutMs: 5000, limits: { headersTimeoutMs: 10_000, requestTimeoutMs: 15_000, idleTimeoutMs: 30_000, maxConnections: 1024 }, allowBrokenChain: false })
  t.match(loadConfig({ PAYNOTIFY_HEADERS_TIMEOUT_MS: '20000', PAYNOTIFY_REQUEST_TIMEOUT_MS: '1000' }).limits, { headersTimeoutMs: 1000, requestTimeoutMs: 1000 },
    'the headers deadline never exceeds the whole-request deadline (Node refuses that)')
  t.equal(loadConfig({ PAYNOTIFY_ALLOW_BROKEN_CHAIN: '1' }).allowBrokenChain, true)
  t.equal(loadConfig({ PAYNOTIFY_ALLOW_BROKEN_CHAIN: 'false' }).allowBrokenChain, false)
  t.throws(() => loadConfig({ PAYNOTIFY_ALLOW_BROKEN_CHAIN: 'yes' }), { message: /PAYNOTIFY_ALLOW_BROKEN_CHAIN/ })
  t.throws(() => loadConfig({ PAYNOTIFY_MAX_CONNECTIONS: '0' }), { message: /PAYNOTIFY_MAX_CONNECTIONS/ })
  t.throws(() => loadConfig({ PAYNOTIFY_HEADERS_TIMEOUT_MS: '5' }), { message: /PAYNOTIFY_HEADERS_TIMEOUT_MS/ })
})

t.test('a graceful stop is not held hostage by a client that never finishes its request', async t => {
  // serverEnv's request deadlines (minutes) are far longer than the 10 s grace period of a stop.
  const server = await startService(t, serverEnv(join(tempDir(t), 'stop.db')))
  const stalled = await rawClient(server.port)
  stalled.socket.write('POST /notify/generic HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\norder_id=a')
  const slowHeaders = await rawClient(server.port)
  slowHeaders.socket.write('POST /notify/generic HTTP/1.1\r\nHost: 127.0.0.1\r\n')
  t.ok(isAck(await postDelivery(server.url, genericDelivery({ order_id: 'before-stop', amount: '1.00', status: '1' }))), 'a healthy callback is acked')
  // close-with-grace exits 1 when the close outlasts its 10 s grace: 0 means the slow clients were cut.
  t.same(await server.stop(), { code: 0, signal: null }, 'SIGTERM closes cleanly (exit 0) instead of waiting out the grace period')
  await Promise.all([stalled.closed, slowHeaders.closed])
  t.notMatch(stalled.received(), /success/, 'the cut client got no ack')
})
