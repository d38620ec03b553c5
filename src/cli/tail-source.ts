import http from 'node:http'
import https from 'node:https'
import type { RecordedEvent } from '../orders/events.js'

/**
 * Where `paynotify tail` reads the log: a running service's admin API, or a
 * database file read-only beside the service. Both answer by position, so a
 * reader that lost its connection resumes exactly where it stopped.
 */
export interface LogSource {
  readonly name: string
  /** Up to `limit` events after `position`, in position order. */
  after: (position: number, limit: number, signal: AbortSignal) => Promise<RecordedEvent[]>
  /** The position of the last event now (0 for an empty log). */
  end: (signal: AbortSignal) => Promise<number>
  /** Every event of one order, in log order. */
  history: (orderId: string, signal: AbortSignal) => Promise<RecordedEvent[]>
  close: () => Promise<void>
}

/** An answer no retry will change (a wrong admin token): tail stops with it. */
export class FatalSourceError extends Error {}

/** An answer from the admin API: its status and, for a 200, its JSON. */
interface Answer { status: number, json: unknown }

/**
 * GETs with an agent of its own: keep-alive between polls, and destroyed by
 * close, so tail exits as soon as it is stopped (fetch's shared agent kept the
 * process up for its idle sockets' timeout).
 */
function createGetter (base: URL, headers: Record<string, string>, timeoutMs: number): { get: (path: string, signal: AbortSignal) => Promise<Answer>, close: () => void } {
  const client = base.protocol === 'https:' ? https : http
  const agent = new client.Agent({ keepAlive: true, maxSockets: 1 })
  return {
    get: async (path, signal) => await new Promise<Answer>((resolve, reject) => {
      const request = client.request(new URL(path, base), { agent, headers, signal, timeout: timeoutMs }, response => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => { chunks.push(chunk) })
        response.on('error', reject)
        response.on('end', () => {
          if (response.statusCode !== 200) {
            resolve({ status: response.statusCode ?? 0, json: null })
            return
          }
          try {
            resolve({ status: 200, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) })
          } catch (error) {
            reject(error)
          }
        })
      })
      request.on('timeout', () => { request.destroy(Object.assign(new Error('no answer in time'), { code: 'ETIMEDOUT' })) })
      request.on('error', reject)
      request.end()
    }),
    close: () => { agent.destroy() }
  }
}

/** The admin API of a running service: GET /admin/events?after= and GET /admin/orders/:id/events. */
export function httpSource (base: URL, adminToken: string, timeoutMs: number): LogSource {
  const getter = createGetter(base, { authorization: `Bearer ${adminToken}`, accept: 'application/json' }, timeoutMs)
  const get = async (path: string, signal: AbortSignal): Promise<unknown> => {
    const { status, json } = await getter.get(path, signal)
    const route = path.split('?')[0]!
    if (status === 401 || status === 403) throw new FatalSourceError(`GET ${route} answered ${status}: check --admin-token (or PAYNOTIFY_ADMIN_TOKEN, or the secrets file)`)
    if (status === 404 && path.startsWith('/admin/orders/')) return { events: [] }
    if (status !== 200) throw new Error(`GET ${route} answered ${status}`)
    return json
  }
  const page = async (after: number, limit: number, signal: AbortSignal): Promise<RecordedEvent[]> =>
    ((await get(`/admin/events?after=${after}&limit=${limit}`, signal)) as { events: RecordedEvent[] }).events
  return {
    name: base.href,
    after: page,
    // The API has no "last position": "is there an event after p" is monotone in p whatever
    // the gaps, so doubling then bisecting finds the end in ~2·log2(n) one-event requests.
    end: async (signal) => {
      const exists = async (after: number): Promise<boolean> => (await page(after, 1, signal)).length > 0
      if (!await exists(0)) return 0
      let low = 0
      let high = 1
      while (await exists(high)) {
        low = high
        high *= 2
      }
      // Invariant: an event lies after low, none after high.
      while (high - low > 1) {
        const middle = Math.floor((low + high) / 2)
        if (await exists(middle)) low = middle
        else high = middle
      }
      return high
    },
    // The timeline is paged (by stream version): read every page.
    history: async (orderId, signal) => {
      const events: RecordedEvent[] = []
      for (let cursor: number | null = 0; cursor !== null;) {
        const page = (await get(`/admin/orders/${encodeURIComponent(orderId)}/events?cursor=${cursor}&limit=500`, signal)) as { events: RecordedEvent[], nextCursor?: number | null }
        events.push(...page.events)
        cursor = page.nextCursor ?? null
      }
      return events
    },
    close: async () => { getter.close() }
  }
}

/** A database file, read-only (the service may be writing it: WAL lets both run). */
export async function databaseSource (dbPath: string): Promise<LogSource> {
  const [{ openDatabase }, { readEvents, readStream, rowToEvent }] = await Promise.all([import('../db/database.js'), import('../event-log/read.js')])
  const database = openDatabase(dbPath, { readonly: true })
  return {
    name: dbPath,
    after: async (position, limit) => (await readEvents(database.db, { after: position, limit })).map(rowToEvent),
    end: async () => (database.sqlite.prepare('SELECT coalesce(max(position), 0) FROM events').pluck().get() as number),
    history: async (orderId) => {
      const events: RecordedEvent[] = []
      for (let rows = await readStream(database.db, orderId, 0, 1000); rows.length > 0; rows = await readStream(database.db, orderId, rows[rows.length - 1]!.stream_version, 1000)) {
        events.push(...rows.map(rowToEvent))
      }
      return events
    },
    close: async () => { await database.close() }
  }
}
