import type { IncomingHttpHeaders } from 'node:http'
import { Type, type Static } from '@sinclair/typebox'

/** Header names whose values are never kept: credentials, signatures, tokens, keys (Node gives names in lower case). */
const secretHeader = /auth|cookie|credential|key|password|secret|session|sign|token/
export const redacted = '[redacted]'

export const maxBodyBytes = 1024
export const maxHeaders = 64
export const maxHeaderValueLength = 256
const maxHeaderNameLength = 64
const maxMessageLength = 256
const maxAddressLength = 64
const maxGatewayLength = 32

/** Past this many distinct gateway names in one minute of the summary, the rest count as `null` (names can come from the URL). */
const maxGatewaysPerMinute = 32
const minuteMs = 60_000
/** The summary's reach: this many whole minutes before the current one, and the current one. */
export const summaryMinutes = 60

export const RefusalSchema = Type.Object({
  id: Type.Integer({ description: 'increases by one with every refusal recorded (the cursor)' }),
  at: Type.String({ description: 'ISO-8601 UTC, when it was refused' }),
  gateway: Type.Union([Type.String(), Type.Null()], { description: 'the configured gateway, or the name the URL gave when it could be one (an unknown gateway), else null' }),
  statusCode: Type.Integer(),
  code: Type.String({ description: 'the reason: bad_signature, malformed, body_too_large, unsupported_media_type, unknown_gateway, replays_not_accepted, store_unavailable, …' }),
  message: Type.String(),
  address: Type.String({ description: 'the client address (the socket\'s peer)' }),
  headers: Type.Record(Type.String(), Type.String(), {
    description: `request headers in the order sent, at most ${maxHeaders}, each value cut to ${maxHeaderValueLength} characters; ` +
      `authorization, cookies, and every header whose name holds auth, cookie, credential, key, password, secret, session, sign or token read "${redacted}"`
  }),
  headersTruncated: Type.Boolean({ description: `some headers were left out (over ${maxHeaders}) or cut` }),
  body: Type.String({ description: `the first ${maxBodyBytes} bytes of the body decoded as UTF-8, every invalid byte as U+FFFD; empty when the body was not read` }),
  bodyTruncated: Type.Boolean({ description: `the body is longer than the ${maxBodyBytes} bytes kept` }),
  bodySize: Type.Integer({ description: 'bytes of body received' }),
  bodyRead: Type.Boolean({ description: 'false: refused before its body was read (413, a content type no gateway takes, an unknown gateway); content-length says what was sent' })
})
/** One refused callback as kept and served: bounded, secrets redacted, the body's head as text. */
export type Refusal = Static<typeof RefusalSchema>

export const RefusalSummarySchema = Type.Object({
  since: Type.String({ description: 'ISO-8601 UTC: the start of the first minute counted' }),
  total: Type.Integer(),
  byCode: Type.Array(Type.Object({ code: Type.String(), count: Type.Integer() })),
  byGateway: Type.Array(Type.Object({ gateway: Type.Union([Type.String(), Type.Null()]), count: Type.Integer() }))
})
/** Refusals counted by reason and by gateway since a time, most frequent first. */
export type RefusalSummary = Static<typeof RefusalSummarySchema>

/** What the notify route knows of a callback it refused. */
export interface RefusedCallback {
  at: Date
  gateway: string | null
  statusCode: number
  code: string
  message: string
  address: string
  headers: IncomingHttpHeaders
  /** The raw body, or undefined when it was refused before the body was read. */
  body: Buffer | undefined
}

export interface RefusalQuery {
  /** Only refusals older than this id (the nextCursor of the page before). */
  before?: number | undefined
  /** Only refusals newer than this id (what arrived since the last look). */
  after?: number | undefined
  limit?: number | undefined
  gateway?: string | undefined
  code?: string | undefined
}

export interface RefusalStoreOptions {
  /** Most refusals kept (default 500). */
  maxEntries?: number
  /** Most bytes kept, as counted by refusalBytes (default 1 MiB). The newest refusal is always kept. */
  maxBytes?: number
  /** Epoch milliseconds: where the summary's window ends. */
  now?: () => number
}

export interface RefusalStoreStats {
  entries: number
  bytes: number
  maxEntries: number
  maxBytes: number
  /** Refusals recorded since the start, kept or not. */
  recorded: number
  /** Refusals dropped to stay within the bounds. */
  evicted: number
}

interface MinuteCounts {
  minute: number
  total: number
  byCode: Map<string, number>
  byGateway: Map<string | null, number>
}

/**
 * The last refused callbacks, in memory, apart from the event log (nothing
 * unauthenticated enters the log): bounded in count and in bytes, the oldest
 * dropped first. Each refusal is cut to size when recorded (the head of its
 * body, 64 headers of 256 characters, secrets redacted), so recording costs
 * the same small, bounded work whatever was sent, and never throws. Counts by
 * reason and gateway are kept per minute for the last hour beside it, so a
 * storm that evicts the entries still shows in the summary.
 */
export class RefusalStore {
  readonly maxEntries: number
  readonly maxBytes: number
  readonly #now: () => number
  // A queue: entries[head..] are kept, oldest first; ids are consecutive, so an id finds its index.
  #entries: Refusal[] = []
  #sizes: number[] = []
  #head = 0
  #bytes = 0
  #nextId = 1
  #evicted = 0
  readonly #minutes: Array<MinuteCounts | undefined> = new Array(summaryMinutes + 1)

  constructor (options: RefusalStoreOptions = {}) {
    this.maxEntries = options.maxEntries ?? 500
    this.maxBytes = options.maxBytes ?? 1024 * 1024
    this.#now = options.now ?? Date.now
    if (!(Number.isSafeInteger(this.maxEntries) && this.maxEntries >= 1)) throw new RangeError('maxEntries must be a positive integer')
    if (!(Number.isSafeInteger(this.maxBytes) && this.maxBytes >= 1)) throw new RangeError('maxBytes must be a positive integer')
  }

  /** Keeps one refusal, dropping the oldest beyond the bounds. Never throws: a refusal is answered whatever becomes of its record. */
  record (refused: RefusedCallback): void {
    try {
      const refusal = toRefusal(this.#nextId, refused)
      this.#nextId++
      const size = refusalBytes(refusal)
      this.#entries.push(refusal)
      this.#sizes.push(size)
      this.#bytes += size
      this.#count(refused.at.getTime(), refusal)
      while (this.#entries.length - this.#head > 1 && (this.#entries.length - this.#head > this.maxEntries || this.#bytes > this.maxBytes)) {
        this.#bytes -= this.#sizes[this.#head]!
        this.#head++
        this.#evicted++
      }
      // Drop the evicted slots once they are half the array: O(1) amortized per record.
      if (this.#head > 64 && this.#head * 2 > this.#entries.length) {
        this.#entries = this.#entries.slice(this.#head)
        this.#sizes = this.#sizes.slice(this.#head)
        this.#head = 0
      }
    } catch {}
  }

  /**
   * The kept refusals, newest first, that match `gateway` and `code`: at most
   * `limit` (default 50), older than `before`, newer than `after`. nextCursor
   * is the `before` of the next page, null on the last.
   */
  list (query: RefusalQuery = {}): { refusals: Refusal[], nextCursor: number | null } {
    const limit = query.limit ?? 50
    const firstId = this.#nextId - (this.#entries.length - this.#head)
    const from = Math.min(this.#nextId, query.before ?? this.#nextId) - 1
    const to = Math.max(firstId, (query.after ?? 0) + 1)
    const refusals: Refusal[] = []
    for (let id = from; id >= to; id--) {
      const refusal = this.#entries[this.#head + id - firstId]!
      if (query.gateway !== undefined && refusal.gateway !== query.gateway) continue
      if (query.code !== undefined && refusal.code !== query.code) continue
      if (refusals.length === limit) return { refusals, nextCursor: refusals[limit - 1]!.id }
      refusals.push(refusal)
    }
    return { refusals, nextCursor: null }
  }

  /**
   * Refusals by reason and by gateway from the minute `sinceMs` falls in up to
   * now, evicted ones included, counted per minute over the last
   * summaryMinutes (60) minutes: an earlier `sinceMs` counts from there.
   */
  summary (sinceMs: number): RefusalSummary {
    const nowMinute = Math.floor(this.#now() / minuteMs)
    const sinceMinute = Math.max(Math.floor(sinceMs / minuteMs), nowMinute - summaryMinutes)
    const byCode = new Map<string, number>()
    const byGateway = new Map<string | null, number>()
    let total = 0
    for (const counts of this.#minutes) {
      if (counts === undefined || counts.minute < sinceMinute || counts.minute > nowMinute) continue
      total += counts.total
      for (const [code, n] of counts.byCode) byCode.set(code, (byCode.get(code) ?? 0) + n)
      for (const [gateway, n] of counts.byGateway) byGateway.set(gateway, (byGateway.get(gateway) ?? 0) + n)
    }
    return {
      since: new Date(sinceMinute * minuteMs).toISOString(),
      total,
      byCode: [...byCode].map(([code, count]) => ({ code, count })).sort((a, b) => b.count - a.count || compare(a.code, b.code)),
      byGateway: [...byGateway].map(([gateway, count]) => ({ gateway, count })).sort((a, b) => b.count - a.count || compare(a.gateway ?? '', b.gateway ?? ''))
    }
  }

  stats (): RefusalStoreStats {
    return { entries: this.#entries.length - this.#head, bytes: this.#bytes, maxEntries: this.maxEntries, maxBytes: this.maxBytes, recorded: this.#nextId - 1, evicted: this.#evicted }
  }

  #count (atMs: number, refusal: Refusal): void {
    const minute = Math.floor(atMs / minuteMs)
    if (!Number.isFinite(minute)) return
    const slot = ((minute % this.#minutes.length) + this.#minutes.length) % this.#minutes.length
    let counts = this.#minutes[slot]
    if (counts === undefined || counts.minute !== minute) {
      counts = { minute, total: 0, byCode: new Map(), byGateway: new Map() }
      this.#minutes[slot] = counts
    }
    counts.total++
    counts.byCode.set(refusal.code, (counts.byCode.get(refusal.code) ?? 0) + 1)
    const gateway = counts.byGateway.has(refusal.gateway) || counts.byGateway.size < maxGatewaysPerMinute ? refusal.gateway : null
    counts.byGateway.set(gateway, (counts.byGateway.get(gateway) ?? 0) + 1)
  }
}

function compare (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function cut (text: string, length: number): string {
  return text.length > length ? text.slice(0, length) : text
}

function toRefusal (id: number, refused: RefusedCallback): Refusal {
  const headers: Record<string, string> = {}
  let kept = 0
  let headersTruncated = false
  for (const name in refused.headers) {
    const value = refused.headers[name]
    if (value === undefined) continue
    if (kept === maxHeaders) {
      headersTruncated = true
      break
    }
    const text = typeof value === 'string' ? value : value.join(', ')
    if (name.length > maxHeaderNameLength || text.length > maxHeaderValueLength) headersTruncated = true
    headers[cut(name, maxHeaderNameLength)] = secretHeader.test(name) ? redacted : cut(text, maxHeaderValueLength)
    kept++
  }
  const body = refused.body
  return {
    id,
    at: refused.at.toISOString(),
    gateway: refused.gateway === null ? null : cut(refused.gateway, maxGatewayLength),
    statusCode: refused.statusCode,
    code: refused.code,
    message: cut(refused.message, maxMessageLength),
    address: cut(refused.address, maxAddressLength),
    headers,
    headersTruncated,
    body: body === undefined ? '' : bodyHead(body),
    bodyTruncated: body !== undefined && body.length > maxBodyBytes,
    bodySize: body?.length ?? 0,
    bodyRead: body !== undefined
  }
}

/**
 * The first maxBodyBytes of a body as UTF-8 text, every invalid byte as
 * U+FFFD. A character the cut would split is left out whole, so the text
 * does not end in a replacement character the body does not have.
 */
export function bodyHead (body: Buffer): string {
  if (body.length <= maxBodyBytes) return body.toString('utf8')
  let end = maxBodyBytes
  let lead = end - 1
  while (lead > end - 4 && (body[lead]! & 0xc0) === 0x80) lead--
  const byte = body[lead]!
  // The length a valid lead byte announces; anything else decodes as one replacement character.
  const length = byte >= 0xc2 && byte <= 0xdf ? 2 : byte >= 0xe0 && byte <= 0xef ? 3 : byte >= 0xf0 && byte <= 0xf4 ? 4 : 1
  if (lead + length > end) end = lead
  return body.toString('utf8', 0, end)
}

/**
 * What a kept refusal costs in memory, roughly: two bytes per character of
 * each string (V8 keeps some in one) and a fixed overhead per object and per
 * header. What the bytes bound counts.
 */
export function refusalBytes (refusal: Refusal): number {
  let bytes = 160 + 2 * (refusal.at.length + (refusal.gateway?.length ?? 0) + refusal.code.length + refusal.message.length + refusal.address.length + refusal.body.length)
  for (const name in refusal.headers) bytes += 32 + 2 * (name.length + refusal.headers[name]!.length)
  return bytes
}
