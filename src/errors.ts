/**
 * Errors that cross a layer carry the HTTP status they map to and a stable
 * machine-readable code, so the one error handler in app.ts can answer them
 * without knowing where they came from.
 */
export class AppError extends Error {
  readonly statusCode: number
  readonly code: string

  constructor (statusCode: number, code: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
    this.statusCode = statusCode
    this.code = code
  }
}

/** A field of a callback or request is missing or malformed (400). */
export class MalformedError extends AppError {
  readonly field: string | undefined

  constructor (message: string, field?: string) {
    super(400, 'malformed', field === undefined ? message : `${field}: ${message}`)
    this.field = field
  }
}

/** Bad, missing or stale signature (401). Nothing about the secret is in the message. */
export class SignatureError extends AppError {
  constructor (message: string) {
    super(401, 'bad_signature', message)
  }
}

/** The store could not commit; the gateway should retry (503). */
export class StoreUnavailableError extends AppError {
  constructor (message: string, options?: ErrorOptions) {
    super(503, 'store_unavailable', message, options)
  }
}
