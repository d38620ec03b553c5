import { createHmac, randomBytes } from 'node:crypto'
import SQLite from 'better-sqlite3'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { bodyHead, maxBodyBytes, redacted, RefusalStore, refusalBytes, type Refusal, type RefusedCallback } from '../../src/http/refusals.js'
import { adminAuth, buildTestApp, eventCount, formHeaders, merchantAuth, signedForm, testSecrets } from '../helpers.js'

// GET /admin/refusals (issue 12, item 7): every refused callback leaves a bounded, redacted trace
// apart from the event log; accepted ones leave none.

interface Page { refusals: Refusal[], nextCursor: number | null }

async function refusalsOf (app: FastifyInstance, query = ''): Promise<Page & { text: string }> {
  const res = await app.inject({ url: `/admin/refusals${query}`, headers: adminAuth })
  if (res.statusCode !== 200) throw new Error(`GET /admin/refusals${query} answered ${res.statusCode}: ${res.body}`)
  return { ...(res.json() as Page), text: res.body }
}

async function post (app: FastifyInstance, payload: string | Buffer, headers: Record<string, string> = formHeaders, gateway = 'generic'): Promise<number> {
  return (await app.inject({ method: 'POST', url: `/notify/${gateway}`, headers, payload })).statusCode
}

const badlySigned = (params: Record<string, string>): string => signedForm(params, 'not-the-secret-0123456789')

t.test('each kind of refusal is kept with its reason, newest first; the event log gets nothing', async t => {
  const test = await buildTestApp(t, { store: { busyTimeoutMs: 10 } })
  const { app } = test
  const bad = badlySigned({ order_id: 'R-1', amount: '10.00', status: '1' })
  t.equal(await post(app, bad), 401)
  t.equal(await post(app, signedForm({ order_id: 'R-2', amount: 'ten', status: '1' })), 400)
  const large = `order_id=R-3&pad=${'x'.repeat(9000)}`
  t.equal(await post(app, large), 413, 'over the generic gateway\'s 8 KiB')
  t.equal(await post(app, 'order_id=R-4', { 'content-type': 'text/plain' }), 415)
  t.equal(await post(app, bad, formHeaders, 'nope'), 404)
  t.equal(await post(app, bad, formHeaders, 'NOT_A-NAME'), 404)
  // Another connection holds the write lock past the store's busy timeout: nothing stored, 503.
  const other = new SQLite(test.dbPath)
  t.teardown(() => { if (other.open) other.close() })
  other.exec('BEGIN IMMEDIATE')
  t.equal(await post(app, signedForm({ order_id: 'R-5', amount: '10.00', status: '1' })), 503)
  other.exec('ROLLBACK')

  const { refusals, nextCursor } = await refusalsOf(app)
  t.equal(nextCursor, null)
  t.same(refusals.map(r => [r.id, r.statusCode, r.code, r.gateway, r.bodyRead]), [
    [7, 503, 'store_unavailable', 'generic', true],
    [6, 404, 'unknown_gateway', null, false],
    [5, 404, 'unknown_gateway', 'nope', false],
    [4, 415, 'unsupported_media_type', 'generic', false],
    [3, 413, 'body_too_large', 'generic', false],
    [2, 400, 'malformed', 'generic', true],
    [1, 401, 'bad_signature', 'generic', true]
  ], 'id, status, reason, gateway (an unknown one only when the URL\'s name could be one) and whether the body was read')
  const [unavailable, invalidName, unknown, , tooLarge, malformed, signature] = refusals as [Refusal, Refusal, Refusal, Refusal, Refusal, Refusal, Refusal]
  t.match(signature, { message: /sign/, address: '127.0.0.1', body: bad, bodySize: Buffer.byteLength(bad), bodyTruncated: false })
  t.match(signature.headers, { 'content-type': 'application/x-www-form-urlencoded' })
  t.ok(Date.parse(signature.at) <= Date.now() && signature.at.endsWith('Z'), 'at: an ISO time')
  t.match(malformed.message, /^amount: /)
  t.match(tooLarge, { body: '', bodySize: 0 })
  t.equal(tooLarge.headers['content-length'], String(large.length), 'content-length says what was sent')
  t.match(unknown.message, /no gateway named nope/)
  t.notMatch(invalidName.message, /NOT_A/, 'a name that could not be one is not echoed')
  t.equal(invalidName.body, '', 'an unknown gateway: refused before its body was read')
  t.match(unavailable, { statusCode: 503, code: 'store_unavailable' })
  t.equal(eventCount(test), 0, 'the event log holds none of them')
})

t.test('signatures, tokens, cookies and keys are redacted: their values never appear in the answer', async t => {
  const stripeSecret = `whsec_${randomBytes(24).toString('hex')}`
  const { app } = await buildTestApp(t, { env: { PAYNOTIFY_STRIPE_WEBHOOK_SECRET: stripeSecret } })
  const payload = JSON.stringify({ id: 'evt_1', type: 'payment_intent.succeeded', data: { object: { id: 'pi_1', metadata: { order_id: 'S-1' } } } })
  const timestamp = Math.floor(Date.now() / 1000)
  const v1 = createHmac('sha256', stripeSecret).update(`${timestamp}.${payload}`).digest('hex')
  const secrets: Record<string, string> = {
    'stripe-signature': `t=${timestamp},v1=${v1}`,
    'webhook-signature': `v1,${randomBytes(32).toString('base64')}`,
    'wechatpay-signature': randomBytes(64).toString('base64'),
    'x-hub-signature-256': `sha256=${randomBytes(32).toString('hex')}`,
    authorization: merchantAuth.authorization,
    'proxy-authorization': `Basic ${randomBytes(12).toString('base64')}`,
    cookie: `session=${randomBytes(16).toString('hex')}`,
    'x-api-key': randomBytes(16).toString('hex'),
    'x-auth-token': randomBytes(16).toString('hex'),
    'x-client-secret': randomBytes(16).toString('hex')
  }
  // The body no longer matches what was signed: refused, with every header above.
  const res = await app.inject({ method: 'POST', url: '/notify/stripe', headers: { 'content-type': 'application/json', 'user-agent': 'Stripe/1.0', ...secrets }, payload: payload.replace('S-1', 'S-2') })
  t.equal(res.statusCode, 401)
  const { refusals, text } = await refusalsOf(app)
  t.equal(refusals.length, 1)
  const [refusal] = refusals as [Refusal]
  t.match(refusal, { gateway: 'stripe', code: 'bad_signature' })
  for (const name of Object.keys(secrets)) t.equal(refusal.headers[name], redacted, `${name}: redacted`)
  t.equal(refusal.headers['user-agent'], 'Stripe/1.0', 'other headers are kept')
  for (const [name, value] of Object.entries(secrets)) {
    t.notOk(text.includes(value), `${name}'s value is nowhere in the answer`)
    // The longest part of each value that is not its scheme's fixed prefix.
    const secretPart = value.split(/[=, ]/).reduce((a, b) => (b.length > a.length ? b : a))
    t.notOk(text.includes(secretPart), `${name}: not even its secret part`)
  }
  t.notOk(text.includes(testSecrets.merchantToken), 'the merchant token sent as authorization is not in the answer')
  t.notOk(text.includes(stripeSecret), 'nor the webhook secret')
})

t.test('headers: at most 64 kept, each value cut to 256 characters', async t => {
  const { app } = await buildTestApp(t)
  const headers: Record<string, string> = { ...formHeaders, 'x-long': 'v'.repeat(5000) }
  for (let i = 0; i < 100; i++) headers[`x-extra-${i}`] = String(i)
  t.equal(await post(app, badlySigned({ order_id: 'H-1', amount: '1.00', status: '1' }), headers), 401)
  const [refusal] = (await refusalsOf(app)).refusals as [Refusal]
  t.equal(Object.keys(refusal.headers).length, 64)
  t.equal(refusal.headers['x-long'], 'v'.repeat(256))
  t.equal(refusal.headersTruncated, true)
})

t.test('the body: its first 1 KiB as text, never a split character, invalid bytes as U+FFFD', async t => {
  const { app } = await buildTestApp(t)
  const long = badlySigned({ order_id: 'B-1', amount: '1.00', status: '1', note: 'n'.repeat(5000) })
  t.equal(await post(app, long), 401)
  const [first] = (await refusalsOf(app)).refusals as [Refusal]
  t.equal(first.body, long.slice(0, 1024), 'the first 1024 bytes')
  t.match(first, { bodyTruncated: true, bodySize: long.length, bodyRead: true })

  // 三 is 3 bytes in UTF-8: after the 6 bytes of {"x":", 1024 bytes end a third of the way into the 340th.
  const wide = Buffer.from(`{"x":"${'三'.repeat(400)}"}`)
  t.equal(await post(app, wide, { 'content-type': 'application/json' }), 401, 'no sign field')
  const [second] = (await refusalsOf(app)).refusals as [Refusal]
  t.equal(second.body, `{"x":"${'三'.repeat(339)}`, 'the character the cut would split is left out whole')
  t.notOk(second.body.includes('\ufffd'))

  // Binary: invalid UTF-8, a NUL, an escape, and markup.
  const binary = Buffer.concat([Buffer.from('a=1&b='), Buffer.from([0xff, 0xfe, 0x00, 0x1b, 0xc3]), Buffer.from('<script>alert(1)</script>')])
  t.equal(await post(app, binary), 400)
  const { refusals, text } = await refusalsOf(app)
  const third = refusals[0]!
  t.equal(third.body, 'a=1&b=\ufffd\ufffd\u0000\u001b\ufffd<script>alert(1)</script>', 'each invalid byte a replacement character, the rest as sent')
  t.equal(third.bodySize, binary.length)
  t.doesNotThrow(() => JSON.parse(text), 'the answer is valid JSON')
  t.notOk(text.includes('\u001b'), 'control characters are escaped in the JSON')
})

t.test('PAYNOTIFY_REFUSALS_MAX bounds the count: the oldest go first; the summary still counts them', async t => {
  const { app } = await buildTestApp(t, { env: { PAYNOTIFY_REFUSALS_MAX: '3' } })
  for (let i = 1; i <= 5; i++) t.equal(await post(app, badlySigned({ order_id: `C-${i}`, amount: '1.00', status: '1' })), 401)
  const { refusals } = await refusalsOf(app)
  t.same(refusals.map(r => r.id), [5, 4, 3])
  t.match(refusals[0]!.body, /order_id=C-5/)
  const summary = (await app.inject({ url: '/admin/refusals/summary', headers: adminAuth })).json()
  t.match(summary, { total: 5, byCode: [{ code: 'bad_signature', count: 5 }], byGateway: [{ gateway: 'generic', count: 5 }], kept: { entries: 3, maxEntries: 3, recorded: 5, evicted: 2 } })
})

t.test('paging newest first with before=nextCursor, after= for what is new, and filters', async t => {
  const { app } = await buildTestApp(t)
  for (let i = 1; i <= 5; i++) t.equal(await post(app, badlySigned({ order_id: `P-${i}`, amount: '1.00', status: '1' })), 401)
  t.equal(await post(app, 'a=1', formHeaders, 'nope'), 404)
  t.equal(await post(app, signedForm({ order_id: 'P-7', amount: 'x', status: '1' })), 400)

  const first = await refusalsOf(app, '?limit=3')
  t.same(first.refusals.map(r => r.id), [7, 6, 5])
  t.equal(first.nextCursor, 5)
  const second = await refusalsOf(app, `?limit=3&before=${first.nextCursor}`)
  t.same(second.refusals.map(r => r.id), [4, 3, 2])
  const last = await refusalsOf(app, `?limit=3&before=${second.nextCursor}`)
  t.same(last.refusals.map(r => r.id), [1])
  t.equal(last.nextCursor, null)

  t.same((await refusalsOf(app, '?after=5')).refusals.map(r => r.id), [7, 6], 'after: only newer ones')
  t.same((await refusalsOf(app, '?code=bad_signature&limit=2')).refusals.map(r => r.id), [5, 4])
  t.same((await refusalsOf(app, '?code=bad_signature&limit=2&before=4')).refusals.map(r => r.id), [3, 2])
  t.same((await refusalsOf(app, '?gateway=nope')).refusals.map(r => r.id), [6])
  t.same((await refusalsOf(app, '?gateway=generic&code=malformed')).refusals.map(r => r.id), [7])
  t.same((await refusalsOf(app, '?gateway=stripe')).refusals, [])

  const summary = (await app.inject({ url: '/admin/refusals/summary?minutes=5', headers: adminAuth })).json()
  t.same(summary.byCode, [{ code: 'bad_signature', count: 5 }, { code: 'malformed', count: 1 }, { code: 'unknown_gateway', count: 1 }])
  t.same(summary.byGateway, [{ gateway: 'generic', count: 6 }, { gateway: 'nope', count: 1 }])

  for (const query of ['?limit=201', '?limit=0', '?before=0', '?staus=1', '?gateway=' + 'g'.repeat(33)]) {
    t.equal((await app.inject({ url: `/admin/refusals${query}`, headers: adminAuth })).statusCode, 400, `${query}: 400`)
  }
})

t.test('the admin token only: the merchant token and none are refused', async t => {
  const { app } = await buildTestApp(t)
  t.equal(await post(app, badlySigned({ order_id: 'A-1', amount: '1.00', status: '1' })), 401)
  for (const url of ['/admin/refusals', '/admin/refusals/summary']) {
    for (const [name, headers] of [['merchant token', merchantAuth], ['no token', {}]] as const) {
      const res = await app.inject({ url, headers })
      t.equal(res.statusCode, 401, `${url}, ${name}: 401`)
      t.equal(res.headers['www-authenticate'], 'Bearer realm="admin"')
      t.notMatch(res.body, /A-1/, 'nothing of a refusal in the answer')
    }
  }
})

t.test('accepted and duplicate callbacks are never recorded', async t => {
  const { app } = await buildTestApp(t)
  const paid = signedForm({ order_id: 'OK-1', amount: '10.00', status: '1', notify_id: 'n-1' })
  t.equal(await post(app, paid), 200)
  t.equal(await post(app, paid), 200, 'a repeat')
  t.equal((await app.inject({ method: 'POST', url: '/notify/generic', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ order_id: 'OK-2', amount: '1.00', status: '1', sign: 'x' }) })).statusCode, 401)
  const { refusals } = await refusalsOf(app)
  t.same(refusals.map(r => r.body).map(body => JSON.parse(body).order_id), ['OK-2'], 'only the refused one')
  const summary = (await app.inject({ url: '/admin/refusals/summary', headers: adminAuth })).json()
  t.match(summary, { total: 1, kept: { recorded: 1 } })
})

t.test('PAYNOTIFY_REFUSALS_MAX=0: nothing kept, no route, refusals answered as before', async t => {
  const { app } = await buildTestApp(t, { env: { PAYNOTIFY_REFUSALS_MAX: '0' } })
  t.equal(await post(app, badlySigned({ order_id: 'Z-1', amount: '1.00', status: '1' })), 401)
  t.equal((await app.inject({ url: '/admin/refusals', headers: adminAuth })).statusCode, 404)
})

t.test('/openapi.json documents both routes for the admin token', async t => {
  const { app } = await buildTestApp(t)
  const doc = (await app.inject({ url: '/openapi.json' })).json() as { paths: Record<string, Record<string, { security?: unknown[], parameters?: Array<{ name: string }> }>> }
  const list = doc.paths['/admin/refusals']?.get
  t.same(list?.security, [{ adminToken: [] }])
  t.same(list?.parameters?.map(p => p.name).sort(), ['after', 'before', 'code', 'gateway', 'limit'])
  t.same(doc.paths['/admin/refusals/summary']?.get?.security, [{ adminToken: [] }])
})

const refused = (at: number, body: string, extra: Partial<RefusedCallback> = {}): RefusedCallback => ({
  at: new Date(at), gateway: 'generic', statusCode: 401, code: 'bad_signature', message: 'bad', address: '127.0.0.1', headers: { 'content-type': 'text/plain' }, body: Buffer.from(body), ...extra
})

t.test('the store: bounded in bytes, the oldest dropped first, the newest always kept', async t => {
  const kib = 'k'.repeat(1000)
  const one = refusalBytes((() => { const s = new RefusalStore(); s.record(refused(0, kib)); return s.list().refusals[0]! })())
  t.ok(one > 2000 && one < 3000, `a refusal with a 1000-byte body counts ${one} bytes`)
  const store = new RefusalStore({ maxEntries: 500, maxBytes: one * 3 + 10 })
  for (let i = 0; i < 10; i++) store.record(refused(i, kib))
  t.same(store.list().refusals.map(r => r.id), [10, 9, 8])
  t.match(store.stats(), { entries: 3, bytes: one * 3, recorded: 10, evicted: 7 })

  const tiny = new RefusalStore({ maxBytes: 100 })
  tiny.record(refused(0, 'a'))
  tiny.record(refused(1, 'b'))
  t.same(tiny.list().refusals.map(r => r.body), ['b'], 'one refusal over the bound alone is kept until the next')

  const many = new RefusalStore({ maxEntries: 7 })
  for (let i = 0; i < 10_000; i++) many.record(refused(i, String(i)))
  t.same(many.list().refusals.map(r => r.body), ['9999', '9998', '9997', '9996', '9995', '9994', '9993'])
  t.same(many.list({ before: 9996, limit: 1 }), { refusals: [many.list().refusals[5]], nextCursor: 9995 }, 'ids find their place after the store was compacted')
  t.same(many.list({ before: 9995 }), { refusals: [many.list().refusals[6]], nextCursor: null }, 'the oldest kept')
})

t.test('the store never throws into the request path', async t => {
  const store = new RefusalStore()
  t.doesNotThrow(() => { store.record(refused(Number.NaN, 'x')) }, 'an invalid time')
  t.doesNotThrow(() => { store.record({ ...refused(0, 'x'), headers: null as never }) }, 'no headers')
  t.equal(store.stats().entries, 1, 'no headers: kept without them')
  t.same(store.list().refusals[0]!.headers, {})
})

t.test('the store summary: by reason and gateway from the minute `since` falls in, over at most the last hour', async t => {
  let now = Date.parse('2026-12-07T12:00:30Z')
  const store = new RefusalStore({ maxEntries: 2, now: () => now })
  const minute = 60_000
  store.record(refused(now - 90 * minute, 'old'))
  store.record(refused(now - 30 * minute, 'a', { code: 'malformed', statusCode: 400 }))
  store.record(refused(now - 2 * minute, 'b', { gateway: 'stripe' }))
  store.record(refused(now, 'c', { gateway: null, code: 'unknown_gateway', statusCode: 404 }))
  store.record(refused(now, 'd'))
  t.same(store.summary(now - 120 * minute), {
    since: '2026-12-07T11:00:00.000Z',
    total: 4,
    byCode: [{ code: 'bad_signature', count: 2 }, { code: 'malformed', count: 1 }, { code: 'unknown_gateway', count: 1 }],
    byGateway: [{ gateway: 'generic', count: 2 }, { gateway: null, count: 1 }, { gateway: 'stripe', count: 1 }]
  }, 'the last hour: the refusal 90 minutes ago is left out, those evicted from the list are in')
  t.match(store.summary(now - 2 * minute), { since: '2026-12-07T11:58:00.000Z', total: 3 })
  t.match(store.summary(now), { since: '2026-12-07T12:00:00.000Z', total: 2 })
  now += 61 * minute
  t.match(store.summary(0), { total: 0, byCode: [] }, 'an hour later nothing is counted')

  const names = new RefusalStore({ now: () => now })
  for (let i = 0; i < 100; i++) names.record(refused(now, 'x', { gateway: `g${i}` }))
  const { byGateway, total } = names.summary(now)
  t.equal(total, 100)
  t.equal(byGateway.length, 33, '32 names in a minute, the rest as null')
  t.same(byGateway[0], { gateway: null, count: 68 })
})

t.test('bodyHead keeps 1 KiB and cuts only between characters', async t => {
  t.equal(bodyHead(Buffer.from('short')), 'short')
  for (const char of ['é', '三', '😀']) {
    for (let pad = 0; pad < 4; pad++) {
      const head = bodyHead(Buffer.from('a'.repeat(pad) + char.repeat(2000)))
      t.ok(Buffer.byteLength(head) <= maxBodyBytes && Buffer.byteLength(head) > maxBodyBytes - 4, `${char} after ${pad}: ${Buffer.byteLength(head)} bytes`)
      t.notOk(head.includes('\ufffd'), `${char} after ${pad}: no replacement character`)
    }
  }
  t.equal(bodyHead(Buffer.alloc(2000, 0xff)), '\ufffd'.repeat(1024), 'invalid bytes are still each a replacement character')
})
