import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { sessionCookie } from '../../src/console/plugin.js'
import { testSecrets } from '../helpers.js'

/** The session cookie a sign-in answer sets. */
export function consoleCookie (res: LightMyRequestResponse): string {
  const cookie = res.cookies.find(c => c.name === sessionCookie)
  if (cookie === undefined) throw new Error(`no ${sessionCookie} cookie in the answer (${res.statusCode})`)
  return cookie.value
}

/** Signs in with the admin token; the session cookie's value. */
export async function signIn (app: FastifyInstance): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/console/sign-in', payload: { token: testSecrets.adminToken } })
  return consoleCookie(res)
}

/** A signed-in GET: the page's HTML. */
export async function getPage (app: FastifyInstance, cookie: string, url: string): Promise<LightMyRequestResponse> {
  return await app.inject({ method: 'GET', url, cookies: { [sessionCookie]: cookie } })
}

/** The CSRF token the session's pages carry (from the sign-out form of the overview). */
export async function csrfOf (app: FastifyInstance, cookie: string): Promise<string> {
  const page = await getPage(app, cookie, '/console/')
  const match = /name="_csrf" value="([^"]+)"/.exec(page.body)
  if (match === null) throw new Error('no CSRF token on the overview')
  return match[1]!
}

/** A signed-in form POST with the session's CSRF token. */
export async function postForm (app: FastifyInstance, cookie: string, url: string, fields: Record<string, string>): Promise<LightMyRequestResponse> {
  const csrf = await csrfOf(app, cookie)
  return await app.inject({ method: 'POST', url, cookies: { [sessionCookie]: cookie }, payload: { ...fields, _csrf: csrf } })
}
