import type { FastifyError, FastifySchemaValidationError } from 'fastify'
import { AppError } from '../errors.js'

/**
 * Maps anything thrown in a request to an AppError with a stable code:
 * our own errors pass through, Fastify's client errors keep their status,
 * and everything else becomes a 500 whose details stay in the log.
 */
export function toAppError (error: unknown): AppError {
  if (error instanceof AppError) return error
  const e = error as FastifyError
  if (e.validation !== undefined) return new AppError(400, 'malformed', validationMessage(e.validation, e.validationContext ?? 'request'))
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

/**
 * One clear message naming the field, in the form the domain errors use
 * (`order_id: must match pattern …`). Ajv reports a union of literals as one
 * error per literal; those are folded into "must be one of …".
 */
function validationMessage (errors: FastifySchemaValidationError[], context: string): string {
  const first = errors[0]
  if (first === undefined) return `${context}: is invalid`
  const missing = first.keyword === 'required' ? String(first.params.missingProperty) : undefined
  const path = first.instancePath.replace(/^\//, '').replaceAll('/', '.')
  const field = missing ?? (path === '' ? context : path)
  if (missing !== undefined) return `${field}: is required`
  if (first.keyword === 'additionalProperties') {
    // A misspelt name (?staus=, "currncy") would otherwise be ignored and its default used instead.
    // The name is the client's: shown short and printable only.
    const name = String(first.params.additionalProperty).slice(0, 64).replace(/[^\x20-\x7e]/g, '?')
    return `${name}: unknown ${context === 'querystring' ? 'query parameter' : 'field'}`
  }
  const allowed = errors.filter(error => error.keyword === 'const' && error.instancePath === first.instancePath).map(error => String(error.params.allowedValue))
  if (allowed.length > 0) return `${field}: must be one of ${allowed.join(', ')}`
  return `${field}: ${first.message ?? 'is invalid'}`
}
