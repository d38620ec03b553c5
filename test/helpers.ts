import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { buildApp, type AppDeps } from '../src/app.js'
import { loadConfig, type Config } from '../src/config.js'
import { signGenericParams } from '../src/gateways/generic.js'
import type { Secrets } from '../src/secrets.js'
import { openStore, type Store, type StoreOptions } from '../src/store.js'

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

export interface TestApp {
  app: FastifyInstance
  store: Store
  config: Config
  dbPath: string
}

/**
 * Builds the real app on a real SQLite file in a temp dir (no port; use
 * app.inject, or app.listen on 127.0.0.1 where a real socket matters).
 * Closed by the test's own teardown.
 */
export async function buildTestApp (t: Teardown, options: {
  env?: Record<string, string>
  store?: StoreOptions
  deps?: Partial<AppDeps>
  dbPath?: string
} = {}): Promise<TestApp> {
  const dbPath = options.dbPath ?? join(tempDir(t), 'test.db')
  const config = loadConfig({ PAYNOTIFY_DB: dbPath, PAYNOTIFY_LOG_LEVEL: 'silent', ...options.env })
  const store = await openStore(dbPath, { synchronous: config.synchronous, batchMaxSize: config.batchMaxSize, ...options.store })
  const app = await buildApp({ config, secrets: testSecrets, store, ...options.deps })
  t.teardown(async () => {
    await app.close()
    await store.close()
  })
  return { app, store, config, dbPath }
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
