import tap from 'tap'
import { formatMoney } from '../../src/console/format.js'
import { buildTestApp, testSecrets } from '../helpers.js'
import { getPage, signIn } from './console-helpers.js'
import { notify, register, textOf } from './order-fixtures.js'

// The console attacked from outside and from a signed-in browser: each test is a defect found and fixed.

tap.test('a filter given twice is a 400 naming it, never a 500 (the list and the export)', async t => {
  const { app } = await buildTestApp(t)
  await register(app, 'O-1', '10.00')
  await notify(app, { order_id: 'O-1', amount: '10.00', status: '1', trade_no: 'T-1' })
  const cookie = await signIn(app)
  for (const [field, query] of [['q', 'q=O-1&q=O-2'], ['currency', 'currency=CNY&currency=USD'], ['cursor', 'cursor=A&cursor=B']] as const) {
    for (const url of [`/console/orders?${query}`, `/console/export/orders?format=csv&${query}`]) {
      const res = await getPage(app, cookie, url)
      t.equal(res.statusCode, 400, url)
      t.match(textOf(res.body), new RegExp(`${field}: must be given once`), url)
      t.equal(res.headers['content-security-policy'] !== undefined, true, `${url}: still a console answer`)
    }
  }
  t.equal((await getPage(app, cookie, '/console/orders?q=O-1')).statusCode, 200, 'once is fine')
})

tap.test('a path under /console/ that no page has is the console\'s: sign-in first, then an HTML 404 under its headers', async t => {
  const { app } = await buildTestApp(t)
  const cookie = await signIn(app)
  for (const url of ['/console/nope', '/console//orders', '/console/orders/O-1/nope', '/console/assets']) {
    const anonymous = await app.inject({ method: 'GET', url })
    t.equal(anonymous.statusCode, 303, `${url} signed out: to the sign-in, nothing said of what exists`)
    t.match(anonymous.headers.location, /^\/console\/sign-in\?next=/)
    const res = await getPage(app, cookie, url)
    t.equal(res.statusCode, 404, url)
    t.match(res.headers['content-type'], /^text\/html/, url)
    t.match(res.headers['content-security-policy'], /frame-ancestors 'none'/, url)
    t.equal(res.headers['x-content-type-options'], 'nosniff', url)
    t.equal(res.headers['cache-control'], 'no-store', url)
    t.match(textOf(res.body), /There is no such page in the console/, url)
  }
  const post = await app.inject({ method: 'POST', url: '/console/nope', payload: { a: '1' } })
  t.equal(post.statusCode, 401, 'a signed-out POST anywhere under /console/ is refused')
  t.equal(post.headers['cache-control'], 'no-store')
  t.match((await app.inject({ method: 'GET', url: '/nope' })).headers['content-type'], /json/, 'outside /console/ the API\'s 404 is unchanged')
})

tap.test('the page to return to after signing in stays under /console/: dot segments, plain or encoded, are refused', async t => {
  const { app } = await buildTestApp(t)
  for (const next of ['/console/../admin/orders', '/console/%2e%2e/admin/orders', '/console/%2E%2e/%2e%2e//example', '/console/./orders', '/console/orders/..']) {
    const form = await app.inject({ method: 'GET', url: `/console/sign-in?next=${encodeURIComponent(next)}` })
    t.match(form.body, '<input type="hidden" name="next" value="/console/">', `${next}: the form returns to the overview`)
    const res = await app.inject({ method: 'POST', url: '/console/sign-in', payload: { token: testSecrets.adminToken, next } })
    t.equal(res.statusCode, 303)
    t.equal(res.headers.location, '/console/', `${next}: signed in, to the overview`)
  }
  const res = await app.inject({ method: 'POST', url: '/console/sign-in', payload: { token: testSecrets.adminToken, next: '/console/orders/O-1.2/history.ndjson?cursor=1' } })
  t.equal(res.headers.location, '/console/orders/O-1.2/history.ndjson?cursor=1', 'a dot inside a name is kept')
})

tap.test('the review queue echoes only an order id from its query: a link cannot make the page say what it likes', async t => {
  const { app } = await buildTestApp(t)
  const cookie = await signIn(app)
  const spoof = await getPage(app, cookie, `/console/review?recorded=${encodeURIComponent('X: refunded 10,000.00 CNY by hand. Call +1 555 0100 to confirm')}`)
  t.equal(spoof.statusCode, 200)
  t.notMatch(textOf(spoof.body), /Call \+1 555|Note recorded/)
  const twice = await getPage(app, cookie, '/console/review?recorded=A&recorded=B')
  t.notMatch(textOf(twice.body), /Note recorded/)
  t.match(textOf((await getPage(app, cookie, '/console/review?recorded=O-1')).body), /Note recorded on order O-1: it has left the queue/)
})

tap.test('money shown whatever the amount or code: a sign in front, a code ICU refuses or an unsafe integer as bare minor units', async t => {
  t.equal(formatMoney(8888, 'CNY'), '88.88 CNY')
  t.equal(formatMoney(-5, 'CNY'), '-0.05 CNY', 'not "0.-5 CNY"')
  t.equal(formatMoney(-123456, 'KWD'), '-123.456 KWD')
  t.equal(formatMoney(-500, 'JPY'), '-500 JPY')
  t.equal(formatMoney(Number.MAX_SAFE_INTEGER, 'CNY'), '90071992547409.91 CNY')
  t.equal(formatMoney(2 ** 70, 'CNY'), `${2 ** 70} (minor units of CNY)`, 'no "1.1805916207174113e+2.21"')
  t.equal(formatMoney(100, 'XX1'), '100 (minor units of XX1)', 'Intl throws on it: the page must not')
})
