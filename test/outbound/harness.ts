import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { loadConfig, type Config } from '../../src/config.js'
import { openDispatcherConnection } from '../../src/db/database.js'
import { createOutbound, type Outbound } from '../../src/outbound/runtime.js'
import { openStore, openThreadedStore, type ServiceStore } from '../../src/store.js'
import { adminAuth, formHeaders, signedForm, tempDir, testSecrets, type Writer } from '../helpers.js'
import type { Receiver } from './receiver.js'

interface Teardown { teardown: (fn: () => unknown) => void }

/** Short retries (4 attempts over ~140 ms) so a dead letter comes quickly. */
export const fastSchedule = '0,20ms,40ms,80ms'

export interface OutboundApp {
  app: FastifyInstance
  store: ServiceStore
  outbound: Outbound
  config: Config
  dbPath: string
  signingKey: string
  /** What the outbound runtime logged as errors (a test expects none unless it provoked them). */
  errors: object[]
  /** Stops it before the test ends (to reopen its database); the teardown does it otherwise. */
  close: () => Promise<void>
}

export interface OutboundAppOptions {
  env?: Record<string, string>
  dbPath?: string
  /** The key endpoint secrets are sealed under; a new one by default (reopen a database with the same). */
  signingKey?: string
  writer?: Writer
  /** Where the log is on disk, as outbound sees it (a commit not yet synced); the writer's tail by default. */
  durablePosition?: () => number
}

// The built worker, as `serve` runs it (npm test builds first); see test/helpers.ts.
const builtWriter = new URL('../../dist/event-log/writer-worker.js', import.meta.url)

/**
 * The service as server.ts assembles it, in this process: a store writing
 * the outbox, the outbound runtime with the dispatcher on a connection of its
 * own, the app, the dispatcher started. No port: inject, or listen where a
 * socket matters. Loopback receivers are allowed and retries are short
 * unless `env` says otherwise. Closed in the order server.ts closes.
 */
export async function startOutboundApp (t: Teardown, options: OutboundAppOptions = {}): Promise<OutboundApp> {
  const dbPath = options.dbPath ?? join(tempDir(t, 'paynotify-outbound-'), 'outbound.db')
  const config = loadConfig({
    PAYNOTIFY_DB: dbPath,
    PAYNOTIFY_LOG_LEVEL: 'silent',
    PAYNOTIFY_OUTBOUND_ALLOW_PRIVATE: '1',
    PAYNOTIFY_OUTBOUND_RETRY_SCHEDULE: fastSchedule,
    ...options.env
  })
  const signingKey = options.signingKey ?? randomBytes(32).toString('base64url')
  const storeOptions = {
    synchronous: config.synchronous,
    batchMaxSize: config.batchMaxSize,
    signingKey,
    outbox: { firstDelayMs: config.outbound.retrySchedule[0] ?? 0 }
  }
  const store = options.writer === 'thread'
    ? await openThreadedStore(dbPath, { ...storeOptions, entry: builtWriter })
    : await openStore(dbPath, storeOptions)
  const dispatcherSqlite = openDispatcherConnection(dbPath, config.busyTimeoutMs)
  const errors: object[] = []
  const outbound = createOutbound({
    sqlite: store.sqlite,
    dispatcherSqlite,
    eventLog: options.durablePosition === undefined ? store.eventLog : withDurablePosition(store.eventLog, options.durablePosition),
    signingKey,
    config: config.outbound,
    log: { warn: () => {}, error: (object, message) => { errors.push({ ...object, message }) } }
  })
  const app = await buildApp({ config, secrets: testSecrets, store, outbound })
  outbound.dispatcher.start()
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    await app.close()
    await outbound.close()
    dispatcherSqlite.close()
    await store.close()
  }
  t.teardown(close)
  return { app, store, outbound, config, dbPath, signingKey, errors, close }
}

/** The store's appender, its tail at `durablePosition` (a disk behind its commits). */
function withDurablePosition (eventLog: ServiceStore['eventLog'], durablePosition: () => number): Parameters<typeof createOutbound>[0]['eventLog'] {
  return {
    append: async events => await eventLog.append(events),
    appendWithRepeats: async events => await eventLog.appendWithRepeats(events),
    get tail () { return { ...eventLog.tail, position: Math.min(eventLog.tail.position, durablePosition()) } }
  }
}

export interface CreatedEndpoint {
  id: string
  url: string
  events: string[] | null
  enabled: boolean
  description: string | null
  secret: string
}

/** POST /admin/endpoints; throws unless 201. The receiver, when given, trusts the new secret. */
export async function createEndpoint (app: FastifyInstance, body: { url: string, events?: string[], description?: string }, receiver?: Receiver): Promise<CreatedEndpoint> {
  const res = await app.inject({ method: 'POST', url: '/admin/endpoints', headers: adminAuth, payload: body })
  if (res.statusCode !== 201) throw new Error(`POST /admin/endpoints answered ${res.statusCode}: ${res.body}`)
  const endpoint = res.json() as CreatedEndpoint
  receiver?.trust(endpoint.secret)
  return endpoint
}

/** A GET with the admin token; throws unless 200. */
export async function adminGet (app: FastifyInstance, url: string): Promise<any> {
  const res = await app.inject({ url, headers: adminAuth })
  if (res.statusCode !== 200) throw new Error(`GET ${url} answered ${res.statusCode}: ${res.body}`)
  return res.json()
}

/** Minor units as the generic gateway's decimal amount. */
export function decimal (minor: number): string {
  return `${Math.floor(minor / 100)}.${String(minor % 100).padStart(2, '0')}`
}

export type GenericStatus = 'pending' | 'paid' | 'refund' | 'failed' | 'closed'

const statusCodes: Record<GenericStatus, string> = { pending: '0', paid: '1', refund: '3', failed: '2', closed: '4' }

/** A generic callback's parameters: one fact about an order, with its own notify_id unless given. */
export function callbackParams (orderId: string, status: GenericStatus, minor: number, extra: Record<string, string> = {}): Record<string, string> {
  return {
    order_id: orderId,
    amount: decimal(minor),
    currency: 'CNY',
    status: statusCodes[status],
    trade_no: `T-${orderId}`,
    notify_id: `${orderId}-${status}-${minor}`,
    ...(status === 'refund' ? { refund_no: `R-${orderId}-${minor}` } : {}),
    ...extra
  }
}

/** Posts a signed generic callback through inject; throws unless acked (200 `success`). */
export async function sendCallback (app: FastifyInstance, params: Record<string, string>): Promise<void> {
  const res = await app.inject({ method: 'POST', url: '/notify/generic', headers: formHeaders, payload: signedForm(params) })
  if (res.statusCode !== 200 || res.body !== 'success') throw new Error(`callback ${params.notify_id} answered ${res.statusCode}: ${res.body}`)
}

/** An outbox row, as the service wrote it. */
export interface OutboxRow { seq: number, message_id: string, type: string, order_id: string, position: number, version: number, payload: string }

/** The outbox in feed order (of one order, when given), read on the app's connection. */
export function outboxRows (app: OutboundApp, orderId?: string): OutboxRow[] {
  const sql = `SELECT seq, message_id, type, order_id, position, version, payload FROM outbox ${orderId === undefined ? '' : 'WHERE order_id = ?'} ORDER BY seq`
  return app.store.sqlite.prepare(sql).all(...(orderId === undefined ? [] : [orderId])) as OutboxRow[]
}

/**
 * Re-checks `check` until it returns something other than undefined or
 * false: for a state the service reaches on its own (an attempt recorded,
 * a job finished) that no event announces to the test. It waits for the
 * state, not for a time: there is no deadline (tap's timeout catches a hang).
 */
export async function eventually<T> (check: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  for (;;) {
    const value = await check()
    if (value !== undefined && value !== false) return value
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}
