import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import http from 'node:http'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { adminAuth, tempDir, testSecrets } from '../helpers.js'

// Issue 10 §1: the NDJSON stream of GET /admin/events respects backpressure. Measured on the old
// code: a client that never read took the server from 186 MB to 531 MB RSS. Here: 10,000 events
// of a 16 kB callback (160 MB of NDJSON; the body is stored once, so the log is small and built
// in seconds), the built service in a process of its own on a real port, a client that reads
// nothing, and the server's RSS. bench/stream-backpressure.js does the same with 1,000,000 events.
const events = 10_000
const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url))

/** GET on a connection of its own; resolves with the parsed JSON answer once it is all in. */
async function getJson (port: number, path: string): Promise<{ rss: number }> {
  const request = http.get({ host: '127.0.0.1', port, path, agent: false })
  const [response] = await once(request, 'response') as [http.IncomingMessage]
  let text = ''
  response.setEncoding('utf8')
  response.on('data', (chunk: string) => { text += chunk })
  await once(response, 'end')
  return JSON.parse(text) as { rss: number }
}

t.test('a client that reads nothing from a 160 MB NDJSON stream costs the server under 50 MB of RSS', async t => {
  const dbPath = join(tempDir(t), 'stream.db')
  await promisify(execFile)(process.execPath, [fixture('build-log.mjs'), dbPath, String(events), '16000'])
  const server = spawn(process.execPath, [fixture('serve-log.mjs'), dbPath, testSecrets.adminToken], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = once(server, 'exit')
  t.teardown(async () => {
    server.kill('SIGTERM')
    await exited
  })
  const [line] = await Promise.race([once(createInterface({ input: server.stdout }), 'line'), exited.then(([code]) => { throw new Error(`the server exited with ${String(code)}`) })]) as [string]
  const { port } = JSON.parse(line) as { port: number }

  // Warm up the route, then take the baseline.
  const warm = http.get({ host: '127.0.0.1', port, path: '/admin/events?limit=200', agent: false, headers: { ...adminAuth, accept: 'application/x-ndjson' } })
  const [warmed] = await once(warm, 'response') as [http.IncomingMessage]
  warmed.resume()
  await once(warmed, 'end')
  const baseline = (await getJson(port, '/rss')).rss

  const request = http.get({ host: '127.0.0.1', port, path: '/admin/events', agent: false, headers: { ...adminAuth, accept: 'application/x-ndjson' } })
  const [response] = await once(request, 'response') as [http.IncomingMessage]
  // Paused before a single 'data' event: the socket stops reading once Node's small buffers fill.
  response.pause()
  t.equal(response.statusCode, 200)
  // Every request answered is a turn of the server's event loop in which a stream that ignored
  // backpressure would go on reading the log (a page per turn, ~1 MB here): 100 of them are
  // room for most of the log.
  let peak = 0
  for (let i = 0; i < 100 && peak <= 50 * 2 ** 20; i++) peak = Math.max(peak, (await getJson(port, '/rss')).rss - baseline)
  t.comment(`server RSS ${(baseline / 2 ** 20).toFixed(0)} MB before the stream, at most ${((baseline + peak) / 2 ** 20).toFixed(0)} MB while the client read nothing`)
  t.ok(peak < 50 * 2 ** 20, `the server's RSS grew by ${(peak / 2 ** 20).toFixed(1)} MB while the client read nothing`)

  // The reader comes back: the stream resumes where it stopped and ends with every event, in order.
  let lines = 0
  let outOfOrder = 0
  let tail = ''
  response.setEncoding('utf8')
  response.on('data', (chunk: string) => {
    const text = tail + chunk
    const end = text.lastIndexOf('\n')
    if (end === -1) {
      tail = text
      return
    }
    for (const line of text.slice(0, end).split('\n')) {
      if (Number(/"position":(\d+),"streamId"/.exec(line)?.[1]) !== ++lines) outOfOrder++
    }
    tail = text.slice(end + 1)
  })
  response.resume()
  await once(response, 'end')
  t.equal(lines, events, 'every event was streamed once the client read again')
  t.equal(outOfOrder, 0, 'line n is position n')
  t.equal(tail, '')
})
