import tap from 'tap'
import { consoleCsp, sessionCookie } from '../../src/console/plugin.js'
import { buildTestApp, testSecrets } from '../helpers.js'
import { consoleCookie, csrfOf, signIn } from './console-helpers.js'

tap.test('without a session every console page redirects to sign-in, and nothing of the data is shown', async t => {
  const { app } = await buildTestApp(t)
  for (const path of ['/console/', '/console/orders', '/console/review', '/console/events', '/console/outbound', '/console/refusals', '/console/orders/A1']) {
    const res = await app.inject({ method: 'GET', url: path })
    t.equal(res.statusCode, 303, path)
    t.equal(res.headers.location, `/console/sign-in?next=${encodeURIComponent(path)}`, path)
  }
  // The admin API's bearer token is not a console session.
  const bearer = await app.inject({ method: 'GET', url: '/console/', headers: { authorization: `Bearer ${testSecrets.adminToken}` } })
  t.equal(bearer.statusCode, 303)
  const post = await app.inject({ method: 'POST', url: '/console/sign-out', payload: { _csrf: 'x' } })
  t.equal(post.statusCode, 401)
})

tap.test('the admin token signs in: an HttpOnly, SameSite=Strict cookie that expires, and back to the page asked for', async t => {
  const { app } = await buildTestApp(t)
  const form = await app.inject({ method: 'GET', url: '/console/sign-in?next=/console/orders' })
  t.equal(form.statusCode, 200)
  t.equal(form.headers['content-security-policy'], consoleCsp)
  t.match(form.body, /<input type="hidden" name="next" value="\/console\/orders">/)
  const res = await app.inject({ method: 'POST', url: '/console/sign-in', payload: { token: testSecrets.adminToken, next: '/console/orders' } })
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, '/console/orders')
  const setCookie = String(res.headers['set-cookie'])
  t.match(setCookie, new RegExp(`^${sessionCookie}=`))
  t.match(setCookie, /HttpOnly/)
  t.match(setCookie, /SameSite=Strict/)
  t.match(setCookie, /Max-Age=43200/)
  t.match(setCookie, /Path=\/console/)
  t.notMatch(setCookie, /Secure/, 'plain http: no Secure flag, or the browser would never send it back')
  const page = await app.inject({ method: 'GET', url: '/console/orders', cookies: { [sessionCookie]: consoleCookie(res) } })
  t.equal(page.statusCode, 200)
  t.match(page.body, /Sign out/)

  const https = await app.inject({ method: 'POST', url: '/console/sign-in', headers: { 'x-forwarded-proto': 'https' }, payload: { token: testSecrets.adminToken } })
  t.match(String(https.headers['set-cookie']), /Secure/, 'behind https the cookie is Secure')
  t.equal(https.headers.location, '/console/', 'no next: the overview')

  const offsite = await app.inject({ method: 'POST', url: '/console/sign-in', payload: { token: testSecrets.adminToken, next: '//evil.test/' } })
  t.equal(offsite.headers.location, '/console/', 'never redirected off the console')
})

tap.test('a wrong, forged, tampered or signed-out cookie is refused', async t => {
  const { app } = await buildTestApp(t)
  const wrong = await app.inject({ method: 'POST', url: '/console/sign-in', payload: { token: 'not-the-token-0123456789' } })
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.headers['set-cookie'], undefined)
  t.match(wrong.body, /not the admin token/)

  const cookie = await signIn(app)
  const [id, expiry, mac] = cookie.split('.') as [string, string, string]
  const later = `${id}.${Number(expiry) + 3600_000}.${mac}`
  for (const bad of [later, `${id}.${expiry}.${'A'.repeat(43)}`, 'garbage', `${'B'.repeat(24)}.${expiry}.${mac}`]) {
    const res = await app.inject({ method: 'GET', url: '/console/', cookies: { [sessionCookie]: bad } })
    t.equal(res.statusCode, 303, bad)
  }

  // A POST without the session's CSRF token is refused, with it sign-out works and the cookie is dead after.
  const noCsrf = await app.inject({ method: 'POST', url: '/console/sign-out', cookies: { [sessionCookie]: cookie }, payload: { _csrf: 'nope' } })
  t.equal(noCsrf.statusCode, 403)
  t.equal((await app.inject({ method: 'GET', url: '/console/', cookies: { [sessionCookie]: cookie } })).statusCode, 200, 'still signed in after a refused sign-out')
  const csrf = await csrfOf(app, cookie)
  const out = await app.inject({ method: 'POST', url: '/console/sign-out', cookies: { [sessionCookie]: cookie }, payload: { _csrf: csrf } })
  t.equal(out.statusCode, 303)
  t.equal(out.headers.location, '/console/sign-in')
  t.match(String(out.headers['set-cookie']), /Max-Age=0|Expires=Thu, 01 Jan 1970/)
  t.equal((await app.inject({ method: 'GET', url: '/console/', cookies: { [sessionCookie]: cookie } })).statusCode, 303, 'the old cookie no longer signs in')
})

tap.test('failed sign-ins are limited per address: the 11th in a minute is 429, even with the right token', async t => {
  const { app } = await buildTestApp(t)
  for (let i = 0; i < 10; i++) {
    const res = await app.inject({ method: 'POST', url: '/console/sign-in', remoteAddress: '10.0.0.7', payload: { token: `wrong-token-${i}-0123456789` } })
    t.equal(res.statusCode, 401)
  }
  const limited = await app.inject({ method: 'POST', url: '/console/sign-in', remoteAddress: '10.0.0.7', payload: { token: testSecrets.adminToken } })
  t.equal(limited.statusCode, 429)
  t.ok(Number(limited.headers['retry-after']) > 0)
  t.equal(limited.headers['set-cookie'], undefined)
  const other = await app.inject({ method: 'POST', url: '/console/sign-in', remoteAddress: '10.0.0.8', payload: { token: testSecrets.adminToken } })
  t.equal(other.statusCode, 303, 'another address is not held up')
})

tap.test('every console answer has a strict policy: no inline script, never framed', async t => {
  const { app } = await buildTestApp(t)
  const cookie = await signIn(app)
  const pages = ['/console/sign-in', '/console/', '/console/orders', '/console/assets/console.css']
  for (const url of pages) {
    const res = await app.inject({ method: 'GET', url, cookies: { [sessionCookie]: cookie } })
    t.equal(res.statusCode, 200, url)
    t.equal(res.headers['content-security-policy'], consoleCsp, url)
    t.equal(res.headers['x-frame-options'], 'DENY', url)
    t.equal(res.headers['x-content-type-options'], 'nosniff', url)
    if (url.endsWith('.css')) continue
    t.notMatch(res.body, /<script(?![^>]*\bsrc=)/, `${url}: no inline script`)
    t.notMatch(res.body, /\son[a-z]+=/i, `${url}: no inline handler`)
    t.notMatch(res.body, /style=/, `${url}: no inline style`)
  }
  t.match(consoleCsp, /script-src 'self';/)
  t.match(consoleCsp, /frame-ancestors 'none'/)
  t.notMatch(consoleCsp, /unsafe/)
  const missing = await app.inject({ method: 'GET', url: '/console/assets/nope.js' })
  t.equal(missing.statusCode, 404)
  const css = await app.inject({ method: 'GET', url: '/console/assets/console.css' })
  const again = await app.inject({ method: 'GET', url: '/console/assets/console.css', headers: { 'if-none-match': String(css.headers.etag) } })
  t.equal(again.statusCode, 304)
})
