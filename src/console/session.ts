import { hkdfSync, randomBytes } from 'node:crypto'
import { hmacSha256, safeEqual } from '../gateways/signing.js'

/** A signed-in admin's console session: what its cookie proves. */
export interface ConsoleSession {
  id: string
  /** Epoch milliseconds after which the cookie is refused. */
  expiresAt: number
  /** The token every state-changing request of this session carries (a form field). */
  csrf: string
}

// A revoked session is remembered until it expires; past this many the oldest revocations go first.
const maxRevoked = 10_000

/**
 * Console sessions without a server-side store: the cookie is
 * `<id>.<expiry>.<mac>`, the MAC an HMAC under a key derived from the admin
 * token, so changing the token ends every session, and the CSRF token is an
 * HMAC of the session id under the same key (a page's forms carry it; a
 * request from another site has neither the cookie nor the token). Sign-out
 * revokes the id in this process until it would have expired.
 */
export class ConsoleSessions {
  readonly maxAgeMs: number
  readonly #key: Buffer
  readonly #now: () => number
  readonly #revoked = new Map<string, number>()

  constructor (adminToken: string, options: { maxAgeMs: number, now?: () => number }) {
    this.#key = Buffer.from(hkdfSync('sha256', adminToken, 'paynotify console', 'session cookie v1', 32))
    this.maxAgeMs = options.maxAgeMs
    this.#now = options.now ?? Date.now
  }

  /** A new session and the cookie value that carries it. */
  issue (): { session: ConsoleSession, cookie: string } {
    const id = randomBytes(18).toString('base64url')
    const expiresAt = this.#now() + this.maxAgeMs
    return { session: this.#session(id, expiresAt), cookie: `${id}.${expiresAt}.${this.#mac(`${id}.${expiresAt}`)}` }
  }

  /** The session a cookie value proves, or undefined (forged, expired, revoked or malformed). */
  verify (cookie: string | undefined): ConsoleSession | undefined {
    if (cookie === undefined || cookie.length > 200) return undefined
    const match = /^([A-Za-z0-9_-]{24})\.(\d{1,15})\.([A-Za-z0-9_-]{43})$/.exec(cookie)
    if (match === null) return undefined
    const [, id, expiry, mac] = match as unknown as [string, string, string, string]
    if (!safeEqual(mac, this.#mac(`${id}.${expiry}`))) return undefined
    const expiresAt = Number(expiry)
    if (expiresAt <= this.#now() || this.#revoked.has(id)) return undefined
    return this.#session(id, expiresAt)
  }

  /** Ends a session: its cookie is refused from now on, in this process. */
  revoke (session: ConsoleSession): void {
    const now = this.#now()
    for (const [id, expiresAt] of this.#revoked) if (expiresAt <= now) this.#revoked.delete(id)
    if (this.#revoked.size >= maxRevoked) this.#revoked.delete(this.#revoked.keys().next().value as string)
    this.#revoked.set(session.id, session.expiresAt)
  }

  /** Whether a submitted CSRF token is the session's (constant time). */
  checkCsrf (session: ConsoleSession, token: unknown): boolean {
    return typeof token === 'string' && token.length < 100 && safeEqual(token, session.csrf)
  }

  #session (id: string, expiresAt: number): ConsoleSession {
    return { id, expiresAt, csrf: this.#mac(`csrf.${id}`) }
  }

  #mac (text: string): string {
    return hmacSha256(this.#key, text).toString('base64url')
  }
}

/**
 * Failed sign-ins per address in a fixed window: past `limit` the address
 * is refused (429) until its window ends. Bounded: past `maxAddresses`
 * tracked at once the oldest window is dropped.
 */
export class SignInLimiter {
  readonly #failures = new Map<string, { count: number, resetAt: number }>()
  readonly #limit: number
  readonly #windowMs: number
  readonly #now: () => number
  readonly #maxAddresses: number

  constructor (options: { limit: number, windowMs: number, now?: () => number, maxAddresses?: number }) {
    this.#limit = options.limit
    this.#windowMs = options.windowMs
    this.#now = options.now ?? Date.now
    this.#maxAddresses = options.maxAddresses ?? 10_000
  }

  /** Seconds until this address may try again, or 0 when it may now. */
  retryAfter (address: string): number {
    const entry = this.#failures.get(address)
    if (entry === undefined) return 0
    const now = this.#now()
    if (entry.resetAt <= now) {
      this.#failures.delete(address)
      return 0
    }
    return entry.count >= this.#limit ? Math.ceil((entry.resetAt - now) / 1000) : 0
  }

  failed (address: string): void {
    const now = this.#now()
    const entry = this.#failures.get(address)
    if (entry !== undefined && entry.resetAt > now) {
      entry.count++
      return
    }
    this.#failures.delete(address)
    if (this.#failures.size >= this.#maxAddresses) this.#failures.delete(this.#failures.keys().next().value as string)
    this.#failures.set(address, { count: 1, resetAt: now + this.#windowMs })
  }
}
