import { MalformedError, SignatureError } from '../errors.js'
import { decodeUtf8 } from './params.js'
import { parseStrictJson } from './strict-json.js'
import type { RawCallback } from './types.js'

/** A parsed JSON object whose fields are still unchecked. */
export type JsonObject = Record<string, unknown>

export function isJsonObject (value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

export function asJsonObject (value: unknown, field: string): JsonObject {
  if (!isJsonObject(value)) throw new MalformedError('must be a JSON object', field)
  return value
}

/** Strict UTF-8, then JSON without repeated keys, then an object: each failure is a 400 naming `field`. */
export function parseJsonObject (bytes: Buffer, field = 'body'): JsonObject {
  return asJsonObject(parseStrictJson(decodeUtf8(bytes, field), field), field)
}

/**
 * A signature header that must be present exactly once. Node joins a
 * repeated header with ", " (or keeps an array): either is refused rather
 * than guessed at.
 */
export function singleHeader (callback: RawCallback, name: string): string {
  const value = callback.headers[name]
  if (value === undefined || value === '') throw new SignatureError(`${name} header is missing`)
  if (Array.isArray(value)) throw new SignatureError(`${name} header is repeated`)
  return value
}
