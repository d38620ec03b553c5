import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import cookie from '@fastify/cookie'
import formbody from '@fastify/formbody'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { html } from 'ghtml'
import { AppError } from '../errors.js'
import { safeEqual } from '../gateways/signing.js'
import { toAppError } from '../http/errors.js'
import { sendPage, sessionOf, type ConsoleContext } from './context.js'
import { notice } from './layout.js'
import { ConsoleSessions, SignInLimiter } from './session.js'
import { eventsView } from './views/events.js'
import { orderView } from './views/order.js'
import { ordersView } from './views/orders.js'
import { outboundView } from './views/outbound.js'
import { overviewView } from './views/overview.js'
import { refusalsView } from './views/refusals.js'
import { reviewView } from './views/review.js'

export interface ConsolePluginOptions extends ConsoleContext {
  adminToken: string
  /** How long a sign-in lasts (default 12 h). */
  sessionMaxAgeMs?: number
  /** Failed sign-ins an address may make per minute before 429 (default 10). */
  signInLimit?: number
}

export const sessionCookie = 'paynotify_console'

/**
 * The console's own policy: only its own files, no inline script or style,
 * never framed, forms post only to itself.
 */
export const consoleCsp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

interface Asset { body: Buffer, type: string, etag: string }

const assetTypes: Record<string, string> = { '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8' }

/** console-assets/ beside src/ and dist/ (the package ships it): read once, served from memory. */
function loadAssets (): Map<string, Asset> {
  const dir = new URL('../../console-assets/', import.meta.url)
  const assets = new Map<string, Asset>()
  for (const name of readdirSync(dir)) {
    const type = assetTypes[name.slice(name.lastIndexOf('.'))]
    if (type === undefined) continue
    const body = readFileSync(new URL(name, dir))
    assets.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` })
  }
  return assets
}

/** A console path to return to after signing in (no dot segment: a browser would resolve it out of /console/); anything else is the overview. */
function returnPath (next: unknown): string {
  const ok = typeof next === 'string' && /^\/console\/[A-Za-z0-9/_.~%?&=:-]{0,500}$/.test(next) && !next.startsWith('/console//') && !/\/(\.|%2e)/i.test(next)
  return ok ? next : '/console/'
}

function isPublic (request: FastifyRequest): boolean {
  const path = request.url.split('?')[0]!
  return path === '/console/sign-in' || path.startsWith('/console/assets/')
}

/**
 * /console/: server-rendered pages for admins, signed in with the admin
 * token (a session cookie, HttpOnly and SameSite=Strict), every POST
 * carrying the session's CSRF token, under a strict Content-Security-Policy.
 */
export const consolePlugin: FastifyPluginAsync<ConsolePluginOptions> = async (app, options) => {
  const sessions = new ConsoleSessions(options.adminToken, { maxAgeMs: options.sessionMaxAgeMs ?? 12 * 3600_000 })
  const limiter = new SignInLimiter({ limit: options.signInLimit ?? 10, windowMs: 60_000 })
  const assets = loadAssets()

  await app.register(cookie)
  await app.register(formbody, { bodyLimit: 8 * 1024 })
  app.decorateRequest('consoleSession', null)

  app.addHook('onRequest', async (request, reply) => {
    reply.header('content-security-policy', consoleCsp)
    reply.header('x-content-type-options', 'nosniff')
    reply.header('x-frame-options', 'DENY')
    reply.header('referrer-policy', 'no-referrer')
    reply.header('cache-control', 'no-store')
    if (isPublic(request)) return
    const session = sessions.verify(request.cookies[sessionCookie])
    if (session === undefined) {
      if (request.method === 'GET' || request.method === 'HEAD') {
        return await reply.redirect(`/console/sign-in?next=${encodeURIComponent(returnPath(request.url))}`, 303)
      }
      return await sendPage(reply.code(401), { title: 'Signed out', body: html`!${notice('error', 'Your session has ended: sign in again.')}<p><a href="/console/sign-in">Sign in</a></p>` })
    }
    request.consoleSession = session
  })

  // Every state-changing request carries its session's CSRF token.
  app.addHook('preHandler', async (request, reply) => {
    if (request.method === 'GET' || request.method === 'HEAD' || request.consoleSession === null) return
    const token = (request.body as Record<string, unknown> | undefined)?._csrf
    if (!sessions.checkCsrf(request.consoleSession, token)) {
      return await sendPage(reply.code(403), { title: 'Refused', session: request.consoleSession, body: notice('error', 'This form has expired or did not come from the console: reload the page and try again.') })
    }
  })

  app.setErrorHandler((error, request, reply) => {
    const appError = toAppError(error)
    const status = appError.statusCode
    if (status >= 500) request.log.error({ err: error }, 'console request failed')
    const message = status >= 500 ? 'Something went wrong on the server; the log has the details.' : appError.message
    return sendPage(reply.code(status), { title: status === 404 ? 'Not found' : 'Error', session: request.consoleSession ?? undefined, body: notice('error', message) })
  })

  app.get('/console', { schema: { hide: true } }, async (_request, reply) => await reply.redirect('/console/', 302))

  app.get<{ Params: { name: string } }>('/console/assets/:name', { schema: { hide: true } }, async (request, reply) => {
    const asset = assets.get(request.params.name)
    if (asset === undefined) return await reply.code(404).type('text/plain').send('not found')
    reply.header('cache-control', 'no-cache').header('etag', asset.etag)
    if (request.headers['if-none-match'] === asset.etag) return await reply.code(304).send()
    return await reply.type(asset.type).send(asset.body)
  })

  const signInForm = (next: string, message?: string): string => html`
!${message === undefined ? '' : notice('error', message)}
<form method="post" action="/console/sign-in" class="sign-in">
<input type="hidden" name="next" value="${next}">
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required maxlength="512" autofocus>
<button type="submit">Sign in</button>
</form>`

  app.get<{ Querystring: { next?: string } }>('/console/sign-in', { schema: { hide: true } }, async (request, reply) => {
    return sendPage(reply, { title: 'Sign in', body: signInForm(returnPath(request.query.next)) })
  })

  app.post<{ Body: { token?: unknown, next?: unknown } | undefined }>('/console/sign-in', { schema: { hide: true } }, async (request, reply) => {
    const next = returnPath(request.body?.next)
    const wait = limiter.retryAfter(request.ip)
    if (wait > 0) {
      reply.header('retry-after', String(wait))
      return sendPage(reply.code(429), { title: 'Sign in', body: signInForm(next, `Too many failed sign-ins from this address: try again in ${wait} s.`) })
    }
    const token = request.body?.token
    if (typeof token !== 'string' || token.length > 512 || !safeEqual(token, options.adminToken)) {
      limiter.failed(request.ip)
      request.log.warn({ address: request.ip }, 'console sign-in refused')
      return sendPage(reply.code(401), { title: 'Sign in', body: signInForm(next, 'That is not the admin token.') })
    }
    const { cookie: value } = sessions.issue()
    reply.setCookie(sessionCookie, value, {
      path: '/console',
      httpOnly: true,
      sameSite: 'strict',
      secure: isHttps(request),
      maxAge: Math.floor(sessions.maxAgeMs / 1000)
    })
    return await reply.redirect(next, 303)
  })

  app.post('/console/sign-out', { schema: { hide: true } }, async (request, reply) => {
    sessions.revoke(sessionOf(request))
    clearSession(request, reply)
    return await reply.redirect('/console/sign-in', 303)
  })

  // Any other path under /console/ is still the console's: its sign-in check, headers and 404 page (not the API's JSON).
  app.all('/console/*', { schema: { hide: true } }, async () => {
    throw new AppError(404, 'not_found', 'There is no such page in the console.')
  })

  for (const view of [overviewView, ordersView, orderView, reviewView, eventsView, outboundView, refusalsView]) {
    await app.register(view, options)
  }
}

function isHttps (request: FastifyRequest): boolean {
  return request.protocol === 'https' || request.headers['x-forwarded-proto'] === 'https'
}

function clearSession (request: FastifyRequest, reply: FastifyReply): void {
  reply.clearCookie(sessionCookie, { path: '/console', httpOnly: true, sameSite: 'strict', secure: isHttps(request) })
}
