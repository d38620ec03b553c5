import type { AddressInfo } from 'node:net'
import type { Page } from 'playwright-core'
import t from 'tap'
import { buildTestApp, formHeaders, testSecrets } from '../helpers.js'
import { callbackParams, createEndpoint, eventually, sendCallback } from '../outbound/harness.js'
import { startReceiver } from '../outbound/receiver.js'
import { assertAccessible, assertClean, hasHorizontalOverflow, launchBrowser, newContext, openPage, screenshot, tabThrough } from './browser.js'

// The outbound and refusals views in Chromium: a hostile answer excerpt and a hostile refused
// callback render as text (no dialog, no CSP violation), the re-send form works from the
// keyboard, axe finds nothing serious, and nothing overflows at 375 px.

const hostileAnswer = '<img src=x onerror=alert(1)><script>alert(2)</script>'
const hostileBody = 'order_id=<script>alert(3)</script>&amount=10.00&status=1&subject=<img src=x onerror=alert(4)>&sign=0000'
const signature = 'v1,c2lnbmF0dXJlLXRoYXQtbXVzdC1uZXZlci1zaG93'

const receiver = await startReceiver(t, () => ({ status: 500, body: hostileAnswer }))
const { app, store } = await buildTestApp(t, { outbound: true, env: { PAYNOTIFY_OUTBOUND_ALLOW_PRIVATE: '1', PAYNOTIFY_OUTBOUND_RETRY_SCHEDULE: '0,1h' } })
const endpoint = await createEndpoint(app, { url: `${receiver.url}/hooks/orders`, description: 'Shop backend <b>eu-1</b>', events: ['order.paid', 'order.refunded'] }, receiver)
await createEndpoint(app, { url: `${receiver.url}/hooks/audit`, description: 'Audit trail' }, receiver)
await sendCallback(app, callbackParams('B-1', 'paid', 8888))
await eventually(() => store.sqlite.prepare('SELECT count(*) FROM outbound_attempts WHERE endpoint_id = ?').pluck().get(endpoint.id) === 1)
const messageId = store.sqlite.prepare('SELECT o.message_id FROM outbound_deliveries AS d JOIN outbox AS o ON o.seq = d.message_seq WHERE d.endpoint_id = ?').pluck().get(endpoint.id) as string
const refused = await app.inject({ method: 'POST', url: '/notify/generic', headers: { ...formHeaders, 'x-callback-signature': signature }, payload: hostileBody })
// No assertion at the top: tap would end the file's test at the next idle turn, before the subtests below.
if (refused.statusCode !== 401) throw new Error(`the hostile callback was answered ${refused.statusCode}, not refused as unsigned`)
await app.listen({ port: 0, host: '127.0.0.1' })
const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
const browser = await launchBrowser(t)

async function signInThroughForm (page: Page, next: string): Promise<void> {
  await page.goto(`${base}${next}`)
  await page.fill('#token', testSecrets.adminToken)
  await Promise.all([page.waitForURL(`${base}${next}`), page.click('button[type=submit]')])
}

t.test('outbound: endpoints, a message\'s attempts with a hostile answer as text, re-send from the keyboard', async t => {
  const page = await openPage(await newContext(t, browser))
  await signInThroughForm(page, '/console/outbound')
  t.equal(await page.textContent('h1'), 'Outbound')
  t.match(await page.textContent('table.outbound-endpoints'), 'Shop backend <b>eu-1</b>', 'the description as text')
  await assertAccessible(t, page)

  await Promise.all([page.waitForURL(`${base}/console/outbound/endpoints/${endpoint.id}`), page.click(`a[href="/console/outbound/endpoints/${endpoint.id}"]`)])
  t.match(await page.textContent('table.outbound-deliveries'), /failed/)
  await assertAccessible(t, page)

  await Promise.all([page.waitForURL(`${base}/console/outbound/messages/${messageId}`), page.click(`a[href="/console/outbound/messages/${messageId}"]`)])
  t.equal(await page.textContent('pre.answer'), hostileAnswer, 'the answer excerpt, as text')
  t.equal(await page.locator('img').count(), 0, 'no element made of it')
  await assertAccessible(t, page)
  await screenshot(page, 'outbound', { fullPage: true })

  const stops = await tabThrough(page, 16)
  const resend = stops.findIndex(stop => stop.role === 'button' && stop.name === 'Re-send to every endpoint')
  t.ok(resend >= 0, `Tab reaches the re-send button (${stops.map(stop => `${stop.role}:${stop.name}`).join(' | ')})`)
  await page.focus(`form.resend:has(input[value="${endpoint.id}"]) button`)
  await Promise.all([page.waitForURL(`${base}/console/outbound/messages/${messageId}?resent=1`), page.keyboard.press('Enter')])
  t.equal(await page.textContent('p.note'), 'Queued to send again: 1 delivery.')
  await receiver.until(r => r.attemptsOf(messageId).filter(request => request.path === '/hooks/orders').length === 2)
  await assertClean(t, page)
})

t.test('refusals: a hostile refused callback as text, its signature redacted', async t => {
  const page = await openPage(await newContext(t, browser))
  await signInThroughForm(page, '/console/refusals')
  t.equal(await page.textContent('pre.refused-body'), hostileBody, 'the body, as text')
  t.equal(await page.locator('img').count(), 0)
  const text = await page.textContent('main') ?? ''
  t.notMatch(text, signature.slice(3), 'the signature is not on the page')
  await page.click('section.refusal details:not([open]) summary')
  t.match(await page.textContent('table.refusal-headers'), 'x-callback-signature[redacted]')
  await page.selectOption('#refusal-code', 'bad_signature')
  await Promise.all([page.waitForURL(`${base}/console/refusals?gateway=&code=bad_signature`), page.click('form.filters button')])
  t.equal(await page.locator('section.refusal').count(), 1)
  await assertAccessible(t, page)
  await screenshot(page, 'refusals', { fullPage: true })
  await assertClean(t, page)
})

t.test('at 375 px neither view scrolls sideways', async t => {
  const page = await openPage(await newContext(t, browser, { viewport: 'phone' }))
  await signInThroughForm(page, '/console/outbound')
  for (const path of ['/console/outbound', `/console/outbound/endpoints/${endpoint.id}`, `/console/outbound/messages/${messageId}`, '/console/refusals']) {
    await page.goto(`${base}${path}`)
    t.notOk(await hasHorizontalOverflow(page), `${path}: no horizontal overflow`)
  }
  await assertClean(t, page)
})
