import type { onRequestHookHandler } from 'fastify'
import { AppError } from '../errors.js'
import { safeEqual } from '../gateways/signing.js'

/**
 * A hook that lets a request through only with `Authorization: Bearer <token>`,
 * compared in constant time. Admin and merchant routes each get their own
 * token, so one is never accepted for the other; the feed takes either of
 * two (every one is compared, so timing does not tell which matched).
 */
export function requireBearer (token: string | readonly string[], realm: string): onRequestHookHandler {
  const tokens = typeof token === 'string' ? [token] : token
  return async (request, reply) => {
    const header = request.headers.authorization
    const match = header === undefined ? null : /^Bearer ([^\s]+)$/.exec(header)
    const matches = match === null ? [] : tokens.map(candidate => safeEqual(match[1]!, candidate))
    if (!matches.includes(true)) {
      reply.header('www-authenticate', `Bearer realm="${realm}"`)
      throw new AppError(401, 'unauthorized', `${realm} token required: Authorization: Bearer <token>`)
    }
  }
}
