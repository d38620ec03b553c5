import type { FastifyError } from 'fastify'
import { AppError } from '../errors.js'

/**
 * Maps anything thrown in a request to an AppError with a stable code:
 * our own errors pass through, Fastify's client errors keep their status,
 * and everything else becomes a 500 whose details stay in the log.
 */
export function toAppError (error: unknown): AppError {
  if (error instanceof AppError) return error
  const e = error as FastifyError
  if (e.validation !== undefined) return new AppError(400, 'malformed', `${e.validationContext ?? 'request'}${e.message.startsWith('/') ? '' : ' '}${e.message}`)
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError(413, 'body_too_large', 'request body is over the size limit')
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError(e.statusCode ?? 415, e.statusCode === 400 ? 'malformed' : 'unsupported_media_type', e.message)
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError(400, 'malformed', 'body: is empty')
    default:
      if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
        return new AppError(e.statusCode, 'bad_request', e.message)
      }
      return new AppError(500, 'internal', 'internal error', { cause: error })
  }
}
