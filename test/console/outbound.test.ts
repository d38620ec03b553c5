import tap from 'tap'
import { sessionCookie } from '../../src/console/plugin.js'
import { buildTestApp } from '../helpers.js'
import { callbackParams, createEndpoint, eventually, sendCallback } from '../outbound/harness.js'
import { startReceiver } from '../outbound/receiver.js'
import { getPage, postForm, signIn } from './console-helpers.js'

const hostileAnswer = '<img src=x onerror=alert(1)><script>alert(2)</script>'

/** What text looks like in the HTML, by the escapes ghtml makes (the oracle is this table, not ghtml). */
function asText (text: string): string {
  const escapes: Record<string, string> = { '"': '&#34;', '&': '&#38;', "'": '&#39;', '<': '&#60;', '=': '&#61;', '>': '&#62;' }
  return text.replace(/["&'<=>]/g, c => escapes[c]!)
}

// One retry an hour: after the first failed attempt a delivery stays failed until re-sent.
const env = { PAYNOTIFY_OUTBOUND_ALLOW_PRIVATE: '1', PAYNOTIFY_OUTBOUND_RETRY_SCHEDULE: '0,1h' }

tap.test('without outbound the view says it is not running', async t => {
  const { app } = await buildTestApp(t)
  const cookie = await signIn(app)
  const res = await getPage(app, cookie, '/console/outbound')
  t.equal(res.statusCode, 200)
  t.match(res.body, /Outbound delivery is not running/)
  t.equal((await getPage(app, cookie, '/console/outbound/messages/msg_0000000000000000000000a')).statusCode, 404)
})

tap.test('endpoints, their deliveries and a message\'s attempts, everything from outside as text, never a secret', async t => {
  const receiver = await startReceiver(t, () => ({ status: 500, body: hostileAnswer }))
  const { app, store } = await buildTestApp(t, { outbound: true, env })
  const endpoint = await createEndpoint(app, { url: `${receiver.url}/hook?a=1&b=<x>`, description: '<b>shop</b> "main"', events: ['order.paid'] }, receiver)
  const other = await createEndpoint(app, { url: `${receiver.url}/other` }, receiver)
  await sendCallback(app, callbackParams('o-1', 'paid', 8888))
  await receiver.until(r => r.requests.some(request => request.message?.type === 'order.paid' && request.answer === 500))
  const paid = receiver.requests.find(request => request.message?.type === 'order.paid' && request.path.startsWith('/hook'))!
  // The attempt is recorded after the answer: wait for the row, not for a time.
  await eventually(() => store.sqlite.prepare('SELECT count(*) FROM outbound_attempts WHERE endpoint_id = ?').pluck().get(endpoint.id) === 1)

  const cookie = await signIn(app)
  const list = await getPage(app, cookie, '/console/outbound')
  t.equal(list.statusCode, 200)
  t.match(list.body, `href="/console/outbound/endpoints/${endpoint.id}"`)
  t.match(endpoint.url, /b=%3Cx%3E$/, 'the service stored the URL normalized')
  t.match(list.body, `<td class="mono url">${asText(endpoint.url)}</td>`, 'the URL as text')
  t.match(list.body, '&#60;b&#62;shop&#60;/b&#62; &#34;main&#34;', 'the description as text')
  t.notMatch(list.body, '<b>shop')
  t.match(list.body, 'order.paid')
  t.match(list.body, 'every type', 'an endpoint without a list gets every type')
  t.match(list.body, /badge ok">enabled/)

  const page = await getPage(app, cookie, `/console/outbound/endpoints/${endpoint.id}`)
  t.equal(page.statusCode, 200)
  t.match(page.body, `href="/console/outbound/messages/${paid.id}"`)
  t.match(page.body, /<td><span class="badge warn">failed<\/span><\/td>\s*<td class="num">1<\/td>/, 'failed after one attempt')
  t.match(page.body, /<td>500<\/td>/, 'the last status')

  const message = await getPage(app, cookie, `/console/outbound/messages/${paid.id}`)
  t.equal(message.statusCode, 200)
  t.match(message.body, '<pre class="answer">&#60;img src&#61;x onerror&#61;alert(1)&#62;&#60;script&#62;alert(2)&#60;/script&#62;</pre>', 'the answer excerpt as text')
  t.notMatch(message.body, '<img src=x')
  t.notMatch(message.body, '<script>alert')
  t.match(message.body, /badge bad">500/)
  t.match(message.body, '&#34;order_id&#34;: &#34;o-1&#34;', 'the body sent')
  t.match(message.body, `name="endpointId" value="${endpoint.id}"`, 'a re-send button per endpoint')

  for (const res of [list, page, message]) {
    t.notMatch(res.body, endpoint.secret, 'never the endpoint secret')
    t.notMatch(res.body, other.secret)
    t.notMatch(res.body, 'whsec_')
    for (const signature of paid.signatures) t.notMatch(res.body, signature.split(',')[1]!, 'never a signature sent')
  }
  const missing = await getPage(app, cookie, '/console/outbound/endpoints/ep_00000000000000000000000000000000')
  t.equal(missing.statusCode, 404)
})

tap.test('re-send: refused without the CSRF token; with it, the message is due again and an endpoint it never went to gets a new delivery', async t => {
  const receiver = await startReceiver(t, () => ({ status: 500, body: 'down' }))
  const { app, store } = await buildTestApp(t, { outbound: true, env })
  const first = await createEndpoint(app, { url: `${receiver.url}/first`, events: ['order.paid'] }, receiver)
  await sendCallback(app, callbackParams('o-2', 'paid', 100))
  await receiver.until(r => r.requests.length === 1 && r.requests[0]!.answer === 500)
  const messageId = receiver.requests[0]!.id
  const attemptsOf = store.sqlite.prepare('SELECT count(*) FROM outbound_attempts WHERE endpoint_id = ?').pluck()
  await eventually(() => attemptsOf.get(first.id) === 1)
  const later = await createEndpoint(app, { url: `${receiver.url}/later` }, receiver)
  const deliveriesOf = store.sqlite.prepare('SELECT count(*) FROM outbound_deliveries WHERE endpoint_id = ?').pluck()
  t.equal(deliveriesOf.get(later.id), 0, 'created after the message: no delivery')

  const cookie = await signIn(app)
  const forged = await app.inject({ method: 'POST', url: `/console/outbound/messages/${messageId}/resend`, cookies: { [sessionCookie]: cookie }, payload: { endpointId: later.id } })
  t.equal(forged.statusCode, 403)
  const wrong = await app.inject({ method: 'POST', url: `/console/outbound/messages/${messageId}/resend`, cookies: { [sessionCookie]: cookie }, payload: { endpointId: later.id, _csrf: 'x'.repeat(43) } })
  t.equal(wrong.statusCode, 403)
  t.equal(deliveriesOf.get(later.id), 0, 'nothing done')

  receiver.script = () => ({ status: 200, body: 'ok' })
  const resent = await postForm(app, cookie, `/console/outbound/messages/${messageId}/resend`, { endpointId: later.id })
  t.equal(resent.statusCode, 303)
  t.equal(resent.headers.location, `/console/outbound/messages/${messageId}?resent=1`)
  t.equal(deliveriesOf.get(later.id), 1, 'a new delivery to the endpoint')
  await receiver.until(r => r.requests.some(request => request.path === '/later' && request.id === messageId && request.answer === 200))

  const all = await postForm(app, cookie, `/console/outbound/messages/${messageId}/resend`, {})
  t.equal(all.headers.location, `/console/outbound/messages/${messageId}?resent=2`, 'to every endpoint it went to')
  await receiver.until(r => r.requests.some(request => request.path === '/first' && request.answer === 200))
  await eventually(() => attemptsOf.get(first.id) === 2)
  const page = await getPage(app, cookie, `/console/outbound/messages/${messageId}?resent=2`)
  t.match(page.body, 'Queued to send again: 2 deliveries.')
  t.match(page.body, /badge ok">200/)

  const unknown = await postForm(app, cookie, `/console/outbound/messages/${messageId}/resend`, { endpointId: 'ep_00000000000000000000000000000000' })
  t.equal(unknown.statusCode, 404)
  const malformed = await postForm(app, cookie, `/console/outbound/messages/${messageId}/resend`, { endpointId: '<x>' })
  t.equal(malformed.statusCode, 400)
})
