import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { BrowserContext, Page } from 'playwright-core'
import t, { type Test } from 'tap'
import type { EventAppender } from '../../src/event-log/event-log.js'
import { buildTestApp, formHeaders, merchantAuth, signedForm, testSecrets } from '../helpers.js'
import { assertAccessible, assertClean, hasHorizontalOverflow, launchBrowser, newContext, openPage, screenshot, tabThrough } from './browser.js'

// The overview and the event log in a real Chromium: sign-in through the form, a delivery
// arriving live (no reload), outside text that stays text, axe, the keyboard and 375 px.

const browser = await launchBrowser(t)

async function callback (app: FastifyInstance, orderId: string, status = '1', amount = '88.88'): Promise<void> {
  const res = await app.inject({ method: 'POST', url: '/notify/generic', headers: formHeaders, payload: signedForm({ order_id: orderId, amount, status }) })
  if (res.statusCode !== 200) throw new Error(`callback refused: ${res.statusCode} ${res.body}`)
}

async function serve (t: Test): Promise<{ app: FastifyInstance, base: string, append: EventAppender }> {
  const { app, store } = await buildTestApp(t)
  const placed = await app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload: { order_id: 'ORD-1001', amount: '88.88' } })
  if (placed.statusCode !== 201) throw new Error(`order refused: ${placed.statusCode}`)
  await callback(app, 'ORD-1001')
  await callback(app, 'ORD-1002', '2', '12.00')
  await callback(app, 'ORD-1003', '1', '5.00')
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, base: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, append: store.eventLog }
}

/** Signs in through the form, asked for `path`; resolves on the page it lands on. */
async function signIn (context: BrowserContext, base: string, path: string): Promise<Page> {
  const page = await openPage(context)
  await page.goto(`${base}${path}`)
  await page.fill('#token', testSecrets.adminToken)
  await Promise.all([page.waitForURL(`${base}${path}`), page.click('button[type="submit"]')])
  return page
}

t.test('a new delivery appears on the overview without a reload, and is announced', async t => {
  const { app, base, append } = await serve(t)
  const context = await newContext(t, browser)
  const page = await openPage(context)
  await page.goto(`${base}/console/`)
  await page.fill('#token', testSecrets.adminToken)
  // The live stream is open once its answer arrives: from then on every commit reaches the page.
  const liveOpen = page.waitForResponse(response => response.url() === `${base}/console/live` && response.status() === 200)
  await Promise.all([page.waitForURL(`${base}/console/`), page.click('button[type="submit"]')])
  await liveOpen
  t.equal(await page.locator('tr[data-position]').count(), 4, 'four events in the list')
  await page.evaluate('window.__sameDocument = true')

  await callback(app, 'ORD-2001', '1', '42.00')
  const row = page.locator('tr[data-position="5"]')
  await row.waitFor()
  t.match(await row.innerText(), /ORD-2001/)
  t.equal(await page.locator('tr[data-position]').first().getAttribute('data-position'), '5', 'newest first')
  t.equal(await page.evaluate('window.__sameDocument'), true, 'no reload: the same document')
  await page.locator('#live-status', { hasText: 'position 5' }).waitFor()
  t.match(await page.locator('#live-status').innerText(), /Newest event: position 5, PaymentSucceeded from generic, ORD-2001/)
  // The summary cards follow too.
  await page.locator('[data-live-src="/console/fragments/summary"] p.muted', { hasText: 'position 5' }).waitFor()
  await screenshot(page, 'overview', { fullPage: true })

  // Outside text arriving live is shown as text: straight through the writer, as the routes would refuse it.
  await append.append([{
    streamId: 'ORD-2001',
    type: 'PaymentSucceeded',
    data: { orderId: 'ORD-2001', amount: 1, currency: 'CNY', gateway: 'generic', transactionId: null, refundId: null, cumulative: false, gatewayStatus: '1', gatewayTime: null },
    metadata: { gateway: '<img src=x onerror=alert(1)><script>alert(2)</script>', deliveryId: 'x-1', receivedAt: new Date().toISOString(), requestId: 'r' }
  }])
  const hostile = page.locator('tr[data-position="6"]')
  await hostile.waitFor()
  t.match(await hostile.innerText(), /<img src=x onerror=alert\(1\)><script>alert\(2\)<\/script>/, 'the markup is the text of the cell')
  t.equal(await page.locator('tr[data-position="6"] img, tr[data-position="6"] script').count(), 0, 'no element made of it')

  await assertAccessible(t, page)
  await assertClean(t, page)
})

t.test('keyboard: Tab reaches every section link and sign-out', async t => {
  const { base } = await serve(t)
  const context = await newContext(t, browser)
  const page = await signIn(context, base, '/console/')
  const stops = await tabThrough(page, 9)
  const names = stops.map(stop => `${stop.role}: ${stop.name}`)
  for (const label of ['Overview', 'Orders', 'Review queue', 'Event log', 'Outbound', 'Refusals']) {
    t.ok(names.includes(`link: ${label}`), `Tab reaches ${label}`)
  }
  t.ok(names.includes('button: Sign out'), 'Tab reaches sign-out')
  await assertClean(t, page)
})

t.test('the event log: hashes, a filter, axe and no CSP problem', async t => {
  const { base } = await serve(t)
  const context = await newContext(t, browser)
  const page = await signIn(context, base, '/console/events')
  t.equal(await page.locator('tr[id^="p"]').count(), 4)
  t.equal(await page.locator('.badge.ok', { hasText: 'hash holds' }).count(), 4, 'every hash holds')
  await page.selectOption('#f-type', 'PaymentFailed')
  await Promise.all([page.waitForURL(/type=PaymentFailed/), page.click('form.filters button[type="submit"]')])
  t.equal(await page.locator('tr[id^="p"]').count(), 1, 'one failed payment')
  t.match(await page.locator('tr[id^="p"]').innerText(), /ORD-1002/)
  await assertAccessible(t, page)
  await assertClean(t, page)
  await page.goto(`${base}/console/events`)
  await screenshot(page, 'events', { fullPage: true })
})

t.test('at 375 px neither page scrolls sideways', async t => {
  const { base } = await serve(t)
  const context = await newContext(t, browser, { viewport: 'phone' })
  const page = await signIn(context, base, '/console/')
  t.equal(await hasHorizontalOverflow(page), false, 'overview')
  await page.goto(`${base}/console/events`)
  t.equal(await hasHorizontalOverflow(page), false, 'event log')
  await assertAccessible(t, page)
  await assertClean(t, page)
})
