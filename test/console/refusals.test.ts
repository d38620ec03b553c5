import type { FastifyInstance } from 'fastify'
import tap from 'tap'
import { buildTestApp, formHeaders, signedForm } from '../helpers.js'
import { getPage, signIn } from './console-helpers.js'

const signature = 'v1,c2lnbmF0dXJlLXRoYXQtbXVzdC1uZXZlci1zaG93'
const bearer = 'tok_live_never_shown_0123456789'

async function refuse (app: FastifyInstance, payload: string, headers: Record<string, string> = formHeaders, gateway = 'generic'): Promise<number> {
  return (await app.inject({ method: 'POST', url: `/notify/${gateway}`, headers, payload })).statusCode
}

/** The refusal ids a page shows, in page order. */
function idsOn (body: string): number[] {
  return [...body.matchAll(/<h2 id="refusal-(\d+)">/g)].map(match => Number(match[1]))
}

tap.test('a hostile refusal: its body as text in a <pre>, its signature and token redacted, with time, gateway, reason and source', async t => {
  const { app } = await buildTestApp(t)
  const hostile = 'order_id=<script>alert(1)</script>&amount=10.00&status=1&subject=<img src=x onerror=alert(2)>&sign=0000'
  t.equal(await refuse(app, hostile, { ...formHeaders, 'x-callback-signature': signature, authorization: `Bearer ${bearer}`, 'x-note': '<b>hi</b>' }), 401)
  const cookie = await signIn(app)
  const res = await getPage(app, cookie, '/console/refusals')
  t.equal(res.statusCode, 200)
  t.match(res.body, '<pre class="refused-body">order_id&#61;&#60;script&#62;alert(1)&#60;/script&#62;&#38;amount&#61;10.00&#38;status&#61;1&#38;subject&#61;&#60;img src&#61;x onerror&#61;alert(2)&#62;&#38;sign&#61;0000</pre>', 'the body as text')
  t.notMatch(res.body, '<script>alert')
  t.notMatch(res.body, '<img src=x')
  t.notMatch(res.body, '<b>hi')
  t.match(res.body, '&#60;b&#62;hi&#60;/b&#62;', 'a header value as text')
  t.notMatch(res.body, signature.slice(3), 'the signature is not on the page')
  t.notMatch(res.body, bearer, 'nor the token')
  t.match(res.body, /<td class="mono">x-callback-signature<\/td><td class="mono outside">\[redacted\]<\/td>/)
  t.match(res.body, /<td class="mono">authorization<\/td><td class="mono outside">\[redacted\]<\/td>/)
  t.match(res.body, /<span class="badge bad">bad_signature<\/span> generic · <time datetime="\d{4}-/, 'reason code, gateway and time')
  t.match(res.body, /<dt>From<\/dt><dd class="mono">127\.0\.0\.1<\/dd>/, 'the source address')
  t.match(res.body, /<dt>Answered<\/dt><dd>401<\/dd>/)
})

tap.test('newest first, filtered by gateway and by reason, paged by the store\'s cursor', async t => {
  const { app } = await buildTestApp(t)
  const badlySigned = signedForm({ order_id: 'P-1', amount: '10.00', status: '1' }, 'not-the-secret-0123456789')
  for (let i = 0; i < 28; i++) t.equal(await refuse(app, badlySigned), 401)
  t.equal(await refuse(app, signedForm({ order_id: 'P-2', amount: 'ten', status: '1' })), 400) // id 29
  t.equal(await refuse(app, badlySigned, formHeaders, 'nope'), 404) // id 30
  const cookie = await signIn(app)

  const first = await getPage(app, cookie, '/console/refusals')
  t.same(idsOn(first.body), Array.from({ length: 25 }, (_, i) => 30 - i), 'the 25 newest, newest first')
  t.match(first.body, 'href="/console/refusals?before&#61;6">Older</a>')
  t.match(first.body, /30 of at most 500 \(30 refused since the service started, 0 dropped/)
  const older = await getPage(app, cookie, '/console/refusals?before=6')
  t.same(idsOn(older.body), [5, 4, 3, 2, 1], 'the next page from the cursor')
  t.match(older.body, 'href="/console/refusals">Newest</a>')
  t.notMatch(older.body, '>Older</a>')

  const nope = await getPage(app, cookie, '/console/refusals?gateway=nope&code=')
  t.same(idsOn(nope.body), [30], 'by gateway')
  t.match(nope.body, '<option value="nope" selected>nope</option>')
  const malformed = await getPage(app, cookie, '/console/refusals?code=malformed')
  t.same(idsOn(malformed.body), [29], 'by reason')
  t.match(malformed.body, '<option value="malformed" selected>malformed</option>')
  const signatures = await getPage(app, cookie, '/console/refusals?gateway=generic&code=bad_signature&before=10')
  t.same(idsOn(signatures.body), [9, 8, 7, 6, 5, 4, 3, 2, 1], 'both filters and a cursor')
  const none = await getPage(app, cookie, '/console/refusals?code=body_too_large')
  t.same(idsOn(none.body), [])
  t.match(none.body, 'No refusal kept matches these filters.')
  t.equal((await getPage(app, cookie, '/console/refusals?before=0')).statusCode, 400)
})

tap.test('with the store off (PAYNOTIFY_REFUSALS_MAX=0) the view says so', async t => {
  const { app } = await buildTestApp(t, { env: { PAYNOTIFY_REFUSALS_MAX: '0' } })
  const res = await getPage(app, await signIn(app), '/console/refusals')
  t.equal(res.statusCode, 200)
  t.match(res.body, 'Refused callbacks are not kept in this service')
})
