import type { onRequestHookHandler } from 'fastify'
import { AppError } from '../errors.js'
import { safeEqual } from '../gateways/signing.js'

/**
 * A hook that lets a request through only with `Authorization: Bearer <token>`,
 * compared in constant time. Admin and merchant routes each get their own
 * token, so one is never accepted for the other.
 */
export function requireBearer (token: string, realm: string): onRequestHookHandler {
  return async (request, reply) => {
    const header = request.headers.authorization
    const match = header === undefined ? null : /^Bearer ([^\s]+)$/.exec(header)
    if (match === null || !safeEqual(match[1]!, token)) {
      reply.header('www-authenticate', `Bearer realm="${realm}"`)
      throw new AppError(401, 'unauthorized', `${realm} token required: Authorization: Bearer <token>`)
    }
  }
}
