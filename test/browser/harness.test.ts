import { existsSync, readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join, sep } from 'node:path'
import t from 'tap'
import { tempDir } from '../helpers.js'
import {
  assertAccessible, assertClean, hasHorizontalOverflow, launchBrowser, newContext, openPage,
  problems, runAxe, screenshot, tabThrough
} from './browser.js'

// The harness proves itself on small pages served from 127.0.0.1 with the console's CSP;
// each check is shown catching what it is for, and passing what it must let through.
const strictCsp = "default-src 'none'; script-src 'self'; style-src 'self'; frame-ancestors 'none'"

interface Served { body: string, type?: string, csp?: boolean }

const html = (title: string, body: string, head = ''): string =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title>${head}</head><body>${body}</body></html>`

async function listen (t: { teardown: (fn: () => unknown) => void }, server: Server, host: string): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, resolve)
  })
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
  })
  return `http://${host}:${(server.address() as AddressInfo).port}`
}

/** Serves `pages` by path on 127.0.0.1, each with the strict CSP unless it says `csp: false`; anything else is a 404. */
async function servePages (t: { teardown: (fn: () => unknown) => void }, pages: Record<string, Served>): Promise<string> {
  const server = createServer((req, res) => {
    const page = pages[new URL(req.url ?? '/', 'http://127.0.0.1').pathname]
    if (page === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
      return
    }
    if (page.csp !== false) res.setHeader('content-security-policy', strictCsp)
    res.writeHead(200, { 'content-type': page.type ?? 'text/html; charset=utf-8' }).end(page.body)
  })
  return await listen(t, server, '127.0.0.1')
}

const launchStarted = performance.now()
const browser = await launchBrowser(t)
t.comment(`chromium ${browser.version()} launched in ${Math.round(performance.now() - launchStarted)} ms`)

// A recorder in place of `t`, to show a check failing without failing this file.
function recorder (): { same: (found: unknown, wanted: unknown, message: string) => boolean, failures: unknown[] } {
  const failures: unknown[] = []
  return {
    failures,
    same: (found, wanted) => {
      const equal = JSON.stringify(found) === JSON.stringify(wanted)
      if (!equal) failures.push(found)
      return equal
    }
  }
}

t.test('an inline script is refused by the CSP and recorded, and no dialog opens; without the CSP it runs', async t => {
  const inline = html('Inline', '<p>text</p><script>alert(1)</script>')
  const base = await servePages(t, { '/': { body: inline }, '/open': { body: inline, csp: false } })
  const context = await newContext(t, browser)

  const page = await openPage(context)
  await page.goto(`${base}/`)
  const found = await problems(page)
  t.match(found.cspViolations, [/inline script violates the following Content Security Policy directive 'script-src 'self''/])
  t.same(found.cspEvents, ['script-src-elem blocked inline'])
  t.same(found.dialogs, [], 'the alert never ran')
  const check = recorder()
  await assertClean(check, page)
  t.equal(check.failures.length, 1, 'assertClean fails on it')

  const open = await openPage(context)
  await open.goto(`${base}/open`)
  t.same((await problems(open)).dialogs, ['alert: 1'], 'without the CSP the dialog is recorded')
})

t.test('an img onerror handler is refused by the CSP and recorded, and no dialog opens; without the CSP it runs', async t => {
  const injected = html('Injected', '<p>subject: <img src=x onerror=alert(1)></p>')
  const base = await servePages(t, { '/': { body: injected }, '/open': { body: injected, csp: false } })
  const context = await newContext(t, browser)

  const page = await openPage(context)
  await page.goto(`${base}/`)
  const found = await problems(page)
  t.match(found.cspViolations, [/Content Security Policy/])
  t.ok(found.cspEvents.includes('script-src-attr blocked inline'), `the handler was refused: ${found.cspEvents.join('; ')}`)
  t.same(found.dialogs, [], 'the handler never ran')

  const open = await openPage(context)
  await open.goto(`${base}/open`)
  t.same((await problems(open)).dialogs, ['alert: 1'], 'without the CSP the dialog is recorded')
})

t.test('a clean page with its own script and stylesheet passes assertClean; a throwing script and a request off 127.0.0.1 are recorded', async t => {
  // A second server on another loopback address: the request the page makes to it must never arrive.
  let outsideHits = 0
  const outside = await listen(t, createServer((_req, res) => { outsideHits++; res.end() }), '127.0.0.2')
  const base = await servePages(t, {
    '/': { body: html('Clean', '<main><h1>Clean</h1><p id="out">waiting</p></main><script src="/app.js"></script>', '<link rel="stylesheet" href="/app.css">') },
    '/app.js': { body: "document.getElementById('out').textContent = 'script ran'", type: 'text/javascript' },
    '/app.css': { body: 'body { font-family: sans-serif }', type: 'text/css' },
    '/throws': { body: html('Throws', '<script src="/throws.js"></script>') },
    '/throws.js': { body: "throw new Error('thrown by the page')", type: 'text/javascript' },
    '/leaks': { body: html('Leaks', `<img alt="" src="${outside}/pixel.png">`), csp: false }
  })
  const context = await newContext(t, browser)

  const page = await openPage(context)
  await page.goto(`${base}/`)
  t.equal(await page.textContent('#out'), 'script ran', "the page's own script runs under the CSP")
  await assertClean(t, page)

  await page.goto(`${base}/throws`)
  t.same((await problems(page)).pageErrors, ['thrown by the page'])

  const leaks = await openPage(context)
  await leaks.goto(`${base}/leaks`)
  t.same((await problems(leaks)).outsideRequests, [`${outside}/pixel.png`])
  t.equal(outsideHits, 0, 'the request was aborted in the browser')
})

t.test('runAxe reports serious and critical violations, not lesser ones, and none on a well-formed page', async t => {
  const base = await servePages(t, {
    // An image without alt and an input without a label (critical), an empty link (serious),
    // and text outside any landmark (moderate: not reported).
    '/bad': { body: html('Bad', '<p>Outside every landmark</p><main><h1>Bad</h1><img src="/chart.png"><form><input name="q"></form><a href="/next"></a></main>') },
    '/good': { body: html('Good', '<main><h1>Good</h1><img src="/chart.png" alt="Callbacks per minute"><form><label for="q">Search</label><input id="q" name="q"></form></main>') }
  })
  const page = await openPage(await newContext(t, browser))

  await page.goto(`${base}/bad`)
  const violations = await runAxe(page)
  t.same(violations.map(v => v.id).sort(), ['image-alt', 'label', 'link-name'])
  t.match(violations.find(v => v.id === 'image-alt'), { impact: 'critical', targets: ['img'] })
  t.match(violations.find(v => v.id === 'link-name'), { impact: 'serious', targets: ['a'] })
  const check = recorder()
  await assertAccessible(check, page)
  t.equal(check.failures.length, 1, 'assertAccessible fails on it')

  await page.goto(`${base}/good`)
  t.same(await runAxe(page), [])
  await assertAccessible(t, page)
})

t.test('tabThrough follows keyboard focus and reads accessible names', async t => {
  const base = await servePages(t, {
    '/': {
      body: html('Keyboard', '<a href="#main">Skip to content</a><nav><a href="/orders">Orders</a> <a>No href, not focusable</a> ' +
        '<a href="/hidden" tabindex="-1">Out of the tab order</a> <a href="/review" aria-label="Review queue">RQ</a></nav>' +
        '<main id="main"><h1>Keyboard</h1><button type="button">Sign out</button></main>')
    }
  })
  const page = await openPage(await newContext(t, browser))
  await page.goto(`${base}/`)
  t.same(await tabThrough(page, 5), [
    { role: 'link', name: 'Skip to content' },
    { role: 'link', name: 'Orders' },
    { role: 'link', name: 'Review queue' },
    { role: 'button', name: 'Sign out' },
    { role: 'RootWebArea', name: 'Keyboard' }
  ])
})

t.test('hasHorizontalOverflow tells a page wider than 375 px from one that fits', async t => {
  const base = await servePages(t, {
    '/fits': { body: html('Fits', '<main><h1>Fits</h1><p>Short text wraps.</p></main>') },
    '/wide': { body: html('Wide', '<main><h1>Wide</h1><div class="table">columns</div></main>', '<link rel="stylesheet" href="/wide.css">') },
    '/wide.css': { body: '.table { width: 600px }', type: 'text/css' }
  })
  const phone = await openPage(await newContext(t, browser, { viewport: 'phone' }))
  await phone.goto(`${base}/fits`)
  t.equal(await hasHorizontalOverflow(phone), false)
  await phone.goto(`${base}/wide`)
  t.equal(await hasHorizontalOverflow(phone), true)
  await assertClean(t, phone)

  const desktop = await openPage(await newContext(t, browser))
  await desktop.goto(`${base}/wide`)
  t.equal(await hasHorizontalOverflow(desktop), false, 'the same page fits 1280 px')
})

t.test('screenshot writes a PNG of the viewport only when enabled', async t => {
  // Taller than the viewport: the image is the viewport, not the whole page.
  const base = await servePages(t, {
    '/': { body: html('Shot', '<main><h1>Shot</h1></main>', '<link rel="stylesheet" href="/tall.css">') },
    '/tall.css': { body: 'main { height: 2000px }', type: 'text/css' }
  })
  const dir = tempDir(t)
  const size = (path: string) => {
    const png = readFileSync(path)
    t.equal(png.subarray(1, 4).toString(), 'PNG')
    return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) }
  }

  const desktop = await openPage(await newContext(t, browser))
  await desktop.goto(`${base}/`)
  t.equal(await screenshot(desktop, 'overview', { dir, enabled: false }), undefined)
  t.notOk(existsSync(join(dir, 'overview.png')), 'nothing written when not enabled')
  const path = await screenshot(desktop, 'overview', { dir, enabled: true })
  t.equal(path, join(dir, 'overview.png'))
  t.same(size(join(dir, 'overview.png')), { width: 1280, height: 800 })

  const phone = await openPage(await newContext(t, browser, { viewport: 'phone' }))
  await phone.goto(`${base}/`)
  await screenshot(phone, 'overview-phone', { dir, enabled: true })
  t.same(size(join(dir, 'overview-phone.png')), { width: 375, height: 812 })

  await t.rejects(screenshot(desktop, '../escape', { dir, enabled: true }), /not a kebab-case file name/)
})

// Last: it closes the file's browser (the root teardown's close is then a no-op).
t.test('the browser runs on a fresh profile in the temp dir, removed when it closes', async t => {
  const context = await browser.newContext()
  const page = await context.newPage()
  await page.goto('chrome://version')
  const profile = (await page.textContent('#profile_path'))?.trim() ?? ''
  t.ok(profile.startsWith(tmpdir() + sep), `profile ${profile} is under ${tmpdir()}`)
  t.ok(existsSync(profile))
  await browser.close()
  t.notOk(existsSync(profile), 'removed on close')
})
