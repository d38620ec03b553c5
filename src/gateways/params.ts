import { AppError, MalformedError } from '../errors.js'
import { parseStrictJson } from './strict-json.js'

/**
 * The most parameters a form body may carry. A real callback has a few dozen
 * at most (Alipay's longest notifications about 40); the cap is checked by
 * counting separators before any field is decoded, so an unsigned Alipay body
 * of 8,000 GBK fields costs 15 µs in verify, not 23 ms (measured in a loop;
 * beside live traffic: bench/alipay-flood.js).
 */
export const maxFormParams = 256

function tooManyParams (): AppError {
  return new AppError(413, 'too_many_parameters', `body: has more than ${maxFormParams} parameters`)
}

/** Refuses a form body of more than maxFormParams `&`-separated pieces, empty ones included. */
export function checkFormParamCount (body: string | Buffer): void {
  let separators = 0
  if (typeof body === 'string') {
    for (let i = body.indexOf('&'); i !== -1; i = body.indexOf('&', i + 1)) if (++separators >= maxFormParams) throw tooManyParams()
  } else {
    // The byte, not '&': Buffer#indexOf with a string makes a Buffer of it on every call (175 µs → 15 µs per refused 8,000-field body).
    for (let i = body.indexOf(0x26); i !== -1; i = body.indexOf(0x26, i + 1)) if (++separators >= maxFormParams) throw tooManyParams()
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** Decodes bytes as UTF-8, refusing invalid sequences rather than replacing them. */
export function decodeUtf8 (body: Buffer, field = 'body'): string {
  try {
    return utf8.decode(body)
  } catch {
    throw new MalformedError('is not valid UTF-8', field)
  }
}

/**
 * Parses application/x-www-form-urlencoded text strictly: more than
 * maxFormParams pieces, invalid percent-encoding and repeated keys are errors
 * (a repeated key could make the signed value and the used value differ).
 * An empty value is the same as no parameter (signing strings leave empty
 * values out), so the map holds only non-empty values.
 */
export function parseForm (text: string, decode: (s: string) => string = decodeURIComponent): Map<string, string> {
  checkFormParamCount(text)
  const params = new Map<string, string>()
  let empties = false
  // indexOf rather than split('&') (which runs in V8's runtime and builds an array of pairs).
  // nextEq is the first '=' at or after `start`, kept across pairs without one, so the
  // scan stays linear in the body's length however many pairs it holds.
  let nextEq = text.indexOf('=')
  for (let start = 0; start < text.length;) {
    let end = text.indexOf('&', start)
    if (end === -1) end = text.length
    if (end > start) {
      if (nextEq !== -1 && nextEq < start) nextEq = text.indexOf('=', start)
      const eq = nextEq !== -1 && nextEq < end ? nextEq : end
      let key: string
      let value: string
      try {
        key = decodeFormComponent(text.slice(start, eq), decode)
        value = eq === end ? '' : decodeFormComponent(text.slice(eq + 1, end), decode)
      } catch {
        throw new MalformedError('has invalid percent-encoding', 'body')
      }
      if (params.has(key)) throw new MalformedError('is repeated', key)
      params.set(key, value)
      if (value === '') empties = true
    }
    start = end + 1
  }
  if (empties) for (const [key, value] of params) if (value === '') params.delete(key)
  return params
}

/**
 * One form component, `+` as a space. Only `%` and `+` change anything under
 * URI decoding, and most fields of a callback (ids, amounts, codes, hex
 * signatures) hold neither: those are used as they are, which took parsing a
 * callback's form from ~3 µs to ~1 µs (bench/stub-ab.js).
 */
function decodeFormComponent (raw: string, decode: (s: string) => string): string {
  if (decode === decodeURIComponent && raw.indexOf('%') === -1 && raw.indexOf('+') === -1) return raw
  return decode(raw.replaceAll('+', ' '))
}

/**
 * Parses a flat JSON object whose values are strings or numbers, as the
 * generic gateway posts it. A repeated key is an error; an empty string or
 * null is the same as no parameter, as in a form.
 */
export function parseFlatJson (text: string): Map<string, string> {
  const value = parseStrictJson(text)
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new MalformedError('must be a JSON object', 'body')
  }
  const entries = Object.entries(value)
  if (entries.length > maxFormParams) throw tooManyParams()
  const params = new Map<string, string>()
  for (const [key, v] of entries) {
    if (typeof v === 'string') {
      if (v !== '') params.set(key, v)
    } else if (typeof v === 'number' && Number.isFinite(v)) {
      params.set(key, String(v))
    } else if (v !== null) {
      throw new MalformedError('must be a string or a number', key)
    }
  }
  return params
}

/** Names a signing string can carry: what the gateways use (snake_case), with `.` and `-`. */
const signableName = /^[A-Za-z0-9_.-]{1,64}$/
/** What a separator before another field looks like: `&`, a name, `=`. */
const fieldInValue = /&[A-Za-z0-9_.-]+=/

/**
 * The rule that makes a `k=v&k=v` signing string one-to-one: a name is 1-64
 * characters of A-Z a-z 0-9 _ . - (never `&` or `=`), and a value never holds
 * `&` followed by such characters and `=`. The string then reads back one way
 * only: split at each `&` that is followed by a name and `=`, and each piece
 * at its first `=`. Values may still hold `=`, and `&` in text such as
 * "Tom & Jerry". Anything else would let a value carry a field the signer
 * never sent (`subject=Order%26timestamp%3D…` signs like `subject=Order` and a
 * `timestamp`), so it is refused with a 400 naming the field.
 * `value` is the value's text, or for bytes their latin1 reading (`&`, `=`
 * and the name characters are single ASCII bytes in UTF-8, GBK and GB18030).
 */
export function assertSignable (name: string, value: string): void {
  if (!signableName.test(name)) throw new MalformedError('is not a name a signature can cover (1-64 of A-Z a-z 0-9 _ . -)', name)
  if (value.includes('&') && fieldInValue.test(value)) {
    throw new MalformedError('must not contain & followed by a name and = (it would read as another field of the signed string)', name)
  }
}

/**
 * The signing string of the generic and Alipay schemes: parameters sorted by
 * name, empty values and the excluded names left out, `k=v` joined by `&`.
 * A parameter assertSignable refuses throws a MalformedError instead, so no
 * two parameter sets this returns a string for share it.
 * Built by plain concatenation over the sorted names: the entry arrays,
 * filter/map closures and join of the obvious version were half its cost.
 */
export function signingString (params: Map<string, string>, exclude: readonly string[] = ['sign', 'sign_type']): string {
  const keys: string[] = []
  for (const [key, value] of params) {
    if (value === '' || exclude.includes(key)) continue
    assertSignable(key, value)
    keys.push(key)
  }
  // By UTF-16 code units (what `<` compares); names in a Map are distinct.
  keys.sort()
  let signed = ''
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!
    if (i > 0) signed += '&'
    signed += key
    signed += '='
    signed += params.get(key)!
  }
  return signed
}

const idPattern = /^[\x21-\x7e]{1,128}$/

/** A printable ASCII identifier (transaction, refund, notify ids), or null when absent or empty. */
export function optionalId (params: Map<string, string>, field: string): string | null {
  const value = params.get(field)
  if (value === undefined || value === '') return null
  if (!idPattern.test(value)) throw new MalformedError('must be 1-128 printable ASCII characters', field)
  return value
}
