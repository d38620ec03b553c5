import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import SQLite from 'better-sqlite3'
import { formHeaders, merchantAuth, signedForm, tempDir, testSecrets, type TestApp } from '../helpers.js'
import { signGenericParams } from '../../src/gateways/generic.js'
import type { LocalGatewayKeys } from '../../src/local-gateway-keys.js'

export const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url))

export interface Run { code: number, stdout: string, stderr: string }

interface Teardown { teardown: (fn: () => unknown) => void }

/**
 * Runs the built CLI as a child process (asynchronously: a server under test
 * may live in this process). The environment holds only PATH and what the
 * test passes, so no real installation's PAYNOTIFY_* settings leak in.
 */
export async function runCli (args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return await new Promise(resolve => {
    execFile(process.execPath, [cli, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr })
    })
  })
}

/** An environment whose PAYNOTIFY_DB is an unused file in a fresh temp dir. */
export function isolatedEnv (t: Teardown): Record<string, string> {
  return { PAYNOTIFY_DB: join(tempDir(t), 'default.db') }
}

export async function notify (test: TestApp, params: Record<string, string>, json = false): Promise<void> {
  const response = json
    ? await test.app.inject({ method: 'POST', url: '/notify/generic', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ ...params, sign: signGenericParams(params, testSecrets.genericSecret) }) })
    : await test.app.inject({ method: 'POST', url: '/notify/generic', headers: formHeaders, payload: signedForm(params) })
  if (response.statusCode !== 200) throw new Error(`seed callback refused: ${response.statusCode} ${response.body}`)
}

export async function place (test: TestApp, orderId: string, amount: string, currency = 'CNY'): Promise<void> {
  const response = await test.app.inject({ method: 'POST', url: '/orders', headers: { ...merchantAuth, 'content-type': 'application/json' }, payload: { order_id: orderId, amount, currency } })
  if (response.statusCode !== 201) throw new Error(`seed order refused: ${response.statusCode} ${response.body}`)
}

/**
 * A log with the situations the toolkit must carry over unchanged: orders
 * registered before and after their payment, gateway retries, a partial
 * refund, a late failure after paid, a refund before its payment, an amount
 * mismatch, a double payment, a JSON callback, a close, and signed
 * timestamps (which replay --to must refresh).
 */
export async function seedScenarios (test: TestApp, prefix = 'S'): Promise<string[]> {
  const now = String(Math.floor(Date.now() / 1000))
  const id = (n: number): string => `${prefix}${n}`
  await place(test, id(1), '88.88')
  await notify(test, { order_id: id(1), amount: '88.88', status: '0', notify_id: `${prefix}-n1p`, timestamp: now })
  // Another order's callback in between: one order's events are not a contiguous range of the log.
  await notify(test, { order_id: id(2), amount: '10.00', status: '1', notify_id: `${prefix}-n2s`, trade_no: `${prefix}-T2` })
  await notify(test, { order_id: id(1), amount: '88.88', status: '1', notify_id: `${prefix}-n1s`, trade_no: `${prefix}-T1`, timestamp: now })
  await notify(test, { order_id: id(1), amount: '88.88', status: '1', notify_id: `${prefix}-n1s`, trade_no: `${prefix}-T1`, timestamp: now })
  await notify(test, { order_id: id(1), amount: '20.00', status: '3', notify_id: `${prefix}-n1r`, trade_no: `${prefix}-T1`, refund_no: `${prefix}-R1` })
  await notify(test, { order_id: id(2), amount: '10.00', status: '2', notify_id: `${prefix}-n2f` })
  await notify(test, { order_id: id(3), amount: '5.00', status: '3', notify_id: `${prefix}-n3r`, trade_no: `${prefix}-T3`, refund_no: `${prefix}-R3` })
  await notify(test, { order_id: id(3), amount: '5.00', status: '1', notify_id: `${prefix}-n3s`, trade_no: `${prefix}-T3` })
  await place(test, id(4), '10.00')
  await notify(test, { order_id: id(4), amount: '9.00', status: '1', notify_id: `${prefix}-n4s`, trade_no: `${prefix}-T4`, timestamp: now })
  await notify(test, { order_id: id(5), amount: '30.00', status: 'paid', notify_id: `${prefix}-n5a`, trade_no: `${prefix}-T5a` }, true)
  await notify(test, { order_id: id(5), amount: '30.00', status: 'paid', notify_id: `${prefix}-n5b`, trade_no: `${prefix}-T5b` }, true)
  await notify(test, { order_id: id(6), amount: '1.00', status: '4', notify_id: `${prefix}-n6c` })
  await place(test, id(6), '1.00')
  await notify(test, { order_id: id(7), amount: '12.34', status: '1' })
  return [1, 2, 3, 4, 5, 6, 7].map(id)
}

/** A consistent copy of a live database (the service's connection stays open). */
export function copyDatabase (test: TestApp, path: string): string {
  test.store.sqlite.prepare('VACUUM INTO ?').run(path)
  return path
}

/** Every row of a table, in a stable order, read with a connection of its own. */
export function tableRows (dbPath: string, table: 'events' | 'orders' | 'projections', orderBy: string): unknown[] {
  const db = new SQLite(dbPath, { readonly: true, fileMustExist: true })
  try {
    return db.prepare(`SELECT * FROM ${table} ORDER BY ${orderBy}`).all()
  } finally {
    db.close()
  }
}

/** Opens a database for tampering, with its immutability triggers dropped. */
export function tamper (dbPath: string, change: (db: SQLite.Database) => void): void {
  const db = new SQLite(dbPath)
  try {
    db.exec('DROP TRIGGER IF EXISTS events_no_update; DROP TRIGGER IF EXISTS events_no_delete; DROP TRIGGER IF EXISTS events_no_replace')
    change(db)
  } finally {
    db.close()
  }
}

/**
 * Runs `paynotify keys` for the database of `env` (a temp dir) and reads back
 * the variables it wrote: the environment a local service runs with.
 */
export async function localKeysEnv (env: Record<string, string>): Promise<Record<string, string>> {
  const run = await runCli(['keys'], env)
  if (run.code !== 0) throw new Error(`keys failed: ${run.stderr}`)
  const text = readFileSync(join(dirname(env.PAYNOTIFY_DB!), 'paynotify.local-gateways.env'), 'utf8')
  return parseShellExports(text)
}

/** A developer's machine after `paynotify keys`: the CLI's environment, the service's variables, and the keys. */
export async function localMachine (t: Teardown): Promise<{ env: Record<string, string>, variables: Record<string, string>, keys: LocalGatewayKeys }> {
  const dbPath = join(tempDir(t), 'default.db')
  const env = { PAYNOTIFY_DB: dbPath, PAYNOTIFY_GENERIC_SECRET: testSecrets.genericSecret, PAYNOTIFY_ADMIN_TOKEN: testSecrets.adminToken }
  const variables = await localKeysEnv(env)
  const keys = JSON.parse(readFileSync(join(dirname(dbPath), 'paynotify.local-gateways.json'), 'utf8')) as LocalGatewayKeys
  return { env, variables, keys }
}

/** `export NAME='value'` lines as a POSIX shell reads them. */
export function parseShellExports (text: string): Record<string, string> {
  const variables: Record<string, string> = {}
  for (const line of text.split('\n').filter(l => l !== '')) {
    const match = /^export ([A-Z0-9_]+)='((?:[^']|'\\'')*)'$/.exec(line)
    if (match === null) throw new Error(`not a shell export: ${line.slice(0, 40)}`)
    variables[match[1]!] = match[2]!.replaceAll("'\\''", "'")
  }
  return variables
}

export interface Captured { method: string, path: string, headers: IncomingHttpHeaders, body: Buffer, at: number }

/** The ack each gateway expects, so a capturing server passes for the real thing. */
const acks: Record<string, { status: number, body: string }> = {
  generic: { status: 200, body: 'success' },
  alipay: { status: 200, body: 'success' },
  wechatpay: { status: 204, body: '' },
  stripe: { status: 200, body: '{"received":true}' },
  standard: { status: 204, body: '' },
  orders: { status: 201, body: '{}' }
}

/**
 * A server that records every request (with when it came) and acks it as the
 * gateway its path names expects, or answers what `answer` says.
 */
export async function captureServer (t: Teardown, answer?: (request: Captured) => { status: number, body: string }): Promise<{ url: string, requests: Captured[] }> {
  const requests: Captured[] = []
  const server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      const path = request.url ?? '/'
      const captured = { method: request.method ?? '', path, headers: request.headers, body: Buffer.concat(chunks), at: performance.now() }
      requests.push(captured)
      const ack = answer?.(captured) ?? acks[path.split('/').at(-1) ?? ''] ?? { status: 404, body: 'no such gateway' }
      response.writeHead(ack.status).end(ack.body)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests }
}
