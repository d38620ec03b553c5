import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { CommitReport } from './event-log/event-log.js'
import { attemptResults, type AttemptResult } from './outbound/dispatcher.js'

/**
 * What became of a callback to a configured gateway. `duplicate`: every
 * event it carried repeated a delivery already in the log (a gateway's
 * retry), acked like the original. `refused_signature`: 401 (a bad, missing
 * or stale signature, or a notification for another merchant);
 * `refused_malformed`: any other 4xx (a malformed field, a body too large or
 * of the wrong type, a replay header on a service that takes none);
 * `store_unavailable`: 503, nothing stored and the gateway retries;
 * `internal_error`: any other 5xx (a bug: its details are in the log).
 */
export const callbackOutcomes = ['accepted', 'duplicate', 'refused_signature', 'refused_malformed', 'store_unavailable', 'internal_error'] as const
export type CallbackOutcome = typeof callbackOutcomes[number]

/** The route label of a request no route matched: the raw URL never becomes a label. */
export const unmatchedRoute = 'unmatched'

export interface MetricsSources {
  /** The configured gateways' names: the only values the gateway label takes. */
  gateways: Iterable<string>
  /** The position of the last committed event. */
  logPosition: () => number
  ordersNeedingReview: () => Promise<number>
  /** Deliveries pending or waiting for a retry; absent when the service runs no outbound delivery. */
  activeDeliveries?: (() => number) | undefined
}

// Seconds: from a cached admin read (~0.5 ms) to a request that waited out a busy lock (PAYNOTIFY_BUSY_TIMEOUT_MS).
const requestBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
// Seconds: an fsync takes ~0.5–4 ms here; a lock wait up to the busy timeout.
const commitBuckets = [0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1, 2.5, 5]
// Events: powers of two up to the default PAYNOTIFY_BATCH_MAX (1024), then coarser up to its largest (65536).
const batchBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536]

let processRegistry: Registry | undefined

/**
 * prom-client's default process and runtime metrics, collected once per
 * process: they describe the process, not an app, and each collection keeps
 * an event-loop sampler and a GC observer running for good.
 */
function processMetrics (): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry()
    collectDefaultMetrics({ register: processRegistry })
  }
  return processRegistry
}

/**
 * The service's Prometheus metrics, in a registry of their own (never
 * prom-client's global one), so each app counts for itself: the tests build
 * many apps in one process. Label values come only from closed lists (the
 * configured gateways, the outcomes, route templates), so no request can
 * add a series. Counters of every gateway and outcome start at 0.
 */
export class Metrics {
  /** This app's own metrics; a scrape also shows the process's (processMetrics). */
  readonly registry = new Registry()
  readonly #exposed: Registry
  readonly #callbacks = new Map<string, Counter.Internal>()
  readonly #requests: Histogram<'route' | 'method' | 'status_class'>
  readonly #requestSeries = new Map<string, Histogram.Internal<'route' | 'method' | 'status_class'>>()
  readonly #batchEvents: Histogram
  readonly #commitSeconds: Histogram
  readonly #attempts: Counter<'result'> | undefined

  constructor (sources: MetricsSources) {
    const registers = [this.registry]
    const callbacks = new Counter({
      name: 'paynotify_callbacks_total',
      help: 'Callbacks to configured gateways, by what became of them',
      labelNames: ['gateway', 'outcome'] as const,
      registers
    })
    for (const gateway of sources.gateways) {
      for (const outcome of callbackOutcomes) {
        const series = callbacks.labels(gateway, outcome)
        series.inc(0)
        this.#callbacks.set(`${gateway} ${outcome}`, series)
      }
    }
    this.#requests = new Histogram({
      name: 'paynotify_http_request_duration_seconds',
      help: 'HTTP requests by route template (unmatched: no route), method and status class, from arrival to the end of the answer',
      labelNames: ['route', 'method', 'status_class'] as const,
      buckets: requestBuckets,
      registers
    })
    this.#batchEvents = new Histogram({
      name: 'paynotify_append_batch_events',
      help: 'Events per group-committed transaction of the event log',
      buckets: batchBuckets,
      registers
    })
    this.#commitSeconds = new Histogram({
      name: 'paynotify_commit_duration_seconds',
      help: 'Time of each event log transaction, from BEGIN IMMEDIATE to the end of COMMIT (lock wait, inserts, projection, fsync)',
      buckets: commitBuckets,
      registers
    })
    const { logPosition, ordersNeedingReview, activeDeliveries } = sources
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'paynotify_event_log_position',
      help: 'Position of the last committed event of the log',
      registers,
      collect () { this.set(logPosition()) }
    })
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'paynotify_orders_needing_review',
      help: 'Orders flagged needs_review (an anomaly no review note has resolved: a mismatched amount, a double payment, …)',
      registers,
      async collect () { this.set(await ordersNeedingReview()) }
    })
    if (activeDeliveries !== undefined) {
      this.#attempts = new Counter({
        name: 'paynotify_outbound_attempts_total',
        help: 'Delivery attempts to the merchant\'s endpoints, by the state each left its delivery in (failed: a retry is due)',
        labelNames: ['result'] as const,
        registers
      })
      for (const result of attemptResults) this.#attempts.labels(result).inc(0)
      // eslint-disable-next-line no-new
      new Gauge({
        name: 'paynotify_outbound_deliveries_pending',
        help: 'Outbound deliveries not done yet: due, or failed and waiting for a retry',
        registers,
        collect () { this.set(activeDeliveries()) }
      })
    }
    this.#exposed = Registry.merge([processMetrics(), this.registry])
  }

  /** Counts a callback to a configured gateway; a name that is not one is ignored, never a new series. */
  callback (gateway: string, outcome: CallbackOutcome): void {
    this.#callbacks.get(`${gateway} ${outcome}`)?.inc()
  }

  /** Observes one answered request; `route` is its route template, or unmatchedRoute. */
  request (route: string, method: string, statusCode: number, seconds: number): void {
    const statusClass = `${Math.floor(statusCode / 100)}xx`
    const key = `${route} ${method} ${statusClass}`
    let series = this.#requestSeries.get(key)
    if (series === undefined) {
      series = this.#requests.labels(route, method, statusClass)
      this.#requestSeries.set(key, series)
    }
    series.observe(seconds)
  }

  /** Observes one committed event log transaction (EventLog, WriterThread observeCommits). */
  commit (report: CommitReport): void {
    this.#batchEvents.observe(report.events)
    this.#commitSeconds.observe(report.seconds)
  }

  /** Counts one recorded delivery attempt. */
  deliveryAttempt (result: AttemptResult): void {
    this.#attempts?.labels(result).inc()
  }

  get contentType (): string {
    return this.#exposed.contentType
  }

  /** The text exposition format of this app's and the process's metrics, every collect() run. */
  async render (): Promise<string> {
    return await this.#exposed.metrics()
  }
}
