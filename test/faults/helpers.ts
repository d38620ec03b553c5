import { request, type Agent, type OutgoingHttpHeaders } from 'node:http'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import SQLite from 'better-sqlite3'
import type t from 'tap'
import { genesisHash } from '../../src/event-log/hash.js'
import { rowToEvent, type EventRow } from '../../src/event-log/read.js'
import { verifyChain } from '../../src/event-log/verify-chain.js'
import { isOrderStream, type RecordedEvent } from '../../src/orders/events.js'
import { foldOrder, reportsJoining, type OrderState } from '../../src/orders/order-fold.js'
import { orderColumns, orderRowValues } from '../../src/projection/projector.js'
import { signedForm, testSecrets } from '../helpers.js'

/** The type of a subtest's `t` (tap's last test() overload takes just the callback). */
export type TapTest = Parameters<Parameters<typeof t.test>[0]>[0]

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

/**
 * The seed of a randomized test: PAYNOTIFY_TEST_SEED reproduces a run,
 * otherwise a fresh one (printed by the caller, so a failure can be replayed).
 */
export function testSeed (): number {
  const given = process.env.PAYNOTIFY_TEST_SEED
  return given !== undefined && given !== '' ? Number(given) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0
}

/** mulberry32: a small, fast, seeded PRNG (uniform floats in [0, 1)). */
export function seededRandom (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

export function shuffle<T> (items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const tmp = items[i]!
    items[i] = items[j]!
    items[j] = tmp
  }
  return items
}

/**
 * Socket deadlines of minutes, the longest the configuration allows: a test about something else must
 * not meet the server's (by default 10 s for headers, 15 s for a request, 30 s without a byte either
 * way) on a loaded machine, where a storm's last sockets wait that long to be read or answered and
 * are then cut (seen: 39 and 96 of 1,000 reset, by the headers and by the idle deadline).
 */
export const patientLimits = { PAYNOTIFY_HEADERS_TIMEOUT_MS: '120000', PAYNOTIFY_REQUEST_TIMEOUT_MS: '300000', PAYNOTIFY_IDLE_TIMEOUT_MS: '600000' } as const

/**
 * Environment for a server child process (startService in ../service-process.ts):
 * the test secrets, then `extra`. No PAYNOTIFY_* from the caller, and none of
 * tap's NODE_OPTIONS loaders (they would make every start seconds slower and
 * are not what production runs).
 */
export function serverEnv (dbPath: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) if (!/^(PAYNOTIFY_|NODE_OPTIONS$|_TAPJS_|TAP)/.test(key)) env[key] = value
  return {
    ...env,
    PAYNOTIFY_DB: dbPath,
    PAYNOTIFY_HOST: '127.0.0.1',
    PAYNOTIFY_PORT: '0',
    PAYNOTIFY_GENERIC_SECRET: testSecrets.genericSecret,
    PAYNOTIFY_ADMIN_TOKEN: testSecrets.adminToken,
    PAYNOTIFY_MERCHANT_TOKEN: testSecrets.merchantToken,
    PAYNOTIFY_LOG_LEVEL: 'warn',
    ...patientLimits,
    ...extra
  }
}

export type HttpResult = { ok: true, status: number, body: string } | { ok: false, error: string }

/**
 * One HTTP request over a real socket; never rejects (a dropped connection is a result too).
 * No client deadline: the server's own limits end a request, and tap's timeout a hang.
 */
export async function httpRequest (url: string, options: { method?: string, headers?: OutgoingHttpHeaders, body?: string | Buffer, agent?: Agent | false } = {}): Promise<HttpResult> {
  return await new Promise(resolve => {
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers, agent: options.agent }, res => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => { resolve({ ok: true, status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }) })
      res.on('error', error => { resolve({ ok: false, error: error.message }) })
    })
    req.on('error', error => { resolve({ ok: false, error: (error as NodeJS.ErrnoException).code ?? error.message }) })
    req.end(options.body)
  })
}

/** A generic callback as the gateway would post it. */
export interface Delivery {
  params: Record<string, string>
  /** The form body, signed with the test secret. */
  body: string
}

export function genericDelivery (params: Record<string, string>): Delivery {
  return { params, body: signedForm(params) }
}

export async function postDelivery (baseUrl: string, delivery: Delivery, agent?: Agent | false): Promise<HttpResult> {
  return await httpRequest(`${baseUrl}/notify/generic`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(delivery.body) },
    body: delivery.body,
    agent
  })
}

export function isAck (result: HttpResult): boolean {
  return result.ok && result.status === 200 && result.body === 'success'
}

/** Runs `worker` over `items` with at most `concurrency` in flight. */
export async function runPool<T> (items: readonly T[], concurrency: number, worker: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0
  const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const i = next++
      await worker(items[i]!, i)
    }
  })
  await Promise.all(lanes)
}

export interface LogAudit {
  /** Rows in the events table. */
  count: number
  /** Events by stream, in log order. */
  streams: Map<string, RecordedEvent[]>
  /** Delivery ids present in the log (gateway|deliveryId), with how many times each was appended. */
  deliveries: Map<string, number>
  chainOk: boolean
  chainBreak: unknown
  /** Orders whose stored row differs from a fresh fold of their stream (empty when the projection is right). */
  projectionMismatches: string[]
  /** Stored projection states, by order id. */
  states: Map<string, OrderState>
  /** Position the projection says it applied, and the last position in the log. */
  projectedTo: number
  lastPosition: number
}

/**
 * Reads a database the way an auditor would, through its own read-only
 * connection in one read transaction: every event, the chain from genesis,
 * and each stored order row compared with orderRowValues(foldOrder(stream)).
 */
export function auditLog (dbPath: string): LogAudit {
  const sqlite = new SQLite(dbPath, { readonly: true, fileMustExist: true })
  try {
    return sqlite.transaction(() => {
      const rows = sqlite.prepare('SELECT * FROM events ORDER BY position').all() as EventRow[]
      const streams = new Map<string, RecordedEvent[]>()
      const deliveries = new Map<string, number>()
      for (const row of rows) {
        const event = rowToEvent(row)
        const stream = streams.get(event.streamId) ?? []
        stream.push(event)
        streams.set(event.streamId, stream)
        const key = `${event.metadata.gateway}|${event.metadata.deliveryId}`
        deliveries.set(key, (deliveries.get(key) ?? 0) + 1)
      }
      const chain = verifyChain(sqlite, { position: 0, hash: genesisHash })
      const context = { ordersRegistered: rows.some(row => row.type === 'OrderPlaced') }
      const stored = sqlite.prepare(`SELECT ${orderColumns.join(', ')} FROM orders`).raw().all() as unknown[][]
      const storedById = new Map(stored.map(values => [values[0] as string, values]))
      const mismatches: string[] = []
      const states = new Map<string, OrderState>()
      const reports = rows.filter(row => row.type === 'UnattributedReportReceived').map(rowToEvent)
      for (const [orderId, events] of streams) {
        if (!isOrderStream(orderId)) continue
        const state = foldOrder(orderId, events)
        const expected = orderRowValues(state, context, reportsJoining(Object.values(state.facts), reports))
        const actual = storedById.get(orderId)
        if (actual === undefined || JSON.stringify(actual) !== JSON.stringify(expected)) mismatches.push(orderId)
        if (actual !== undefined) states.set(orderId, JSON.parse(actual[orderColumns.indexOf('state')] as string) as OrderState)
      }
      for (const orderId of storedById.keys()) if (!streams.has(orderId)) mismatches.push(orderId)
      const checkpoint = sqlite.prepare("SELECT last_position FROM projections WHERE name = 'orders'").get() as { last_position: number } | undefined
      return {
        count: rows.length,
        streams,
        deliveries,
        chainOk: chain.ok,
        chainBreak: chain.firstBreak,
        projectionMismatches: mismatches,
        states,
        projectedTo: checkpoint?.last_position ?? 0,
        lastPosition: rows.length === 0 ? 0 : rows[rows.length - 1]!.position
      }
    })()
  } finally {
    sqlite.close()
  }
}

/** Number of rows in the events table, through a connection of its own. */
export function countEvents (dbPath: string): number {
  const sqlite = new SQLite(dbPath, { readonly: true, fileMustExist: true })
  try {
    return (sqlite.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n
  } finally {
    sqlite.close()
  }
}
