import { execFile } from 'node:child_process'
import { mkdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { chromium as playwright, type Browser, type BrowserContext, type CDPSession, type Page } from 'playwright-core'
import { chromium, provideSystemProgram } from '../system-programs.js'

// The harness the console's browser tests share: Debian's Chromium driven by playwright-core,
// one browser per test file, a fresh context per test, and a page that records what must
// never happen (a CSP violation, a script error, a dialog, a request leaving 127.0.0.1).
// The project's lib has no DOM types, so code that runs in the page is written as strings.

interface Teardown { teardown: (fn: () => unknown) => void }
/** The one assertion the checks below make (tap's `t.same`). */
interface Same { same: (found: unknown, wanted: unknown, message: string) => boolean }

const run = promisify(execFile)

const launchArgs = [
  // Root in a container has no user namespaces for Chromium's sandbox; the pages are our own.
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync'
]

/**
 * Starts headless Chromium for one test file (call it once, at the top) and
 * closes it on `t`'s teardown. Debian's `chromium` is provided as the PHP
 * test's interpreter is (installed when running as root with apt-get); when
 * it is missing and cannot be installed, this throws the one line naming
 * what to install, which fails the file at once. Never downloads a browser.
 */
export async function launchBrowser (t: Teardown): Promise<Browser> {
  const missing = await provideSystemProgram(chromium)
  if (missing !== undefined) throw new Error(missing)
  // The wrapper on PATH, not /usr/lib/chromium/chromium: it adds --disable-dev-shm-usage when
  // /dev/shm is small (64 MiB in a default container), where the bare binary crashes.
  const { stdout } = await run('sh', ['-c', 'command -v chromium'])
  // launch() runs Chromium on a fresh profile it makes with mkdtemp in the temp dir and removes
  // on close (it refuses a --user-data-dir argument); harness.test.ts checks both.
  // timeout 0 here and below: tap's per-file timeout bounds every wait (STYLE 17).
  const browser = await playwright.launch({ executablePath: stdout.trim(), headless: true, args: launchArgs, timeout: 0 })
  t.teardown(async () => { await browser.close() })
  return browser
}

/** The two widths the console is checked at: a laptop, and a phone at 375 px. */
export const viewports = {
  desktop: { width: 1280, height: 800 },
  phone: { width: 375, height: 812 }
} as const

export interface ContextOptions {
  /** `desktop` (1280×800, the default), `phone` (375 px wide) or any size. */
  viewport?: keyof typeof viewports | { width: number, height: number }
}

/**
 * A fresh browser context (its own cookies and storage, like a new private
 * window), closed on `t`'s teardown. The layout is a desktop browser's at the
 * given width (no mobile emulation), so 375 px lays the page out 375 px wide
 * whatever its viewport meta says. Locale and time zone are fixed so
 * screenshots do not depend on the machine.
 */
export async function newContext (t: Teardown, browser: Browser, options: ContextOptions = {}): Promise<BrowserContext> {
  const viewport = typeof options.viewport === 'object' ? options.viewport : viewports[options.viewport ?? 'desktop']
  // Service workers would fetch past the page's routes, which keep requests on 127.0.0.1.
  const context = await browser.newContext({ viewport, locale: 'en-US', timezoneId: 'UTC', serviceWorkers: 'block' })
  context.setDefaultTimeout(0)
  context.setDefaultNavigationTimeout(0)
  t.teardown(async () => { await context.close() })
  return context
}

/** What a page recorded that must not happen; every list is empty on a clean page. */
export interface PageProblems {
  /** CSP violations Chromium logged to the console, on every document this page has shown. */
  cspViolations: string[]
  /** The current document's `securitypolicyviolation` events: `<directive> blocked <what>`. */
  cspEvents: string[]
  /** Uncaught exceptions and unhandled rejections in the page's scripts. */
  pageErrors: string[]
  /** Every alert, confirm, prompt or beforeunload dialog (`alert: 1`): an alert from injected markup is XSS that ran. They are dismissed. */
  dialogs: string[]
  /** Requests and WebSockets to anywhere but 127.0.0.1; each was aborted before leaving the browser. */
  outsideRequests: string[]
}

type Recorded = Omit<PageProblems, 'cspEvents'>
const recorded = new WeakMap<Page, Recorded>()

// Runs before any of the page's own scripts in every document (CDP injects it, so the CSP does not apply).
const recordCspEvents = `
window.__cspViolations = []
document.addEventListener('securitypolicyviolation', event => {
  window.__cspViolations.push(event.effectiveDirective + ' blocked ' + (event.blockedURI || 'inline') + (event.sample ? ': ' + event.sample : ''))
})
`

function stays (url: string): boolean {
  const { protocol, hostname } = new URL(url)
  return protocol === 'data:' || protocol === 'blob:' || protocol === 'about:' || hostname === '127.0.0.1'
}

/** A new page in `context` that records its problems from the first request on (read them with `problems` or `assertClean`). */
export async function openPage (context: BrowserContext): Promise<Page> {
  const page = await context.newPage()
  const seen: Recorded = { cspViolations: [], pageErrors: [], dialogs: [], outsideRequests: [] }
  recorded.set(page, seen)
  page.on('console', message => {
    if (message.text().includes('Content Security Policy')) seen.cspViolations.push(message.text())
  })
  page.on('pageerror', error => { seen.pageErrors.push(error.message) })
  page.on('dialog', dialog => {
    seen.dialogs.push(`${dialog.type()}: ${dialog.message()}`)
    // The page may close before the dismissal lands; the dialog is recorded either way.
    dialog.dismiss().catch(() => {})
  })
  page.on('websocket', socket => { if (!stays(socket.url())) seen.outsideRequests.push(socket.url()) })
  await page.route(url => !stays(url.href), async route => {
    seen.outsideRequests.push(route.request().url())
    await route.abort('blockedbyclient')
  })
  await page.addInitScript(recordCspEvents)
  return page
}

/** The problems `page` (from `openPage`) has recorded so far. */
export async function problems (page: Page): Promise<PageProblems> {
  const seen = recorded.get(page)
  if (seen === undefined) throw new Error('problems: the page was not opened with openPage')
  // One task's turn first, so a violation event queued while the page loaded has been dispatched.
  const cspEvents = await page.evaluate<string[]>('new Promise(resolve => setTimeout(() => resolve(window.__cspViolations ?? []), 0))')
  return {
    cspViolations: [...seen.cspViolations],
    cspEvents,
    pageErrors: [...seen.pageErrors],
    dialogs: [...seen.dialogs],
    outsideRequests: [...seen.outsideRequests]
  }
}

/** Asserts the page has recorded no CSP violation, page error, dialog or outside request. */
export async function assertClean (t: Same, page: Page, message = 'no CSP violation, page error, dialog or request off 127.0.0.1'): Promise<void> {
  t.same(await problems(page), { cspViolations: [], cspEvents: [], pageErrors: [], dialogs: [], outsideRequests: [] }, message)
}

/** One axe-core violation: the rule, its impact, its help text and the elements that break it. */
export interface AxeViolation {
  id: string
  impact: 'serious' | 'critical'
  help: string
  targets: string[]
}

let axeSource: string | undefined

/**
 * Runs axe-core in the current document and returns its serious and
 * critical violations. axe is injected with `evaluate`, which a strict CSP
 * does not govern (a script tag would be refused).
 */
export async function runAxe (page: Page): Promise<AxeViolation[]> {
  if (!await page.evaluate<boolean>("typeof window.axe === 'object'")) {
    axeSource ??= readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')
    await page.evaluate(axeSource)
  }
  return await page.evaluate<AxeViolation[]>(`axe.run(document, { resultTypes: ['violations'] }).then(results => results.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map(node => node.target.map(String).join(' ')) })))`)
}

/** Asserts axe-core finds no serious or critical accessibility violation in the current document. */
export async function assertAccessible (t: Same, page: Page, message = 'axe-core: no serious or critical accessibility violation'): Promise<void> {
  t.same(await runAxe(page), [], message)
}

/** Where keyboard focus is: the element's accessible role and name as Chromium computes them for a screen reader. */
export interface FocusStop {
  role: string
  name: string
}

async function focusedNode (cdp: CDPSession): Promise<FocusStop> {
  // Focus on <body> means nothing in the page has it: report the document itself (RootWebArea, named by its title).
  const { result } = await cdp.send('Runtime.evaluate', { expression: 'document.activeElement === document.body || document.activeElement === null ? document : document.activeElement' })
  if (result.objectId === undefined) throw new Error('tabThrough: no focused node')
  const { nodes } = await cdp.send('Accessibility.getPartialAXTree', { objectId: result.objectId, fetchRelatives: false })
  const node = nodes[0]
  return { role: String(node?.role?.value ?? ''), name: String(node?.name?.value ?? '') }
}

/** Presses Tab `count` times and returns where focus lands after each press. */
export async function tabThrough (page: Page, count: number): Promise<FocusStop[]> {
  const cdp = await page.context().newCDPSession(page)
  try {
    const stops: FocusStop[] = []
    for (let i = 0; i < count; i++) {
      await page.keyboard.press('Tab')
      stops.push(await focusedNode(cdp))
    }
    return stops
  } finally {
    await cdp.detach()
  }
}

/** Whether the document is wider than the viewport, so a person would scroll sideways. */
export async function hasHorizontalOverflow (page: Page): Promise<boolean> {
  return await page.evaluate<boolean>('(root => root.scrollWidth > root.clientWidth)(document.scrollingElement)')
}

const screenshotDir = fileURLToPath(new URL('../../docs/console/', import.meta.url))

export interface ScreenshotOptions {
  /** The whole page rather than the viewport. */
  fullPage?: boolean
  /** Default: only when PAYNOTIFY_SCREENSHOTS=1, so a test run does not rewrite the committed images. */
  enabled?: boolean
  /** Default: docs/console/, where the README's images live. */
  dir?: string
}

/**
 * Saves the page as `<dir>/<name>.png` at the context's viewport size when
 * screenshots are enabled, and returns the file's path (undefined when not).
 * Regenerate the README's images with
 * `PAYNOTIFY_SCREENSHOTS=1 npx tap test/browser/*.test.ts`.
 */
export async function screenshot (page: Page, name: string, options: ScreenshotOptions = {}): Promise<string | undefined> {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) throw new Error(`screenshot: ${JSON.stringify(name)} is not a kebab-case file name`)
  if (!(options.enabled ?? process.env.PAYNOTIFY_SCREENSHOTS === '1')) return undefined
  const dir = options.dir ?? screenshotDir
  mkdirSync(dir, { recursive: true })
  const path = join(dir, `${name}.png`)
  await page.screenshot({ path, fullPage: options.fullPage ?? false, animations: 'disabled', caret: 'hide' })
  return path
}
