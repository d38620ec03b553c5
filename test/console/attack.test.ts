import tap from 'tap'
import { buildTestApp } from '../helpers.js'
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
