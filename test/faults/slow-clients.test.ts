import { Agent } from 'node:http'
import { connect, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { join } from 'node:path'
import { buildTestApp, merchantAuth, tempDir } from '../helpers.js'
import { genericDelivery, httpRequest, isAck, postDelivery, serverEnv, startServerProcess, type TapTest } from './helpers.js'

// Issue 5 §6: slowloris clients and connection floods are cut off by configured limits while a
// healthy client keeps getting answers; bodies over a route's limit are refused without being read.

const limits = {
  PAYNOTIFY_HEADERS_TIMEOUT_MS: '500',
  PAYNOTIFY_REQUEST_TIMEOUT_MS: '1000',
  PAYNOTIFY_IDLE_TIMEOUT_MS: '1500'
}

interface RawClient {
  socket: Socket
  closed: Promise<void>
  isClosed: () => boolean
  received: () => string
}

async function rawClient (port: number): Promise<RawClient> {
  const socket = connect({ host: '127.0.0.1', port })
  let closed = false
  let received = ''
  socket.on('data', chunk => { received += chunk.toString('latin1') })
  socket.on('error', () => {})
  const closedPromise = new Promise<void>(resolve => socket.once('close', () => { closed = true; resolve() }))
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  return { socket, closed: closedPromise, isClosed: () => closed, received: () => received }
}

/** Writes `bytes` one at a time, `gapMs` apart, until done or the server hangs up; returns how many were written. */
async function dribble (client: RawClient, bytes: string, gapMs: number): Promise<number> {
  for (let i = 0; i < bytes.length; i++) {
    if (client.isClosed()) return i
    client.socket.write(bytes[i]!)
    await sleep(gapMs)
  }
  return bytes.length
}

async function listen (t: TapTest, env: Record<string, string>): Promise<{ url: string, port: number, connections: () => Promise<number> }> {
  const { app } = await buildTestApp(t, { env })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const connections = async (): Promise<number> => await new Promise((resolve, reject) => {
    app.server.getConnections((error, count) => { if (error !== null) reject(error); else resolve(count) })
  })
  return { url, port: Number(new URL(url).port), connections }
}

t.test('slowloris headers, dribbled and stalled bodies, idle sockets: all cut off; a healthy client is answered meanwhile', async t => {
  const { url, port } = await listen(t, limits)
  // 60 header bytes at 50 ms each would take 3 s; a stalled body never completes.
  const slowHeaders = Array.from({ length: 20 }, async () => {
    const client = await rawClient(port)
    client.socket.write('POST /notify/generic HTTP/1.1\r\nHost: 127.0.0.1\r\n')
    const written = await dribble(client, 'X-Slow: ' + 'a'.repeat(48) + '\r\n\r\n', 50)
    await client.closed
    return { written, total: 60, received: client.received() }
  })
  const slowBodies = Array.from({ length: 20 }, async (_, i) => {
    const client = await rawClient(port)
    const body = 'order_id=slow&amount=1.00&status=1&' + 'x'.repeat(65)
    client.socket.write(`POST /notify/generic HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n`)
    // Half of them dribble the body, half send a little and stall.
    const written = i % 2 === 0 ? await dribble(client, body, 50) : (client.socket.write(body.slice(0, 10)), 10)
    await client.closed
    return { written, total: body.length, received: client.received() }
  })
  const idle = Array.from({ length: 20 }, async () => {
    const client = await rawClient(port)
    await client.closed
    return { written: 0, total: 1, received: client.received() }
  })

  // The healthy client: 30 signed callbacks, one after another, while the abusive ones hold their sockets.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  let healthyAcks = 0
  for (let i = 0; i < 30; i++) {
    if (isAck(await postDelivery(url, genericDelivery({ order_id: `healthy-${i}`, amount: '1.00', status: '1', notify_id: `healthy-${i}` }), agent, 10_000))) healthyAcks++
  }
  agent.destroy()
  t.equal(healthyAcks, 30, 'the healthy client got every answer while slow clients were connected')

  const headers = await Promise.all(slowHeaders)
  t.ok(headers.every(r => r.written < r.total), 'every slowloris client was cut off before it finished its headers', { written: headers.map(r => r.written) })
  t.ok(headers.every(r => r.received === '' || r.received.startsWith('HTTP/1.1 408')), 'and got at most a 408')
  const bodies = await Promise.all(slowBodies)
  t.ok(bodies.every(r => r.written < r.total), 'every slow or stalled body was cut off before it completed', { written: bodies.map(r => r.written) })
  t.ok(bodies.every(r => !r.received.includes('success')), 'and nothing was acked for it')
  t.equal((await Promise.all(idle)).length, 20, 'connections that send nothing are closed too')
})

t.test('a connection flood is bounded by PAYNOTIFY_MAX_CONNECTIONS and the service recovers', async t => {
  const cap = 30
  const { url, port, connections } = await listen(t, { ...limits, PAYNOTIFY_MAX_CONNECTIONS: String(cap) })
  const flood = await Promise.all(Array.from({ length: 3 * cap }, async () => await rawClient(port)))
  // Let the server accept (or drop) every one of them.
  for (let i = 0; i < 50 && flood.filter(c => c.isClosed()).length < 2 * cap; i++) await sleep(20)
  const open = await connections()
  t.ok(open <= cap, `the server holds at most ${cap} connections (holds ${open})`)
  t.ok(flood.filter(c => c.isClosed()).length >= 2 * cap, 'connections beyond the cap were refused')

  // The flood's own sockets time out; the service then answers again.
  await Promise.all(flood.map(async c => await c.closed))
  let answered = false
  for (let attempt = 0; attempt < 20 && !answered; attempt++) {
    answered = isAck(await postDelivery(url, genericDelivery({ order_id: 'after-flood', amount: '1.00', status: '1', notify_id: 'after-flood' }), false, 5000))
    if (!answered) await sleep(100)
  }
  t.ok(answered, 'a healthy callback is acked once the flood has been cut off')
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
  for (let i = 0; i < 100 && !client.received().includes('\r\n\r\n'); i++) await sleep(20)
  t.match(client.received(), /^HTTP\/1\.1 413 /, 'an announced oversize body is refused before it is sent')
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
  // Default deadlines (15 s for a request): longer than the 10 s grace period of a stop.
  const server = await startServerProcess(serverEnv(join(tempDir(t), 'stop.db')))
  t.teardown(() => { server.child.kill('SIGKILL') })
  const stalled = await rawClient(server.port)
  stalled.socket.write('POST /notify/generic HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\norder_id=a')
  const slowHeaders = await rawClient(server.port)
  slowHeaders.socket.write('POST /notify/generic HTTP/1.1\r\nHost: 127.0.0.1\r\n')
  t.ok(isAck(await postDelivery(server.url, genericDelivery({ order_id: 'before-stop', amount: '1.00', status: '1' }))), 'a healthy callback is acked')
  server.child.kill('SIGTERM')
  // close-with-grace exits 1 when the close outlasts its 10 s grace: 0 means the slow clients were cut.
  t.equal(await server.exited, 0, 'SIGTERM closes cleanly (exit 0) instead of waiting out the grace period')
  await Promise.all([stalled.closed, slowHeaders.closed])
  t.notMatch(stalled.received(), /success/, 'the cut client got no ack')
})
