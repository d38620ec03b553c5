import type SQLite from 'better-sqlite3'
import { standardSignature } from '../gateways/standard-webhooks.js'
import { nextRetryDelay, parseRetryAfter } from './schedule.js'
import type { SecretSealer } from './sealed-secrets.js'
import { Sender, type SendResult } from './sender.js'

export interface DispatcherOptions {
  /** A connection of its own is best (server.ts opens one at synchronous=NORMAL): see recordResults. */
  sqlite: SQLite.Database
  sealer: SecretSealer
  /** Delays in ms (schedule.ts): [first attempt, retry 1, retry 2 …]. */
  schedule: readonly number[]
  concurrency: number
  timeoutMs: number
  allowPrivate: boolean
  /** Appends the EndpointChanged `disabled` of an endpoint that answered 410 (through the event log). */
  disableEndpoint: (endpointId: string, reason: string) => Promise<void>
  log: { warn: (object: object, message: string) => void, error: (object: object, message: string) => void }
  clock?: () => number
  random?: () => number
  /**
   * The log's last position known to be on disk (the writer's acked tail). A message of a later
   * position waits: at synchronous=FULL the writer syncs the WAL after its COMMIT, so for a few
   * milliseconds a message is readable but could still vanish with the page cache. Unbounded by default.
   */
  durablePosition?: () => number
}

interface DueRow {
  id: number
  message_seq: number
  endpoint_id: string
  order_id: string
  attempts: number
  message_id: string
  payload: string
  url: string
}

interface Outcome { row: DueRow, result: SendResult, headers: Record<string, string>, attemptedAt: string }

/** The state a recorded attempt leaves its delivery in (failed: a retry is due). */
export const attemptResults = ['delivered', 'failed', 'dead'] as const
export type AttemptResult = typeof attemptResults[number]

// The safety net under nudges and timers: a due delivery waits at most this long.
const pollMs = 1000
// Secrets read (and opened) per endpoint at most this often; a rotation calls forget().
const secretsTtlMs = 5000

/**
 * Delivers the outbox's deliveries (projection/outbox.ts writes them with the
 * event that caused them): due ones, each order's oldest active one first
 * and alone (per-order FIFO), at most `concurrency` at a time, signed with
 * Standard Webhooks using every live secret of the endpoint. Each attempt is
 * recorded; failures retry on the schedule, with jitter and Retry-After,
 * until dead-lettered. Runs on the HTTP thread: it only waits on sockets,
 * and writes its results in one short transaction per turn of the loop.
 */
export class Dispatcher {
  readonly #options: DispatcherOptions
  readonly #sender: Sender
  readonly #due: SQLite.Statement<[number, number, string, number], DueRow>
  readonly #earliest: SQLite.Statement<[], number | null>
  readonly #secrets: SQLite.Statement<[string, string], { sealed: string }>
  readonly #insertAttempt: SQLite.Statement
  readonly #update: SQLite.Statement
  readonly #holdLater: SQLite.Statement
  readonly #clock: () => number
  readonly #random: () => number
  readonly #inflight = new Set<number>()
  readonly #finished: Outcome[] = []
  readonly #secretCache = new Map<string, { secrets: string[], until: number }>()
  readonly #idle: Array<() => void> = []
  readonly #attemptListeners = new Set<(result: AttemptResult) => void>()
  #timer: NodeJS.Timeout | undefined
  #tickQueued = false
  #recordQueued = false
  #closed = false

  constructor (options: DispatcherOptions) {
    this.#options = options
    this.#clock = options.clock ?? Date.now
    this.#random = options.random ?? Math.random
    this.#sender = new Sender({ timeoutMs: options.timeoutMs, allowPrivate: options.allowPrivate }, options.concurrency)
    const { sqlite } = options
    // An active delivery is due when its time has come and no earlier message of its order to its endpoint is still active.
    this.#due = sqlite.prepare(`SELECT d.id, d.message_seq, d.endpoint_id, d.order_id, d.attempts, o.message_id, o.payload, e.url
      FROM outbound_deliveries AS d
      JOIN outbox AS o ON o.seq = d.message_seq
      JOIN endpoints AS e ON e.id = d.endpoint_id AND e.enabled = 1
      WHERE d.state IN ('pending', 'failed') AND d.next_attempt_at <= ? AND o.position <= ? AND d.id NOT IN (SELECT value FROM json_each(?))
        AND NOT EXISTS (SELECT 1 FROM outbound_deliveries AS p WHERE p.endpoint_id = d.endpoint_id AND p.order_id = d.order_id
          AND p.state IN ('pending', 'failed') AND p.message_seq < d.message_seq)
      ORDER BY d.next_attempt_at, d.id LIMIT ?`)
    this.#earliest = sqlite.prepare('SELECT min(next_attempt_at) FROM outbound_deliveries WHERE state IN (\'pending\', \'failed\')').pluck() as SQLite.Statement<[], number | null>
    this.#secrets = sqlite.prepare('SELECT sealed FROM endpoint_secrets WHERE endpoint_id = ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY id DESC')
    this.#insertAttempt = sqlite.prepare(`INSERT INTO outbound_attempts (delivery_id, endpoint_id, message_seq, attempted_at, duration_ms, request_headers, status, response_body, error)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
    this.#update = sqlite.prepare(`UPDATE outbound_deliveries SET state = ?, attempts = attempts + 1, next_attempt_at = ?, last_status = ?, last_error = ?, updated_at = ?
      WHERE id = ? AND state IN ('pending', 'failed')`)
    // A later message of the order cannot go before this one: its time is this one's retry, so the due query does not scan it meanwhile.
    this.#holdLater = sqlite.prepare(`UPDATE outbound_deliveries SET next_attempt_at = max(next_attempt_at, ?)
      WHERE endpoint_id = ? AND order_id = ? AND state IN ('pending', 'failed') AND message_seq > ?`)
  }

  /** Starts delivering what is due. */
  start (): void {
    this.nudge()
  }

  /** Something may be due (a commit wrote messages, an admin re-sent one): look soon. */
  nudge (): void {
    if (this.#closed || this.#tickQueued) return
    this.#tickQueued = true
    setImmediate(() => {
      this.#tickQueued = false
      this.#tick()
    })
  }

  /** Drops an endpoint's cached secrets (after a rotation). */
  forget (endpointId: string): void {
    this.#secretCache.delete(endpointId)
  }

  /** Calls `listener` for every attempt once it is recorded (metrics.ts); returns a function that stops it. */
  observeAttempts (listener: (result: AttemptResult) => void): () => void {
    this.#attemptListeners.add(listener)
    return () => { this.#attemptListeners.delete(listener) }
  }

  /** Deliveries in flight now. */
  get inflight (): number {
    return this.#inflight.size
  }

  /**
   * Stops: records the attempts that finished, and cuts those in flight
   * without recording them, so they stay due and go again (same webhook-id)
   * when the service is back: a stop never waits out a slow endpoint.
   */
  async close (): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#record()
    const settled = this.#inflight.size === 0 ? Promise.resolve() : new Promise<void>(resolve => { this.#idle.push(resolve) })
    this.#sender.close()
    await settled
  }

  #tick (): void {
    if (this.#closed) return
    clearTimeout(this.#timer)
    const now = this.#clock()
    const free = this.#options.concurrency - this.#inflight.size
    if (free > 0) {
      try {
        // The ones in flight are left out in SQL, not after: their payloads are not read again each turn (218 → 197 µs of CPU per delivery, bench/outbound.js drains).
        const durable = this.#options.durablePosition?.() ?? Number.MAX_SAFE_INTEGER
        for (const row of this.#due.all(now, durable, JSON.stringify([...this.#inflight]), free)) {
          this.#inflight.add(row.id)
          this.#attempt(row).catch(error => { this.#options.log.error({ err: error }, 'outbound attempt failed to run') })
        }
      } catch (error) {
        // A busy database (the writer holds the lock too long) is retried by the next tick.
        this.#options.log.warn({ err: error }, 'outbound: could not read due deliveries')
      }
    }
    let wait = pollMs
    try {
      const earliest = this.#earliest.get() ?? null
      if (earliest !== null && earliest > now) wait = Math.min(pollMs, earliest - now)
    } catch {}
    this.#timer = setTimeout(() => { this.#tick() }, Math.max(1, wait))
    this.#timer.unref()
  }

  async #attempt (row: DueRow): Promise<void> {
    const now = this.#clock()
    const attemptedAt = new Date(now).toISOString()
    const secrets = this.#liveSecrets(row.endpoint_id, now)
    const timestamp = String(Math.floor(now / 1000))
    const body = Buffer.from(row.payload)
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'paynotify-outbound/1',
      'webhook-id': row.message_id,
      'webhook-timestamp': timestamp,
      // Every live secret signs: during a rotation the old one beside the new, so either verifies.
      'webhook-signature': secrets.map(key => `v1,${standardSignature(key, row.message_id, timestamp, body)}`).join(' ')
    }
    const result: SendResult = secrets.length === 0
      ? { status: null, body: null, retryAfter: undefined, error: 'no secret of this endpoint opens under this service\'s signing key', durationMs: 0 }
      : await this.#sender.send(row.url, headers, row.payload)
    if (this.#closed) {
      this.#inflight.delete(row.id)
      if (this.#inflight.size === 0) for (const resolve of this.#idle.splice(0)) resolve()
      return
    }
    this.#finished.push({ row, result, headers, attemptedAt })
    if (!this.#recordQueued) {
      this.#recordQueued = true
      setImmediate(() => { this.#record() })
    }
  }

  /** Records every finished attempt in one transaction and frees their slots. */
  #record (): void {
    this.#recordQueued = false
    if (this.#finished.length === 0) return
    const outcomes = this.#finished.splice(0)
    const disabled = new Map<string, string>()
    let results: AttemptResult[] = []
    try {
      results = this.#options.sqlite.transaction(() => outcomes.map(outcome => this.#recordOne(outcome, disabled))).immediate()
    } catch (error) {
      // Not recorded: the deliveries stay active and are attempted again (at least once, same webhook-id).
      this.#options.log.error({ err: error }, 'outbound: could not record attempts; they will be retried')
    }
    for (const outcome of outcomes) this.#inflight.delete(outcome.row.id)
    for (const result of results) for (const listener of this.#attemptListeners) listener(result)
    for (const [endpointId, reason] of disabled) {
      this.#options.disableEndpoint(endpointId, reason).catch(error => { this.#options.log.error({ err: error, endpointId }, 'outbound: could not disable the endpoint') })
    }
    if (this.#inflight.size === 0) for (const resolve of this.#idle.splice(0)) resolve()
    this.nudge()
  }

  #recordOne ({ row, result, headers, attemptedAt }: Outcome, disabled: Map<string, string>): AttemptResult {
    const now = this.#clock()
    const attempts = row.attempts + 1
    this.#insertAttempt.run(row.id, row.endpoint_id, row.message_seq, attemptedAt, result.durationMs, JSON.stringify(headers), result.status, result.body, result.error)
    const status = result.status
    let state: AttemptResult
    let next = now
    let error = result.error
    if (status !== null && status >= 200 && status < 300) {
      state = 'delivered'
    } else if (status === 410) {
      state = 'dead'
      error = 'the endpoint answered 410 Gone: disabled'
      disabled.set(row.endpoint_id, 'answered 410 Gone')
    } else if (status === null || status === 429 || status >= 500) {
      const delay = nextRetryDelay(this.#options.schedule, attempts, parseRetryAfter(result.retryAfter, now), this.#random())
      if (delay === null) {
        state = 'dead'
        error = `dead-lettered after ${attempts} attempts: ${error ?? `HTTP ${status}`}`
      } else {
        state = 'failed'
        next = now + delay
      }
    } else {
      // 3xx (redirects are not followed) and 4xx other than 410 and 429: a retry would get the same answer.
      state = 'dead'
      error = `HTTP ${status}: not retried (only timeouts, connection errors, 429 and 5xx are)`
    }
    this.#update.run(state, next, status, error, attemptedAt, row.id)
    if (state === 'failed') this.#holdLater.run(next, row.endpoint_id, row.order_id, row.message_seq)
    return state
  }

  #liveSecrets (endpointId: string, now: number): Buffer[] {
    let cached = this.#secretCache.get(endpointId)
    if (cached === undefined || cached.until <= now) {
      const secrets: string[] = []
      for (const { sealed } of this.#secrets.all(endpointId, new Date(now).toISOString())) {
        const secret = this.#options.sealer.open(endpointId, sealed)
        if (secret !== null) secrets.push(secret)
      }
      cached = { secrets, until: now + secretsTtlMs }
      this.#secretCache.set(endpointId, cached)
    }
    return cached.secrets.map(secret => Buffer.from(secret.slice('whsec_'.length), 'base64'))
  }
}
