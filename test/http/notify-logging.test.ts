import t from 'tap'
import { buildTestApp, formHeaders, signedForm, testSecrets } from '../helpers.js'

// The notify route's log volume is part of its cost at peak (bench/NOTES.md): at the
// default level an accepted callback writes no line, a refused one writes one warning.

const now = new Date('2026-05-01T12:00:00.000Z')

interface LogLine { level: number, msg: string, reqId?: string, code?: string, gateway?: string, outcome?: string, positions?: number[], req?: { url?: string } }

function capture (level: string): { logger: { level: string, stream: { write: (line: string) => void } }, lines: LogLine[] } {
  const lines: LogLine[] = []
  return { logger: { level, stream: { write: (line: string) => { lines.push(JSON.parse(line) as LogLine) } } }, lines }
}

t.test('at info, an accepted callback logs nothing and a refused one logs one warning without the body', async t => {
  const { logger, lines } = capture('info')
  const { app } = await buildTestApp(t, { deps: { now: () => now, logger } })
  const accepted = await app.inject({ method: 'POST', url: '/notify/generic', headers: formHeaders, payload: signedForm({ order_id: 'LOG-1', amount: '10.00', status: '1' }) })
  t.equal(accepted.statusCode, 200)
  t.same(lines.filter(line => line.req?.url?.startsWith('/notify/') === true || line.msg === 'callback recorded'), [], 'no access or record line for an accepted callback')

  const forged = signedForm({ order_id: 'LOG-2', amount: '10.00', status: '1' }, 'not-the-secret-0123456789')
  const refused = await app.inject({ method: 'POST', url: '/notify/generic', headers: formHeaders, payload: forged })
  t.equal(refused.statusCode, 401)
  const warnings = lines.filter(line => line.level === 40)
  t.equal(warnings.length, 1, 'one warning for the refusal')
  t.match(warnings[0], { code: 'bad_signature', gateway: 'generic' })
  const text = JSON.stringify(lines)
  t.notOk(text.includes('LOG-2') || text.includes(testSecrets.genericSecret), 'neither the body nor the secret is logged')

  // Other routes keep Fastify's request logging at info.
  const health = await app.inject({ method: 'GET', url: '/healthz' })
  t.equal(health.statusCode, 200)
  t.ok(lines.some(line => line.level === 30 && line.req?.url === '/healthz'), 'health requests are still logged at info')
})

t.test('at debug, an accepted callback is logged with its positions and orders', async t => {
  const { logger, lines } = capture('debug')
  const { app } = await buildTestApp(t, { deps: { now: () => now, logger } })
  const res = await app.inject({ method: 'POST', url: '/notify/generic', headers: formHeaders, payload: signedForm({ order_id: 'LOG-3', amount: '10.00', status: '1' }) })
  t.equal(res.statusCode, 200)
  t.match(lines.filter(line => line.msg === 'callback recorded'), [{ level: 20, gateway: 'generic', outcome: 'accepted', positions: [1], orders: ['LOG-3'] }])
  t.ok(lines.some(line => line.level === 30 && line.req?.url === '/notify/generic'), 'the access line is back at debug')
})

t.test('at debug, a callback is traced from its access line to its log position by reqId (README "Monitoring")', async t => {
  const { logger, lines } = capture('debug')
  const { app, store } = await buildTestApp(t, { deps: { now: () => now, logger } })
  const payload = signedForm({ order_id: 'LOG-4', amount: '10.00', status: '1', notify_id: 'trace-1' })
  for (let i = 0; i < 2; i++) t.equal((await app.inject({ method: 'POST', url: '/notify/generic', headers: formHeaders, payload })).statusCode, 200)
  const incoming = lines.filter(line => line.msg === 'incoming request' && line.req?.url === '/notify/generic')
  t.equal(incoming.length, 2, 'an access line per callback')
  const recorded = incoming.map(access => lines.find(line => line.msg === 'callback recorded' && line.reqId === access.reqId))
  t.match(recorded, [{ outcome: 'accepted', positions: [1] }, { outcome: 'duplicate', positions: [2] }], 'the same reqId leads to the positions; the retry is marked duplicate')
  for (const [i, line] of recorded.entries()) {
    const metadata = JSON.parse(store.sqlite.prepare('SELECT metadata FROM events WHERE position = ?').pluck().get(line!.positions![0]) as string) as { requestId: string }
    t.equal(metadata.requestId, incoming[i]!.reqId, 'and the event at that position carries the reqId as metadata.requestId')
  }
})

t.test('a refusal of unsigned input echoes at most a short, printable excerpt of a name it was sent (issue 10 §5)', async t => {
  const { logger, lines } = capture('info')
  const { app } = await buildTestApp(t, { deps: { now: () => now, logger } })
  const unprintable = /[^\x20-\x7e]/
  const longName = `${'k'.repeat(3000)}\u0007\n\u202e`
  // [what, url, body, whether our error handler logs a warning (Fastify answers a bad URL itself)]
  const cases: Array<[string, string, string, boolean]> = [
    ['a repeated 3,000-character name', '/notify/generic', `${encodeURIComponent(longName)}=1&${encodeURIComponent(longName)}=2`, true],
    ['a control character in a name', '/notify/generic', `${encodeURIComponent('a\u0007\u001b[31mb')}=1&sign=${'0'.repeat(64)}`, true],
    ['a 90-character gateway name', `/notify/${'g'.repeat(90)}`, 'a=1', true],
    ['a 3,000-character gateway name', `/notify/${'g'.repeat(3000)}`, 'a=1', false],
    ['a URL that is not valid percent-encoding', `/notify/${'g'.repeat(50)}%E0%A4%A`, 'a=1', false]
  ]
  for (const [what, url, payload, warned] of cases) {
    lines.length = 0
    const res = await app.inject({ method: 'POST', url, headers: formHeaders, payload })
    t.ok(res.statusCode >= 400 && res.statusCode < 500, `${what}: refused (${res.statusCode})`)
    const message = (res.json() as { error: { message: string } }).error.message
    t.ok(message.length <= 120, `${what}: the answer is short (${message.length} characters)`)
    t.notOk(unprintable.test(message) || message.includes('g'.repeat(41)), `${what}: the answer is printable ASCII, with at most 40 characters of the name`)
    const warnings = lines.filter(line => line.level >= 40)
    t.equal(warnings.length, warned ? 1 : 0, `${what}: ${warned ? 'one warning' : 'no warning'}`)
    for (const line of warnings) {
      const logged = JSON.stringify(line)
      t.ok(logged.length <= 600, `${what}: the log line is short (${logged.length} characters)`)
      t.notOk(logged.includes('k'.repeat(41)) || logged.includes('g'.repeat(41)), `${what}: no more than 40 characters of the name are logged`)
      t.notOk(unprintable.test(line.msg) || unprintable.test(String(line.gateway ?? '')), `${what}: the message and gateway logged are printable ASCII`)
    }
  }
})
