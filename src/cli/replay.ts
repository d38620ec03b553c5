import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Command } from 'commander'
import { formatMinorUnits } from '../orders/money.js'
import type { OrderView } from '../orders/order-fold.js'
import type { OrderRow } from '../orders/queries.js'
import { inputName, unreadableInput, withRereadableInput } from './input-file.js'
import { httpUrl, positiveNumber, publicKey, refuseWhileServing, resolveDbPath, storedSecrets, usageError, warnSecretOnCommandLine } from './options.js'
import { formatSummary, startProgress } from './progress.js'

interface ReplayOptions {
  db?: string
  json: boolean
  to?: URL
  speed?: number
  secret?: string
  merchantToken?: string
  timeout: number
  publicKey?: string
}

const info = (line: string): void => { process.stderr.write(`${line}\n`) }

async function refuseBrokenFile (file: string, error: unknown): Promise<void> {
  const { ExportLineError } = await import('../event-log/ndjson.js')
  if (!(error instanceof ExportLineError)) throw error
  process.stderr.write(`paynotify replay: ${inputName(file)} ${error.message}; nothing was replayed\n`)
  process.exitCode = 1
}

async function hasEvents (dbPath: string): Promise<boolean> {
  if (!existsSync(dbPath) || statSync(dbPath).size === 0) return false
  const { openDatabase } = await import('../db/database.js')
  const database = openDatabase(dbPath, { readonly: true })
  try {
    return (database.sqlite.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'events'").pluck().get() as number) > 0 &&
      database.sqlite.prepare('SELECT 1 FROM events LIMIT 1').get() !== undefined
  } finally {
    await database.close()
  }
}

function money (minor: number, currency: string | null): string {
  return currency === null ? String(minor) : formatMinorUnits(minor, currency)
}

function printTable (orders: OrderView[]): void {
  const header = ['order', 'status', 'paid', 'refunded', 'expected', 'currency', 'events', 'dups', 'anomalies']
  const rows = orders.map(o => [
    o.orderId, o.status, money(o.paidAmount, o.currency), money(o.refundedAmount, o.currency),
    o.expectedAmount === null ? '-' : money(o.expectedAmount, o.expectedCurrency), o.currency ?? '-',
    String(o.version), String(o.duplicateCount), o.anomalies.join(',') || '-'
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => r[i]!.length)))
  const numeric = new Set([2, 3, 4, 6, 7])
  const line = (cells: string[]): string => cells.map((c, i) => numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)).join('  ').trimEnd()
  process.stdout.write([line(header), ...rows.map(line)].join('\n') + '\n')
}

async function replayLocally (command: Command, file: string, options: ReplayOptions): Promise<void> {
  const [{ openDatabase }, { rowToView }, { importFile }, { rebuildDatabase }] = await Promise.all([
    import('../db/database.js'), import('../orders/queries.js'), import('./import.js'), import('./rebuild.js')
  ])
  const keep = options.db !== undefined
  if (keep) {
    if (await hasEvents(options.db!)) usageError(command, `${options.db} already holds events: replay needs a fresh database (use \`paynotify import\` to append)`)
    refuseWhileServing(command, options.db!, false)
  }
  const dir = keep ? undefined : mkdtempSync(join(tmpdir(), 'paynotify-replay-'))
  const dbPath = options.db ?? join(dir!, 'replay.db')
  try {
    try {
      await withRereadableInput(file, async path => await importFile(path, dbPath, info, { publicKey: options.publicKey }))
    } catch (error) {
      await refuseBrokenFile(file, error)
      return
    }
    const rebuilt = await rebuildDatabase(dbPath, process.stderr)
    const database = openDatabase(dbPath, { readonly: true })
    let orders: OrderView[]
    try {
      orders = (database.sqlite.prepare('SELECT * FROM orders ORDER BY order_id').all() as OrderRow[]).map(rowToView)
    } finally {
      await database.close()
    }
    if (options.json) process.stdout.write(JSON.stringify(orders, null, 2) + '\n')
    else printTable(orders)
    info(`replay: ${rebuilt.events} events → ${orders.length} orders in ${keep ? dbPath : 'a temporary database (removed; pass --db to keep it)'}`)
  } finally {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  }
}

/** `path` is what is read, `file` what the user named (for messages). */
async function replayTo (file: string, path: string, to: URL, options: ReplayOptions): Promise<void> {
  const [{ loadConfig }, { checkExportFile, readCheckedRows }, { createSender, prepareReplay, recordedRequests }, { describeCoverage }, { signingKeys }] = await Promise.all([
    import('../config.js'), import('./export-file.js'), import('./replay-deliver.js'), import('../event-log/ndjson.js'), import('../local-gateway-keys.js')
  ])
  const config = loadConfig(process.env)
  const dbPath = await resolveDbPath(options.db)
  const stored = storedSecrets(dbPath)
  const keys = {
    genericSecret: options.secret ?? config.secrets.genericSecret ?? stored.genericSecret,
    merchantToken: options.merchantToken ?? config.secrets.merchantToken ?? stored.merchantToken,
    gateways: signingKeys(dbPath, config.gateways)
  }
  const checkOptions = { publicKey: options.publicKey }
  try {
    info(describeCoverage(await checkExportFile(path, undefined, checkOptions)))
  } catch (error) {
    await refuseBrokenFile(file, error)
    return
  }
  const base = new URL(to.href.endsWith('/') ? to.href : `${to.href}/`)
  const sender = createSender(base, options.timeout)
  const progress = startProgress({ label: 'replay', unit: 'requests' })
  const skipped = new Map<string, number>()
  let sent = 0
  let refused = 0
  let previousAt: number | undefined
  const say = (line: string): void => { process.stdout.write(`${line}\n`) }
  try {
    for await (const request of recordedRequests(readCheckedRows(path, checkOptions))) {
      const plan = prepareReplay(request, keys, new Date())
      if (plan.prepared === undefined) {
        skipped.set(plan.skip!, (skipped.get(plan.skip!) ?? 0) + 1)
        continue
      }
      const at = Date.parse(request.metadata.receivedAt)
      if (options.speed !== undefined && previousAt !== undefined && at > previousAt) await sleep((at - previousAt) / options.speed)
      if (!Number.isNaN(at)) previousAt = at
      const answer = await sender.send(plan.prepared)
      sent++
      const ok = answer.status >= 200 && answer.status < 300
      if (!ok) refused++
      progress.increment()
      const body = answer.body.replace(/\s+/g, ' ').slice(0, 200)
      if (options.json) {
        say(JSON.stringify({ replayOf: request.position, orderId: request.orderId, type: request.type, path: plan.prepared.path, status: answer.status, body, ok }))
      } else {
        say(`position ${request.position}  ${request.orderId}  ${request.type}  → ${answer.status} ${body}`)
      }
    }
  } finally {
    progress.stop()
    sender.close()
  }
  const skips = [...skipped].map(([reason, n]) => `${n} × ${reason}`)
  const skippedCount = [...skipped.values()].reduce((a, b) => a + b, 0)
  const details = `${sent - refused} acked, ${refused} refused, ${skippedCount} skipped${skips.length > 0 ? ` (${skips.join('; ')})` : ''} → ${base.href}`
  ;(options.json ? process.stderr : process.stdout).write(formatSummary('replay', sent, 'requests', progress.elapsedMs, details) + '\n')
  if (refused > 0) process.exitCode = 1
}

/**
 * `paynotify replay file.ndjson`: rebuild the file's orders in a fresh local
 * database and print their states; with --to, re-deliver the recorded
 * callbacks to a running service instead, each re-signed with the local
 * identity of its gateway (replay-resign.ts).
 */
export function registerReplayCommand (program: Command): Command {
  return program.command('replay')
    .description('replay an export: into a fresh local database, printing the resulting order states; or, with --to, re-deliver its recorded callbacks to a running service')
    .argument('<file>', 'NDJSON export (paynotify export, the admin NDJSON stream, events/*.ndjson); - reads stdin')
    .option('--db <path>', 'local mode: keep the fresh database in this file (default: a temporary file, removed); --to mode: where the secrets and local gateway keys are')
    .option('--json', 'local mode: print the order states as JSON; --to mode: one JSON line per answer', false)
    .option('--to <url>', 'service root to re-deliver to, e.g. http://127.0.0.1:3000', httpUrl)
    .option('--speed <n>', 'keep the recorded spacing between callbacks, n times faster (default: no waiting)', positiveNumber)
    .option('--secret <secret>', 'generic gateway secret to re-sign with (default: PAYNOTIFY_GENERIC_SECRET, else the secrets file beside --db / PAYNOTIFY_DB)')
    .option('--merchant-token <token>', 'register recorded orders (OrderPlaced) with POST /orders (default: PAYNOTIFY_MERCHANT_TOKEN, else the secrets file)')
    .option('--timeout <ms>', 'per-request timeout', positiveNumber, 10_000)
    .option('--public-key <key>', 'refuse the file unless every line is covered by a checkpoint signed with this key (`paynotify public-key` on the service prints it)', publicKey)
    .addHelpText('after', `
Either mode first checks the whole file: every line's hash and its event against
events/schemas, the chain between lines, and the signed checkpoints it carries (with
--public-key, every line must be covered by one signed with that key). A broken file is
refused with its line named, and nothing is replayed.
Local mode: the file is imported into a fresh database, the projections rebuilt, and the
order states printed (a table; --json for scripts).
--to mode: each recorded request is sent again in log order with the header
x-paynotify-replay-of: <position> (the service takes it with PAYNOTIFY_ACCEPT_REPLAYS=1),
re-signed with the local identity of its gateway, signature times moved to now and
delivery ids kept: generic with --secret; alipay, wechatpay, stripe and standard with
the keys \`paynotify keys\` keeps beside --db / PAYNOTIFY_DB (a Stripe or Standard
Webhooks secret set in the environment wins). Alipay's app_id and seller_id become the
local ones; a WeChat Pay resource is rebuilt from the recorded facts and sealed under
the local APIv3 key. A callback whose gateway has no local identity is skipped and named.
Exit codes: 0 ok, 1 the file is broken or a delivery was refused, 2 bad usage.`)
    .action(async function (this: Command, file: string, options: ReplayOptions) {
      const unreadable = unreadableInput(file)
      if (unreadable !== undefined) usageError(this, unreadable)
      if (options.secret !== undefined) warnSecretOnCommandLine('--secret', 'PAYNOTIFY_GENERIC_SECRET')
      if (options.merchantToken !== undefined) warnSecretOnCommandLine('--merchant-token', 'PAYNOTIFY_MERCHANT_TOKEN')
      if (options.to === undefined) {
        if (options.speed !== undefined || options.secret !== undefined || options.merchantToken !== undefined) {
          usageError(this, '--speed, --secret and --merchant-token need --to')
        }
        await replayLocally(this, file, options)
      } else {
        const to = options.to
        await withRereadableInput(file, async path => { await replayTo(file, path, to, options) })
      }
    })
}
