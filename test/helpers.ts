import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { buildApp, type AppDeps } from '../src/app.js'
import { loadConfig, type Config } from '../src/config.js'
import { generateSigningKey } from '../src/event-log/checkpoint-signature.js'
import { signGenericParams } from '../src/gateways/generic.js'
import { createOutbound, type Outbound } from '../src/outbound/runtime.js'
import type { Secrets } from '../src/secrets.js'
import { openStore, openThreadedStore, type ServiceStore, type Store, type StoreOptions } from '../src/store.js'

export const testSecrets: Secrets = Object.freeze({
  genericSecret: 'generic-test-secret-0123456789',
  adminToken: 'admin-test-token-0123456789',
  merchantToken: 'merchant-test-token-0123456789'
})

export const adminAuth = { authorization: `Bearer ${testSecrets.adminToken}` }
export const merchantAuth = { authorization: `Bearer ${testSecrets.merchantToken}` }

interface Teardown { teardown: (fn: () => unknown) => void }

/** A fresh temporary directory, removed when the test ends. */
export function tempDir (t: Teardown, prefix = 'paynotify-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

export interface TestApp<S extends ServiceStore = Store> {
  app: FastifyInstance
  store: S
  config: Config
  dbPath: string
}

/** Where appends run: `thread` is what `serve` runs by default (PAYNOTIFY_WRITER), `inline` is on this thread. */
export const writers = ['inline', 'thread'] as const
export type Writer = typeof writers[number]

// The built worker (npm test builds first), as `serve` runs it: one started on the .ts source
// compiles it again through tap's TypeScript loader on every start (seconds each).
const builtWriter = new URL('../dist/event-log/writer-worker.js', import.meta.url)

interface BuildOptions {
  env?: Record<string, string>
  /** `clock` applies to the inline writer only: the writer thread keeps its own. */
  store?: StoreOptions
  deps?: Partial<AppDeps>
  dbPath?: string
  /** Run outbound as `serve` does: the outbox written with every change, the endpoint routes and the feed, a dispatcher started. */
  outbound?: boolean
}

/**
 * Builds the real app on a real SQLite file in a temp dir (no port; use
 * app.inject, or app.listen on 127.0.0.1 where a real socket matters).
 * Closed by the test's own teardown. The store is inline (log and projector
 * on this thread, reachable as `store.eventLog`/`store.projector`) unless
 * `writer: 'thread'` asks for the one `serve` runs.
 */
export async function buildTestApp (t: Teardown, options?: BuildOptions & { writer?: 'inline' }): Promise<TestApp>
export async function buildTestApp (t: Teardown, options: BuildOptions & { writer: Writer }): Promise<TestApp<ServiceStore>>
export async function buildTestApp (t: Teardown, options: BuildOptions & { writer?: Writer } = {}): Promise<TestApp<ServiceStore>> {
  const dbPath = options.dbPath ?? join(tempDir(t), 'test.db')
  const config = loadConfig({ PAYNOTIFY_DB: dbPath, PAYNOTIFY_LOG_LEVEL: 'silent', ...options.env })
  const outbox = options.outbound === true ? { firstDelayMs: config.outbound.retrySchedule[0] ?? 0 } : undefined
  const storeOptions = { synchronous: config.synchronous, batchMaxSize: config.batchMaxSize, outbox, ...options.store }
  const store = options.writer === 'thread' ? await openThreadedStore(dbPath, { ...storeOptions, entry: builtWriter }) : await openStore(dbPath, storeOptions)
  const outbound: Outbound | undefined = options.outbound === true
    ? createOutbound({ sqlite: store.sqlite, dispatcherSqlite: store.sqlite, eventLog: store.eventLog, signingKey: generateSigningKey(), config: config.outbound, log: { warn: () => {}, error: () => {} } })
    : undefined
  const app = await buildApp({ config, secrets: testSecrets, store, outbound, ...options.deps })
  outbound?.dispatcher.start()
  t.teardown(async () => {
    await app.close()
    await outbound?.close()
    await store.close()
  })
  return { app, store, config, dbPath }
}

/**
 * Declares `name` once per writer (a subtest each, named after it): for the
 * tests whose answers depend on how appends reach the database, such as
 * reads right after writes, concurrent appends and batching.
 */
export function testEachWriter (parent: Test, name: string, fn: (t: Test, writer: Writer) => Promise<void>): void {
  for (const writer of writers) parent.test(`${name} [writer: ${writer}]`, async t => { await fn(t, writer) })
}

/** A generic callback body, signed with the test secret, form-encoded as the seed's PHP sender does. */
export function signedForm (params: Record<string, string>, secret = testSecrets.genericSecret): string {
  const sign = signGenericParams(params, secret)
  return new URLSearchParams({ ...params, sign }).toString()
}

export const formHeaders = { 'content-type': 'application/x-www-form-urlencoded' }

/** The order as the admin API shows it, or null when there is none. */
export async function order (app: FastifyInstance, id: string): Promise<any> {
  const res = await app.inject({ url: `/admin/orders/${id}`, headers: adminAuth })
  return res.statusCode === 200 ? res.json() : null
}

/** Rows in the events table: what every refusal test checks stayed put. */
export function eventCount (test: TestApp): number {
  return (test.store.sqlite.prepare('select count(*) as n from events').get() as { n: number }).n
}
