import type { onRequestHookHandler } from 'fastify'
import { AppError } from '../errors.js'
import { safeEqual } from '../gateways/signing.js'

/**
 * A hook that lets a request through only with `Authorization: Bearer <token>`,
 * compared in constant time. Admin and merchant routes each get their own
 * token, so one is never accepted for the other; the feed takes either of
 * two (every one is compared, so timing does not tell which matched).
 */
export function requireBearer (accepted: string | readonly string[], realm: string): onRequestHookHandler {
  const tokens: readonly string[] = Array.isArray(accepted) ? accepted : [accepted as string]
  return async (request, reply) => {
    const header = request.headers.authorization
    const match = header === undefined ? null : /^Bearer ([^\s]+)$/.exec(header)
    const matches = match === null ? [] : tokens.map(token => safeEqual(match[1]!, token))
    if (!matches.includes(true)) {
      reply.header('www-authenticate', `Bearer realm="${realm}"`)
      throw new AppError(401, 'unauthorized', `${realm} token required: Authorization: Bearer <token>`)
    }
  }
}
