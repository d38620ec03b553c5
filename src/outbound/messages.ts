import { randomBytes } from 'node:crypto'
import type SQLite from 'better-sqlite3'
import { AppError } from '../errors.js'

/** One attempt as the admin API shows it. */
export interface Attempt {
  id: number
  messageId: string
  endpointId: string
  attemptedAt: string
  durationMs: number
  requestHeaders: Record<string, string>
  status: number | null
  responseBody: string | null
  error: string | null
}

/** One delivery of a message to an endpoint, with its latest attempts (newest first). */
export interface Delivery {
  endpointId: string
  state: string
  attempts: number
  /** When the next attempt is due; null once delivered or dead. */
  nextAttemptAt: string | null
  lastStatus: number | null
  lastError: string | null
  updatedAt: string
  attemptLog: Attempt[]
}

/** One outbound message as the admin API shows it: body, state over its deliveries, every delivery. */
export interface MessageDetail {
  id: string
  seq: number
  type: string
  orderId: string
  position: number
  version: number
  createdAt: string
  payload: unknown
  state: string
  deliveries: Delivery[]
}

/** A delivery in an endpoint's list: its message and where it stands, without the attempts. */
export interface EndpointDelivery {
  messageId: string
  seq: number
  type: string
  orderId: string
  createdAt: string
  state: string
  attempts: number
  nextAttemptAt: string | null
  lastStatus: number | null
  lastError: string | null
  updatedAt: string
}

interface AttemptRow { id: number, message_id: string, endpoint_id: string, attempted_at: string, duration_ms: number, request_headers: string, status: number | null, response_body: string | null, error: string | null }
interface MessageRow { seq: number, message_id: string, type: string, order_id: string, position: number, version: number, payload: string, created_at: string }
interface DeliveryRow { id: number, endpoint_id: string, state: string, attempts: number, next_attempt_at: number, last_status: number | null, last_error: string | null, updated_at: string }
type EndpointDeliveryRow = Omit<DeliveryRow, 'id' | 'endpoint_id'> & Pick<MessageRow, 'seq' | 'message_id' | 'type' | 'order_id' | 'created_at'>
interface JobRow { id: string, kind: string, state: string, params: string, total: number, done: number, error: string | null, created_at: string, finished_at: string | null }

// Attempts shown per delivery on a message's page; the endpoint's attempt list pages through all of them.
const attemptsPerDelivery = 50
// Deliveries reset per transaction by a recover job: short transactions, so the writer is never held long.
const recoverChunk = 500

const attemptColumns = 'a.id, o.message_id, a.endpoint_id, a.attempted_at, a.duration_ms, a.request_headers, a.status, a.response_body, a.error'

/**
 * The admin side of outbound messages: what happened to each (attempts,
 * state), re-sending one, and recovering an endpoint's failed and dead
 * messages over a time range as a job with progress.
 */
export class OutboundMessages {
  readonly #sqlite: SQLite.Database
  readonly #now: () => Date
  readonly #onResend: () => void
  readonly #jobs = new Map<string, Promise<void>>()

  constructor (sqlite: SQLite.Database, now: () => Date, onResend: () => void) {
    this.#sqlite = sqlite
    this.#now = now
    this.#onResend = onResend
    // A job a stopped service left running is not running any more: say so (its finished chunks stand).
    sqlite.prepare('UPDATE jobs SET state = \'interrupted\', finished_at = ? WHERE state = \'running\'').run(now().toISOString())
  }

  /** Deliveries not done yet: due, or failed and waiting for a retry (the partial index outbound_deliveries_due holds exactly these). */
  activeDeliveries (): number {
    return this.#sqlite.prepare('SELECT count(*) FROM outbound_deliveries WHERE state IN (\'pending\', \'failed\')').pluck().get() as number
  }

  attempts (endpointId: string, cursor: number | undefined, limit: number): { attempts: Attempt[], nextCursor: number | null } {
    const rows = this.#sqlite.prepare(`SELECT ${attemptColumns} FROM outbound_attempts AS a JOIN outbox AS o ON o.seq = a.message_seq
      WHERE a.endpoint_id = ? AND a.id < ? ORDER BY a.id DESC LIMIT ?`).all(endpointId, cursor ?? Number.MAX_SAFE_INTEGER, limit + 1) as AttemptRow[]
    const page = rows.slice(0, limit).map(toAttempt)
    return { attempts: page, nextCursor: rows.length > limit ? page[page.length - 1]!.id : null }
  }

  /** An endpoint's deliveries, newest message first, cursor paged by the message's seq. */
  deliveries (endpointId: string, cursor: number | undefined, limit: number): { deliveries: EndpointDelivery[], nextCursor: number | null } {
    const rows = this.#sqlite.prepare(`SELECT o.seq, o.message_id, o.type, o.order_id, o.created_at, d.state, d.attempts, d.next_attempt_at, d.last_status, d.last_error, d.updated_at
      FROM outbound_deliveries AS d JOIN outbox AS o ON o.seq = d.message_seq
      WHERE d.endpoint_id = ? AND d.message_seq < ? ORDER BY d.message_seq DESC LIMIT ?`).all(endpointId, cursor ?? Number.MAX_SAFE_INTEGER, limit + 1) as EndpointDeliveryRow[]
    const page = rows.slice(0, limit).map(row => ({
      messageId: row.message_id,
      seq: row.seq,
      type: row.type,
      orderId: row.order_id,
      createdAt: row.created_at,
      state: row.state,
      attempts: row.attempts,
      nextAttemptAt: nextAttemptOf(row),
      lastStatus: row.last_status,
      lastError: row.last_error,
      updatedAt: row.updated_at
    }))
    return { deliveries: page, nextCursor: rows.length > limit ? page[page.length - 1]!.seq : null }
  }

  message (messageId: string): MessageDetail {
    const message = this.#message(messageId)
    const deliveries = this.#sqlite.prepare(`SELECT id, endpoint_id, state, attempts, next_attempt_at, last_status, last_error, updated_at
      FROM outbound_deliveries WHERE message_seq = ? ORDER BY endpoint_id`).all(message.seq) as DeliveryRow[]
    const attemptsOf = this.#sqlite.prepare(`SELECT ${attemptColumns} FROM outbound_attempts AS a JOIN outbox AS o ON o.seq = a.message_seq
      WHERE a.delivery_id = ? ORDER BY a.id DESC LIMIT ${attemptsPerDelivery}`)
    return {
      id: message.message_id,
      seq: message.seq,
      type: message.type,
      orderId: message.order_id,
      position: message.position,
      version: message.version,
      createdAt: message.created_at,
      payload: JSON.parse(message.payload) as unknown,
      state: messageState(deliveries.map(d => d.state)),
      deliveries: deliveries.map(d => ({
        endpointId: d.endpoint_id,
        state: d.state,
        attempts: d.attempts,
        nextAttemptAt: nextAttemptOf(d),
        lastStatus: d.last_status,
        lastError: d.last_error,
        updatedAt: d.updated_at,
        attemptLog: (attemptsOf.all(d.id) as AttemptRow[]).map(toAttempt)
      }))
    }
  }

  /** Sends one message again, to every endpoint it went to or to one (creating its delivery if it had none). */
  resend (messageId: string, endpointId: string | undefined): { messageId: string, deliveries: number } {
    const message = this.#message(messageId)
    const now = this.#now()
    const count = this.#sqlite.transaction(() => {
      if (endpointId !== undefined) {
        if (this.#sqlite.prepare('SELECT 1 FROM endpoints WHERE id = ?').get(endpointId) === undefined) throw new AppError(404, 'endpoint_not_found', `no endpoint ${endpointId}`)
        this.#sqlite.prepare(`INSERT INTO outbound_deliveries (message_seq, endpoint_id, order_id, state, attempts, next_attempt_at, created_at, updated_at)
          VALUES (?, ?, ?, 'pending', 0, ?, ?, ?) ON CONFLICT (message_seq, endpoint_id) DO NOTHING`)
          .run(message.seq, endpointId, message.order_id, now.getTime(), now.toISOString(), now.toISOString())
      }
      return this.#sqlite.prepare(`UPDATE outbound_deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?, last_error = NULL, updated_at = ?
        WHERE message_seq = ? AND (? IS NULL OR endpoint_id = ?)`).run(now.getTime(), now.toISOString(), message.seq, endpointId ?? null, endpointId ?? null).changes
    }).immediate()
    this.#onResend()
    return { messageId, deliveries: count }
  }

  /**
   * Starts a job that re-sends every failed or dead-lettered message of an
   * endpoint created in [since, until), in chunks; returns it at once.
   */
  recover (endpointId: string, since: string, until: string): object {
    const now = this.#now()
    const range = `FROM outbound_deliveries AS d JOIN outbox AS o ON o.seq = d.message_seq
      WHERE d.endpoint_id = ? AND d.state IN ('failed', 'dead') AND o.created_at >= ? AND o.created_at < ?`
    const total = this.#sqlite.prepare(`SELECT count(*) ${range}`).pluck().get(endpointId, since, until) as number
    const id = `job_${randomBytes(12).toString('hex')}`
    this.#sqlite.prepare('INSERT INTO jobs (id, kind, state, params, total, done, error, created_at, finished_at) VALUES (?, \'recover\', \'running\', ?, ?, 0, NULL, ?, NULL)')
      .run(id, JSON.stringify({ endpointId, since, until }), total, now.toISOString())
    const chunk = this.#sqlite.prepare(`UPDATE outbound_deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?, updated_at = ?
      WHERE id IN (SELECT d.id ${range} AND d.id > ? ORDER BY d.id LIMIT ${recoverChunk}) RETURNING id`).pluck()
    const progress = this.#sqlite.prepare('UPDATE jobs SET done = done + ? WHERE id = ?')
    const finish = this.#sqlite.prepare('UPDATE jobs SET state = ?, error = ?, finished_at = ? WHERE id = ?')
    const run = async (): Promise<void> => {
      let after = 0
      try {
        for (;;) {
          // One chunk per turn of the event loop: callbacks and admin reads go on between them.
          await new Promise(resolve => setImmediate(resolve))
          const at = this.#now()
          const ids = this.#sqlite.transaction(() => {
            const reset = chunk.all(at.getTime(), at.toISOString(), endpointId, since, until, after) as number[]
            progress.run(reset.length, id)
            return reset
          }).immediate()
          if (ids.length === 0) break
          after = Math.max(...ids)
          this.#onResend()
        }
        finish.run('done', null, this.#now().toISOString(), id)
      } catch (error) {
        finish.run('failed', (error as Error).message.slice(0, 300), this.#now().toISOString(), id)
      }
    }
    const job = run().finally(() => { this.#jobs.delete(id) })
    this.#jobs.set(id, job)
    return this.job(id)
  }

  job (id: string): object {
    const row = this.#sqlite.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined
    if (row === undefined) throw new AppError(404, 'job_not_found', `no job ${id}`)
    return { id: row.id, kind: row.kind, state: row.state, params: JSON.parse(row.params) as unknown, total: row.total, done: row.done, error: row.error, createdAt: row.created_at, finishedAt: row.finished_at }
  }

  /** Waits for the jobs still running (a graceful stop). */
  async close (): Promise<void> {
    await Promise.allSettled([...this.#jobs.values()])
  }

  #message (messageId: string): MessageRow {
    const row = this.#sqlite.prepare('SELECT seq, message_id, type, order_id, position, version, payload, created_at FROM outbox WHERE message_id = ?').get(messageId) as MessageRow | undefined
    if (row === undefined) throw new AppError(404, 'message_not_found', `no message ${messageId}`)
    return row
  }
}

/** A message's state over its deliveries: the least advanced one's, so "delivered" means delivered everywhere. */
function messageState (states: readonly string[]): string {
  for (const state of ['pending', 'failed', 'dead']) if (states.includes(state)) return state
  return states.length === 0 ? 'no_endpoints' : 'delivered'
}

function nextAttemptOf (row: Pick<DeliveryRow, 'state' | 'next_attempt_at'>): string | null {
  return row.state === 'pending' || row.state === 'failed' ? new Date(row.next_attempt_at).toISOString() : null
}

function toAttempt (row: AttemptRow): Attempt {
  return {
    id: row.id,
    messageId: row.message_id,
    endpointId: row.endpoint_id,
    attemptedAt: row.attempted_at,
    durationMs: row.duration_ms,
    requestHeaders: JSON.parse(row.request_headers) as Record<string, string>,
    status: row.status,
    responseBody: row.response_body,
    error: row.error
  }
}
