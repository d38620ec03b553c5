import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import type { Page } from 'playwright-core'
import { buildTestApp, testSecrets } from '../helpers.js'
import { notify, register } from '../console/order-fixtures.js'
import { assertAccessible, assertClean, hasHorizontalOverflow, launchBrowser, newContext, openPage, screenshot } from './browser.js'

// The orders list, one order's page and the review queue in a real Chromium: signed in through
// the form, a filter and a search, a repeat marked in the timeline, a raw request opened with the
// keyboard, a callback carrying markup shown as text, a review note recorded.

const browser = await launchBrowser(t)

async function serve (t: Test): Promise<string> {
  const { app } = await buildTestApp(t)
  await register(app, 'ORD-1', '88.88')
  await notify(app, { order_id: 'ORD-1', amount: '88.88', status: '1', trade_no: 'TX-ORD-1', notify_id: 'n-1', subject: 'Green tea' })
  await notify(app, { order_id: 'ORD-1', amount: '88.88', status: '1', trade_no: 'TX-ORD-1', notify_id: 'n-1', subject: 'Green tea' })
  await register(app, 'ORD-2', '10.00')
  await notify(app, { order_id: 'ORD-2', amount: '12.00', status: '1', trade_no: 'TX-ORD-2', notify_id: 'n-2' })
  await register(app, 'ORD-3', '5.00')
  await notify(app, { order_id: 'ORD-3', amount: '5.00', status: '0', notify_id: 'n-3' })
  await register(app, 'XSS-1', '1.00')
  await notify(app, { order_id: 'XSS-1', amount: '1.00', status: '1', trade_no: '<script>alert(1)</script>', notify_id: '<img/src=x/onerror=alert(2)>', subject: '<script>alert(3)</script> <img src=x onerror=alert(4)>' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

async function signIn (page: Page, base: string, path: string): Promise<void> {
  await page.goto(`${base}${path}`)
  await page.locator('#token').fill(testSecrets.adminToken)
  await Promise.all([page.waitForURL(`${base}${path}`), page.keyboard.press('Enter')])
}

/** The order ids of the list on the page, in order. */
async function listed (page: Page): Promise<string[]> {
  return await page.locator('main table tbody tr td:first-child a').allTextContents()
}

t.test('sign in, filter, search, open an order: its repeat marked, a raw request opened with the keyboard', async t => {
  const base = await serve(t)
  const page = await openPage(await newContext(t, browser))
  await signIn(page, base, '/console/orders')
  t.same(await listed(page), ['ORD-1', 'ORD-2', 'ORD-3', 'XSS-1'])

  await page.locator('#f-status').selectOption('paid')
  await Promise.all([page.waitForURL(/status=paid/), page.getByRole('button', { name: 'Apply' }).click()])
  t.same(await listed(page), ['ORD-1', 'ORD-2', 'XSS-1'], 'the status filter')
  await page.locator('#f-review').selectOption('yes')
  await Promise.all([page.waitForURL(/review=yes/), page.getByRole('button', { name: 'Apply' }).click()])
  t.same(await listed(page), ['ORD-2'], 'and needs review')
  await assertAccessible(t, page)
  await screenshot(page, 'orders', { fullPage: true })

  await page.goto(`${base}/console/orders`)
  await page.locator('#f-q').fill('TX-ORD-1')
  await Promise.all([page.waitForURL(/q=TX-ORD-1/), page.locator('#f-q').press('Enter')])
  t.same(await listed(page), ['ORD-1'], 'a search by transaction id')

  await Promise.all([page.waitForURL(`${base}/console/orders/ORD-1`), page.getByRole('link', { name: 'ORD-1' }).click()])
  t.equal(await page.locator('h1').textContent(), 'Order ORD-1')
  const repeat = page.locator('li.entry.repeat')
  t.equal(await repeat.count(), 1, 'one repeat')
  t.match(await repeat.locator('.entry-head').textContent(), /#3 PaymentSucceeded repeat repeat of delivery #2/)
  await Promise.all([page.waitForURL(/#p2$/), repeat.getByRole('link', { name: '#2' }).click()])
  t.equal(await page.evaluate<string>('document.querySelector(":target")?.id ?? ""'), 'p2', 'the link lands on the first delivery')

  const details = page.locator('#p2 details.raw')
  const isOpen = 'document.querySelector("#p2 details.raw").open'
  t.equal(await page.evaluate<boolean>(isOpen), false)
  await details.locator('summary').focus()
  await page.keyboard.press('Enter')
  t.equal(await page.evaluate<boolean>(isOpen), true, 'Enter on the summary opens the raw request')
  t.match(await details.locator('pre.raw-body').textContent(), /^order_id=ORD-1&amount=88\.88&status=1&trade_no=TX-ORD-1&notify_id=n-1&subject=Green\+tea&sign=[0-9a-f]{64}$/)
  t.match(await details.locator('table.decoded').textContent(), /subject\s*Green tea/)
  await assertAccessible(t, page)
  await screenshot(page, 'order', { fullPage: true })
  await assertClean(t, page)
})

t.test('a callback whose signed fields carry markup is shown as text: no script runs, no CSP violation', async t => {
  const base = await serve(t)
  const page = await openPage(await newContext(t, browser))
  await signIn(page, base, '/console/orders/XSS-1')
  const main = page.locator('main')
  t.match(await main.textContent(), /Transaction id<script>alert\(1\)<\/script>/)
  t.match(await main.textContent(), /Delivery id<img\/src=x\/onerror=alert\(2\)>/)
  const details = page.locator('li.entry details.raw').last()
  await details.locator('summary').click()
  t.match(await details.locator('table.decoded').textContent(), /<script>alert\(3\)<\/script> <img src=x onerror=alert\(4\)>/)
  t.equal(await page.locator('main script, main img').count(), 0, 'no element made from the callback')
  await page.goto(`${base}/console/orders?q=XSS-1`)
  await page.goto(`${base}/console/review`)
  await assertClean(t, page)
})

t.test('recording a review note: the order leaves the queue and the note is in its timeline', async t => {
  const base = await serve(t)
  const page = await openPage(await newContext(t, browser))
  await signIn(page, base, '/console/review')
  const items = page.locator('li.review-item h2 a')
  t.same(await items.allTextContents(), ['ORD-2'], 'ORD-2 was paid more than registered')
  await assertAccessible(t, page)
  await screenshot(page, 'review', { fullPage: true })
  const form = page.locator('li.review-item', { hasText: 'ORD-2' }).locator('form.review-note')
  await form.getByLabel('Resolution note').fill('Refunded 2.00 by hand')
  await Promise.all([page.waitForURL(/recorded=ORD-2/), form.getByRole('button', { name: 'Record note' }).click()])
  t.match(await page.locator('main .note').first().textContent(), /Note recorded on order ORD-2: it has left the queue/)
  t.same(await items.allTextContents(), [], 'the queue is empty')
  await page.goto(`${base}/console/orders/ORD-2`)
  t.match(await page.locator('li.entry').last().textContent(), /ReviewNoteRecorded[\s\S]*Refunded 2\.00 by hand/)
  await assertClean(t, page)
})

t.test('at 375 px wide the pages do not scroll sideways', async t => {
  const base = await serve(t)
  const page = await openPage(await newContext(t, browser, { viewport: 'phone' }))
  await signIn(page, base, '/console/orders')
  t.equal(await hasHorizontalOverflow(page), false, 'orders')
  await page.goto(`${base}/console/orders/ORD-1`)
  for (const summary of await page.locator('details.raw summary').all()) await summary.click()
  t.equal(await hasHorizontalOverflow(page), false, 'an order with its raw requests open')
  await assertAccessible(t, page)
  await page.goto(`${base}/console/review`)
  t.equal(await hasHorizontalOverflow(page), false, 'review queue')
  await assertClean(t, page)
})
