import { TextDecoder } from 'node:util'
import { MalformedError } from '../errors.js'
import { checkFormParamCount } from './params.js'

/**
 * Form bodies whose charset is named inside the body (Alipay's `charset`):
 * values stay bytes until the charset is known, and signatures cover those
 * percent-decoded bytes, whatever the charset.
 */

const hexValue = (byte: number): number => {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x37
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x57
  return -1
}

/** Percent-decodes one form component to bytes (`+` is a space); a bad escape is an error. */
export function percentDecodeBytes (raw: Buffer): Buffer {
  const out = Buffer.allocUnsafe(raw.length)
  let length = 0
  for (let i = 0; i < raw.length; i++) {
    const byte = raw[i]!
    if (byte === 0x2b) {
      out[length++] = 0x20
    } else if (byte === 0x25) {
      const high = i + 2 < raw.length ? hexValue(raw[i + 1]!) : -1
      const low = high === -1 ? -1 : hexValue(raw[i + 2]!)
      if (low === -1) throw new MalformedError('has invalid percent-encoding', 'body')
      out[length++] = high * 16 + low
      i += 2
    } else {
      out[length++] = byte
    }
  }
  return out.subarray(0, length)
}

const keyPattern = /^[\x21-\x7e]{1,64}$/

/**
 * Parses application/x-www-form-urlencoded bytes into names and undecoded
 * value bytes. More than maxFormParams pieces is an error before any is
 * decoded; names must be printable ASCII; a repeated name is an error (the
 * signed value and the used value could differ). An empty value is the same
 * as no parameter (signatures leave empty values out), so the map holds only
 * non-empty values.
 */
export function parseFormBytes (body: Buffer): Map<string, Buffer> {
  checkFormParamCount(body)
  const fields = new Map<string, Buffer>()
  let empties = false
  let start = 0
  while (start <= body.length) {
    let end = body.indexOf(0x26, start)
    if (end === -1) end = body.length
    const pair = body.subarray(start, end)
    start = end + 1
    if (pair.length === 0) continue
    const eq = pair.indexOf(0x3d)
    const key = percentDecodeBytes(eq === -1 ? pair : pair.subarray(0, eq)).toString('latin1')
    if (!keyPattern.test(key)) throw new MalformedError('has a field name that is not printable ASCII', 'body')
    if (fields.has(key)) throw new MalformedError('is repeated', key)
    const value = eq === -1 ? Buffer.alloc(0) : percentDecodeBytes(pair.subarray(eq + 1))
    fields.set(key, value)
    if (value.length === 0) empties = true
  }
  if (empties) for (const [key, value] of fields) if (value.length === 0) fields.delete(key)
  return fields
}

// Bytes a form value may carry as they are (what Java's URLEncoder and PHP's urlencode leave alone).
const unreserved = (byte: number): boolean =>
  (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) ||
  byte === 0x2d || byte === 0x2e || byte === 0x5f || byte === 0x2a

/** Percent-encodes one form component's bytes, a space as `+`: the inverse of percentDecodeBytes. */
export function percentEncodeBytes (value: Buffer): string {
  let out = ''
  for (const byte of value) {
    if (unreserved(byte)) out += String.fromCharCode(byte)
    else if (byte === 0x20) out += '+'
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

/** Encodes names and value bytes as a form body, in the map's order: the inverse of parseFormBytes. */
export function encodeFormBytes (fields: ReadonlyMap<string, Buffer>): Buffer {
  const pairs: string[] = []
  for (const [name, value] of fields) pairs.push(`${percentEncodeBytes(Buffer.from(name, 'latin1'))}=${percentEncodeBytes(value)}`)
  return Buffer.from(pairs.join('&'), 'latin1')
}

// The charsets Alipay documents for `charset` (utf-8, gbk, gb2312), plus gb18030, GBK's superset.
const charsets: Record<string, string> = {
  'utf-8': 'utf-8',
  utf8: 'utf-8',
  gbk: 'gbk',
  gb2312: 'gbk',
  gb18030: 'gb18030'
}

/** The TextDecoder label for a charset name, or a MalformedError naming the field. */
export function charsetLabel (name: string, field = 'charset'): string {
  const label = Object.hasOwn(charsets, name.toLowerCase()) ? charsets[name.toLowerCase()] : undefined
  if (label === undefined) throw new MalformedError('must be one of utf-8, gbk, gb2312, gb18030', field)
  return label
}

const decoders = new Map<string, TextDecoder>()

/** Decodes bytes in a charset label from charsetLabel, refusing invalid sequences rather than replacing them. */
export function decodeCharset (bytes: Buffer, label: string, field: string): string {
  let decoder = decoders.get(label)
  if (decoder === undefined) {
    // ignoreBOM keeps a leading U+FEFF in the value: stripping it would make the value used differ from the bytes signed.
    decoder = new TextDecoder(label, { fatal: true, ignoreBOM: true })
    decoders.set(label, decoder)
  }
  try {
    return decoder.decode(bytes)
  } catch {
    throw new MalformedError(`is not valid ${label}`, field)
  }
}
