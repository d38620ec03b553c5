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

const excerptLength = 40

/**
 * A short, printable-ASCII excerpt of text someone else chose (a field name
 * from an unsigned body, a URL segment), for an answer or a log line: every
 * character outside space..~ becomes `?`, and past 40 characters the rest is
 * cut to `...`. Refusals of unsigned input then cost a bounded, inert line
 * however large or strange the name sent.
 */
export function excerpt (text: string): string {
  const head = text.length > excerptLength ? text.slice(0, excerptLength) : text
  const printable = head.replace(/[^\x20-\x7e]/g, '?')
  return text.length > excerptLength ? `${printable}...` : printable
}

/**
 * A field of a callback or request is missing or malformed (400). The field
 * name may come from the request itself, so only its excerpt() is kept.
 */
export class MalformedError extends AppError {
  readonly field: string | undefined

  constructor (message: string, field?: string) {
    const name = field === undefined ? undefined : excerpt(field)
    super(400, 'malformed', name === undefined ? message : `${name}: ${message}`)
    this.field = name
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
