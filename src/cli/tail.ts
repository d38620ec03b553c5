import { setTimeout as sleep } from 'node:timers/promises'
import type { Command } from 'commander'
import type { RecordedEvent } from '../orders/events.js'
import type { FoldOutcome, OrderState, OrderStatus } from '../orders/order-fold.js'
import { httpUrl, position, positiveNumber, resolveDbPath, storedSecrets, usageError, requireDatabase } from './options.js'
import type { LogSource } from './tail-source.js'

interface TailOptions {
  to?: URL
  db?: string
  after?: number
  json: boolean
  adminToken?: string
  interval: number
  timeout: number
}

/** One callback as tail shows it. */
export interface TailLine {
  position: number
  time: string
  gateway: string
  orderId: string
  type: string
  gatewayStatus: string | null
  deliveryId: string
  repeat: boolean
  /** For a repeat: the position of the first delivery of the notification or fact. */
  duplicateOf: number | null
  /** The order's status once this event is folded in; null for an event of no order (an endpoint's change). */
  status: OrderStatus | null
  replayOf: number | null
}

const pageSize = 200
// Enough for a busy sale's open orders; an order pushed out is folded again from its history when it reappears.
const maxCachedOrders = 10_000
const maxBackoffMs = 5_000

// Text from the log (a gateway's status string) goes to a terminal: no control characters.
// eslint-disable-next-line no-control-regex
const printable = (text: string): string => text.replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, '?')

export function formatTailLine (line: TailLine): string {
  const status = line.gatewayStatus === null ? '' : `  ${printable(line.gatewayStatus)}`
  const replay = line.replayOf === null ? '' : `  (replay of #${line.replayOf})`
  return `${line.time}  ${`#${line.position}`.padEnd(5)}  ${printable(line.gateway).padEnd(9)}  ${printable(line.orderId).padEnd(12)}  ${line.type.padEnd(16)}${status}` +
    `${line.repeat ? '  repeat' : ''}${line.status === null ? '' : `  → ${line.status}`}${replay}`
}

/**
 * Folds each order as its events pass by, so every line can say whether it
 * was a repeat and what status it left the order in. An order seen for the
 * first time is folded from its history up to that event.
 */
class OrderFolds {
  private readonly states = new Map<string, OrderState>()
  constructor (private readonly source: LogSource, private readonly fold: typeof import('../orders/order-fold.js')) {}

  async apply (event: RecordedEvent, signal: AbortSignal): Promise<{ outcome: FoldOutcome, status: OrderStatus }> {
    const { evolve, initialOrderState, orderView } = this.fold
    let state = this.states.get(event.streamId)
    if (state === undefined || state.lastPosition >= event.position) {
      state = initialOrderState(event.streamId)
      for (const earlier of await this.source.history(event.streamId, signal)) {
        if (earlier.position < event.position) state = evolve(state, earlier).state
      }
    }
    const { state: next, outcome } = evolve(state, event)
    this.states.delete(event.streamId)
    this.states.set(event.streamId, next)
    if (this.states.size > maxCachedOrders) this.states.delete(this.states.keys().next().value!)
    // Only the status is shown: whether the merchant registers orders changes anomalies, never the status.
    return { outcome, status: orderView(next, { ordersRegistered: false }).status }
  }
}

/** What the line says beside the type: the gateway's status, what changed of an endpoint, or what a review note resolved. */
function detailOf (event: RecordedEvent): string | null {
  switch (event.type) {
    case 'OrderPlaced': return null
    case 'EndpointChanged': return `${event.data.change} ${event.data.endpointId}`
    case 'ReviewNoteRecorded': return `resolves ${event.data.resolves.join(',') || 'nothing'}`
    default: return event.data.gatewayStatus
  }
}

function describe (error: unknown): string {
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' ? code : (error as Error).message
}

async function tail (command: Command, options: TailOptions): Promise<void> {
  const [{ FatalSourceError, databaseSource, httpSource }, fold] = await Promise.all([import('./tail-source.js'), import('../orders/order-fold.js')])
  const dbPath = await resolveDbPath(options.db)
  let source: LogSource
  if (options.to !== undefined) {
    const { loadConfig } = await import('../config.js')
    const adminToken = options.adminToken ?? loadConfig(process.env).secrets.adminToken ?? storedSecrets(dbPath).adminToken
    if (adminToken === undefined) usageError(command, 'no admin token: pass --admin-token, set PAYNOTIFY_ADMIN_TOKEN, or run where PAYNOTIFY_DB (or --db) has its secrets file')
    const base = new URL(options.to.href.endsWith('/') ? options.to.href : `${options.to.href}/`)
    source = httpSource(base, adminToken, options.timeout)
  } else {
    requireDatabase(command, dbPath)
    source = await databaseSource(dbPath)
  }

  const stop = new AbortController()
  const onSignal = (): void => { stop.abort() }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const info = (line: string): void => { process.stderr.write(`tail: ${line}\n`) }
  const folds = new OrderFolds(source, fold)
  let at = options.after
  let started = false
  let failure: string | undefined
  let backoff = options.interval
  try {
    while (!stop.signal.aborted) {
      try {
        if (at === undefined || !started) {
          at ??= await source.end(stop.signal)
          info(`following ${source.name} after position ${at} (Ctrl-C to stop)`)
          started = true
        }
        const events = await source.after(at, pageSize, stop.signal)
        if (failure !== undefined) {
          info(`reconnected, following after position ${at}`)
          failure = undefined
          backoff = options.interval
        }
        for (const event of events) {
          // An endpoint's change is no order's: shown with what changed, not folded.
          const { outcome, status } = event.type === 'EndpointChanged'
            ? { outcome: { kind: 'applied' } as FoldOutcome, status: null }
            : await folds.apply(event, stop.signal)
          const line: TailLine = {
            position: event.position,
            time: event.recordedAt,
            gateway: event.metadata.gateway,
            orderId: event.streamId,
            type: event.type,
            gatewayStatus: detailOf(event),
            deliveryId: event.metadata.deliveryId,
            repeat: outcome.kind === 'duplicate',
            duplicateOf: outcome.kind === 'duplicate' ? outcome.duplicateOf : null,
            status,
            replayOf: event.metadata.replayOf ?? null
          }
          process.stdout.write((options.json ? JSON.stringify(line) : formatTailLine(line)) + '\n')
          at = event.position
        }
        if (events.length < pageSize) await sleep(options.interval, undefined, { signal: stop.signal })
      } catch (error) {
        if (stop.signal.aborted) break
        if (error instanceof FatalSourceError) usageError(command, error.message)
        const reason = describe(error)
        if (failure !== reason) info(`${reason}; reconnecting${at === undefined ? '' : ` (after position ${at})`}`)
        failure = reason
        await sleep(backoff, undefined, { signal: stop.signal }).catch(() => {})
        backoff = Math.min(backoff * 2, maxBackoffMs)
      }
    }
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await source.close()
  }
  info(`stopped after position ${at ?? 0}`)
}

/**
 * `paynotify tail`: one line per callback as it is recorded, with the order's
 * status after it, read by log position from a running service's admin API
 * (--to) or from the local database. Ctrl-C or SIGTERM ends it with exit 0.
 */
export function registerTailCommand (program: Command): Command {
  return program.command('tail')
    .description('show callbacks as they arrive: time, gateway, order, event type, repeat, and the order status after each')
    .option('--to <url>', 'service root to follow, e.g. http://127.0.0.1:3000 (default: read the local database)', httpUrl)
    .option('--db <path>', 'database to follow without --to, and where its secrets file is (default: PAYNOTIFY_DB, else ./data/paynotify.db)')
    .option('--after <position>', 'start after this log position (0: the whole log; default: only what arrives from now on)', position)
    .option('--json', 'one JSON object per line', false)
    .option('--admin-token <token>', 'admin token for --to (default: PAYNOTIFY_ADMIN_TOKEN, else the secrets file)')
    .option('--interval <ms>', 'how often to look for new events once caught up', positiveNumber, 250)
    .option('--timeout <ms>', 'per-request timeout', positiveNumber, 10_000)
    .addHelpText('after', `
Each line: time recorded, #position, gateway, order, event type and the gateway's own
status, "repeat" when the delivery or fact was seen before, and → the order's status
after it. The log is followed by position: when the service goes away tail says so,
retries with backoff and resumes after the last position it showed.
Exit codes: 0 stopped by Ctrl-C or SIGTERM, 1 a failure, 2 bad usage (a wrong admin token).`)
    .action(async function (this: Command, options: TailOptions) {
      await tail(this, options)
    })
}
