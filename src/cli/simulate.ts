import { randomInt } from 'node:crypto'
import { InvalidArgumentError, type Command } from 'commander'
import { orderIdPattern } from '../orders/events.js'
import { formatMinorUnits, parseCurrency } from '../orders/money.js'
import { httpUrl, storedSecrets, warnSecretOnCommandLine } from './options.js'
import { formatSummary, startProgress } from './progress.js'
import type { DeliveryOutcome, Outgoing } from './simulate-deliver.js'
import { retryMinutes, simulatedGateways, type SimulatedGatewayName } from './simulate-gateways.js'
import type { ExpectedOrder, PlannedCallback } from './simulate-plan.js'

interface SimulateOptions {
  to: URL
  gateway: SimulatedGatewayName
  orders: number
  duplicates: number
  refunds: number
  shuffle: boolean
  concurrency: number
  secret?: string
  seed?: number
  prefix?: string
  currency?: string
  maxAttempts?: number
  minuteMs: number
  timeout: number
  verify: boolean
  adminToken?: string
  register: boolean
  merchantToken?: string
  json: boolean
}

interface Delivered extends Outgoing { callback: PlannedCallback, copy: number }

interface Mismatch { orderId: string, expected: ExpectedOrder, actual: Record<string, unknown> | null }

const integer = (min: number, max: number) => (value: string): number => {
  const n = Number(value)
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`)
  return n
}

const probability = (value: string): number => {
  const p = Number(value)
  if (value.trim() === '' || !Number.isFinite(p) || p < 0 || p > 1) throw new InvalidArgumentError('must be a probability from 0 to 1')
  return p
}

/** A service root gets /notify/<gateway>; a URL with a path is used as it is. */
function notifyUrl (to: URL, gateway: string): string {
  return to.pathname === '/' || to.pathname === '' ? new URL(`/notify/${gateway}`, to).href : to.href
}

const gatewayName = (value: string): SimulatedGatewayName => {
  if (!(simulatedGateways as readonly string[]).includes(value)) throw new InvalidArgumentError(`must be one of ${simulatedGateways.join(', ')}`)
  return value as SimulatedGatewayName
}

async function fetchOrder (base: URL, token: string, orderId: string, timeoutMs: number): Promise<Record<string, unknown> | null> {
  const response = await fetch(new URL(`/admin/orders/${encodeURIComponent(orderId)}`, base), {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(timeoutMs)
  })
  if (response.status === 404) return null
  if (response.status !== 200) throw new Error(`GET /admin/orders/${orderId} answered ${response.status}${response.status === 401 ? ' (check --admin-token)' : ''}`)
  return await response.json() as Record<string, unknown>
}

function matches (expected: ExpectedOrder, actual: Record<string, unknown> | null): boolean {
  return actual !== null &&
    actual.status === expected.status &&
    actual.paidAmount === expected.paidAmount &&
    actual.refundedAmount === expected.refundedAmount &&
    actual.currency === expected.currency &&
    JSON.stringify(actual.anomalies) === JSON.stringify(expected.anomalies)
}

/** Compares every order with the admin API, a few requests at a time. */
async function verifyOrders (base: URL, token: string, expected: readonly ExpectedOrder[], options: SimulateOptions): Promise<Mismatch[]> {
  const mismatches: Mismatch[] = []
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < expected.length) {
      const order = expected[next++]!
      const actual = await fetchOrder(base, token, order.orderId, options.timeout)
      if (!matches(order, actual)) mismatches.push({ orderId: order.orderId, expected: order, actual })
    }
  }
  await Promise.all(Array.from({ length: Math.min(options.concurrency, expected.length) }, worker))
  return mismatches.sort((a, b) => (a.orderId < b.orderId ? -1 : 1))
}

/** A mismatch that is the expected view plus unknown_order: the service has registrations, the simulated orders are not among them. */
function onlyUnknown ({ expected, actual }: Mismatch): boolean {
  return actual !== null && matches({ ...expected, anomalies: [...expected.anomalies, 'unknown_order'].sort() }, actual)
}

function money (minor: unknown, currency: string): string {
  return typeof minor === 'number' ? formatMinorUnits(minor, currency) : String(minor)
}

function printText (write: (line: string) => void, expected: readonly ExpectedOrder[], unacked: Array<DeliveryOutcome<Delivered>>, mismatches: Mismatch[] | null): void {
  const width = Math.max(5, ...expected.map(order => order.orderId.length))
  write(`${'order'.padEnd(width)}  ${'expected'.padEnd(18)}  ${'paid'.padStart(10)}  ${'refunded'.padStart(10)}  scenario`)
  for (const order of expected) {
    write(`${order.orderId.padEnd(width)}  ${order.status.padEnd(18)}  ${money(order.paidAmount, order.currency).padStart(10)}  ${money(order.refundedAmount, order.currency).padStart(10)}  ${order.scenario}`)
  }
  for (const outcome of unacked) {
    write(`unacked: ${outcome.item.callback.notifyId}${outcome.item.copy > 0 ? ' (duplicate)' : ''} after ${outcome.attempts} attempts, last answer ${outcome.answer}`)
  }
  for (const { orderId, expected: want, actual } of mismatches ?? []) {
    const got = actual === null
      ? 'not found'
      : `${String(actual.status)} paid ${money(actual.paidAmount, want.currency)} refunded ${money(actual.refundedAmount, want.currency)} anomalies ${JSON.stringify(actual.anomalies)}`
    write(`mismatch: ${orderId} expected ${want.status} paid ${money(want.paidAmount, want.currency)} refunded ${money(want.refundedAmount, want.currency)}, service has ${got}`)
  }
}

async function simulate (command: Command, options: SimulateOptions): Promise<void> {
  const [{ loadConfig }, { deliverAll }, { planSimulation }, { gatewayScenarios, simulatedGateway }, { signingKeys }, { registerOrders }] = await Promise.all([
    import('../config.js'), import('./simulate-deliver.js'), import('./simulate-plan.js'), import('./simulate-gateways.js'), import('../local-gateway-keys.js'), import('./simulate-register.js')
  ])
  const config = loadConfig(process.env)
  // Secrets the service generated on its first start, and the keys `paynotify keys` made, read (never generated) beside PAYNOTIFY_DB.
  const stored = storedSecrets(config.dbPath)
  const startedAt = new Date()
  const gateway = simulatedGateway(options.gateway, {
    genericSecret: options.secret ?? config.secrets.genericSecret ?? stored.genericSecret,
    gateways: options.gateway === 'generic' ? {} : signingKeys(config.dbPath, config.gateways)
  }, startedAt)
  if (options.secret !== undefined && options.gateway !== 'generic') command.error('--secret is the generic gateway\'s; the others sign with the keys of `paynotify keys`', { exitCode: 2 })
  if (typeof gateway === 'string') command.error(gateway, { exitCode: 2 })
  const adminToken = options.adminToken ?? config.secrets.adminToken ?? stored.adminToken
  if (options.verify && adminToken === undefined) command.error('--verify needs --admin-token, PAYNOTIFY_ADMIN_TOKEN or the secrets file', { exitCode: 2 })
  const merchantToken = options.register ? options.merchantToken ?? config.secrets.merchantToken ?? stored.merchantToken : undefined
  let currency: string
  try {
    // Alipay notifications are in yuan, always.
    currency = parseCurrency(options.currency ?? (options.gateway === 'alipay' ? 'CNY' : config.defaultCurrency))
  } catch {
    command.error(`--currency ${options.currency ?? ''} is not an ISO 4217 code`, { exitCode: 2 })
  }
  if (options.gateway === 'alipay' && currency !== 'CNY') command.error('--currency: Alipay notifications are in CNY', { exitCode: 2 })
  const seed = options.seed ?? randomInt(1, 2 ** 31)
  const prefix = options.prefix ?? `sim-${seed.toString(36)}`
  if (!orderIdPattern.test(`${prefix}-${'0'.repeat(Math.max(4, String(options.orders).length))}`)) {
    command.error('--prefix must be short and use only A-Z a-z 0-9 _ . : -', { exitCode: 2 })
  }

  const url = notifyUrl(options.to, options.gateway)
  const schedule = retryMinutes[options.gateway]
  const maxAttempts = options.maxAttempts ?? schedule.length + 1
  const plan = planSimulation({ ...options, seed, prefix, currency, scenarios: gatewayScenarios[options.gateway] })
  const duplicates = plan.deliveries.length - plan.callbacks.length
  // stdout carries the result (the table, or only JSON with --json); progress and log lines go to stderr then.
  const out = options.json ? process.stderr : process.stdout
  const log = (line: string): void => { out.write(`${line}\n`) }
  log(`simulate: ${options.gateway}, ${plan.expected.length} orders (seed ${seed}), ${plan.callbacks.length} callbacks + ${duplicates} duplicates = ${plan.deliveries.length} deliveries${options.shuffle ? ', shuffled' : ''} → ${url}`)
  if (merchantToken === undefined) {
    log(`simulate: orders not registered (${options.register ? 'no merchant token' : '--no-register'}); on a service with registered orders their callbacks read unknown_order`)
  } else {
    const refused = await registerOrders(options.to, merchantToken, plan.expected, { concurrency: options.concurrency, timeoutMs: options.timeout })
    if (refused.length > 0) {
      for (const line of refused) log(`not registered: ${line}`)
      log(`simulate: ${refused.length} of ${plan.expected.length} orders could not be registered; nothing was delivered`)
      process.exitCode = 1
      return
    }
    log(`simulate: registered ${plan.expected.length} orders with POST /orders`)
  }

  // A repeat delivery is the same notification: both copies share one request builder.
  const requests = new Map(plan.callbacks.map(callback => [callback, gateway.request(callback)]))
  const progress = startProgress({ label: 'simulate', unit: 'deliveries', total: plan.deliveries.length })
  let attempts = 0
  let outcomes: Array<DeliveryOutcome<Delivered>>
  try {
    outcomes = await deliverAll(plan.deliveries.map((delivery): Delivered => ({ ...delivery, request: requests.get(delivery.callback)! })), {
      url,
      concurrency: options.concurrency,
      maxAttempts,
      retryMinutes: schedule,
      minuteMs: options.minuteMs,
      timeoutMs: options.timeout,
      isAck: gateway.isAck,
      onAttempt: ({ settled }) => {
        attempts++
        if (settled) progress.increment()
      }
    })
  } finally {
    progress.stop()
  }
  const elapsedMs = progress.elapsedMs
  const seconds = elapsedMs / 1000
  const acked = outcomes.filter(outcome => outcome.acked).length
  const unacked = outcomes.filter(outcome => !outcome.acked)
  const retried = outcomes.filter(outcome => outcome.attempts > 1)
  const summary = {
    orders: plan.expected.length,
    callbacks: plan.callbacks.length,
    duplicates,
    deliveries: plan.deliveries.length,
    requests: attempts,
    acked,
    unacked: unacked.length,
    retried: retried.length,
    retries: attempts - plan.deliveries.length,
    seconds: Number(seconds.toFixed(3)),
    deliveriesPerSecond: Number((plan.deliveries.length / Math.max(seconds, 0.001)).toFixed(1))
  }

  const mismatches = options.verify ? await verifyOrders(options.to, adminToken!, plan.expected, options) : null
  const ok = unacked.length === 0 && (mismatches === null || mismatches.length === 0)
  if (options.json) {
    process.stdout.write(JSON.stringify({
      ok,
      gateway: options.gateway,
      seed,
      url,
      summary,
      orders: plan.expected,
      unacked: unacked.map(outcome => ({ notifyId: outcome.item.callback.notifyId, orderId: outcome.item.callback.orderId, duplicate: outcome.item.copy > 0, attempts: outcome.attempts, answer: outcome.answer })),
      verified: mismatches === null ? null : { orders: plan.expected.length, mismatches }
    }, null, 2) + '\n')
  } else {
    printText(log, plan.expected, unacked, mismatches)
  }
  // The rate covers the deliveries only, not the verification after them.
  log(formatSummary('simulate', plan.deliveries.length, 'deliveries', elapsedMs,
    `${acked} acked, ${unacked.length} unacked, ${summary.retried} retried (${summary.retries} retries, ${attempts} requests)`))
  if (mismatches !== null) log(`simulate: verified ${plan.expected.length} orders with /admin/orders: ${plan.expected.length - mismatches.length} match, ${mismatches.length} differ`)
  if (merchantToken === undefined && mismatches !== null && mismatches.length > 0 && mismatches.every(onlyUnknown)) {
    log('simulate: the service checks callbacks against registered orders (some order was registered with POST /orders), so these are unknown_order: let simulate register the simulated orders first, as a merchant would (a merchant token, without --no-register)')
  }
  if (!ok) process.exitCode = 1
}

/**
 * `paynotify simulate --to URL [--gateway NAME]`: a fake gateway. Plays N
 * orders as that gateway's real payloads, signed with the local keys (the
 * generic secret, or what `paynotify keys` made), adds duplicate deliveries,
 * shuffles them, sends them with bounded concurrency and retries every
 * unacked one on the gateway's documented schedule, compressed. Exit 0 when
 * everything was acked (and, with --verify, every order is in the state it
 * meant), 1 otherwise, 2 bad usage.
 */
export function registerSimulateCommand (program: Command): Command {
  return program.command('simulate')
    .description('act as a payment gateway: send its signed callbacks for N orders (payments, refunds, closes, failures; duplicates, shuffled), retry on its schedule until acked, print the expected states')
    .requiredOption('--to <url>', 'service root (http://127.0.0.1:3000) or full notify URL', httpUrl)
    .option('--gateway <name>', `the gateway to play: ${simulatedGateways.join(', ')}`, gatewayName, 'generic')
    .option('--orders <n>', 'number of orders', integer(1, 1_000_000), 20)
    .option('--duplicates <p>', 'probability that a callback is delivered twice', probability, 0.1)
    .option('--refunds <p>', 'probability that an order is refunded (half partially, half fully)', probability, 0.3)
    .option('--shuffle', 'deliver in random order (refund before payment, failed after paid …)', false)
    .option('--concurrency <n>', 'requests in flight at most', integer(1, 1024), 8)
    .option('--secret <secret>', 'generic gateway secret (default: PAYNOTIFY_GENERIC_SECRET, else the secrets file beside PAYNOTIFY_DB)')
    .option('--seed <n>', 'random seed, to repeat a run (default: random, printed)', integer(0, 2 ** 32 - 1))
    .option('--prefix <id>', 'order id prefix (default: sim-<seed>)')
    .option('--currency <code>', 'ISO 4217 currency (default: PAYNOTIFY_DEFAULT_CURRENCY; alipay: CNY)')
    .option('--max-attempts <n>', "attempts per delivery before giving up (default: the gateway's, e.g. Alipay 8, WeChat Pay 16)", integer(1, 100))
    .option('--minute-ms <ms>', "milliseconds one minute of the gateway's retry schedule lasts", integer(0, 60_000), 1)
    .option('--timeout <ms>', 'per-request timeout', integer(1, 600_000), 10_000)
    .option('--verify', 'afterwards, compare every order with GET /admin/orders/:id (exit 1 on any difference)', false)
    .option('--admin-token <token>', 'admin token for --verify (default: PAYNOTIFY_ADMIN_TOKEN, else the secrets file)')
    .option('--merchant-token <token>', 'register the orders first with POST /orders, as a checkout does (default: PAYNOTIFY_MERCHANT_TOKEN, else the secrets file; none: not registered)')
    .option('--no-register', 'do not register the orders first')
    .option('--json', 'print the result as JSON (summary, expected orders, unacked deliveries, mismatches)', false)
    .addHelpText('after', `
Each gateway's own payloads and retry schedule (gaps between attempts):
  generic    the seed's signed form (as the PHP sender): 4m, 10m, 10m, 1h, 2h, 6h, 15h
  alipay     trade_status_sync forms, RSA2: 4m, 10m, 10m, 1h, 2h, 6h, 15h
  wechatpay  APIv3 envelopes, resource sealed under the APIv3 key (payments and refunds
             only; a refund may be ABNORMAL first): 15s, 15s, 30s, 3m, 10m, 20m, 30m,
             30m, 30m, 60m, 3h, 3h, 3h, 6h, 6h
  stripe     payment_intent.* and charge.refunded events: exponential over up to 3 days
             (1m doubling to 2048m)
  standard   payment.* events: 5s, 5m, 30m, 2h, 5h, 10h, 10h (the spec's example)
Every gateway but generic signs with the keys \`paynotify keys\` keeps beside PAYNOTIFY_DB
(a Stripe or Standard Webhooks secret set in the environment wins); start the service
with the variables it prints.`)
    .action(async function (this: Command, options: SimulateOptions) {
      if (options.secret !== undefined) warnSecretOnCommandLine('--secret', 'PAYNOTIFY_GENERIC_SECRET')
      if (options.adminToken !== undefined) warnSecretOnCommandLine('--admin-token', 'PAYNOTIFY_ADMIN_TOKEN')
      await simulate(this, options)
    })
}
