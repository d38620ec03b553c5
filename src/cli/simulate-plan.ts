import { signGenericParams } from '../gateways/generic.js'
import { formatMinorUnits } from '../orders/money.js'
import { OrderStatus } from '../orders/order-fold.js'

/**
 * The pure half of `paynotify simulate`: from a seed, what a gateway will
 * send for N orders and what state each order must end in. No I/O and no
 * clock, so one seed always gives one plan.
 */

export interface PlanOptions {
  orders: number
  /** Probability that a callback is delivered a second time. */
  duplicates: number
  /** Probability that an order is refunded (half of them partially, half fully). */
  refunds: number
  shuffle: boolean
  seed: number
  /** Order ids are `${prefix}-0001` …; a fresh prefix keeps runs against one server apart. */
  prefix: string
  currency: string
}

/** The seed sender's numeric status codes. */
export const GenericStatus = { Pending: '0', Paid: '1', Failed: '2', Refunded: '3' } as const
export type GenericStatus = typeof GenericStatus[keyof typeof GenericStatus]

export interface PlannedCallback {
  notifyId: string
  orderId: string
  status: GenericStatus
  /** The parameters without `timestamp` and `sign`: those are added at each send (signedGenericBody). */
  params: Record<string, string>
}

export interface PlannedDelivery {
  callback: PlannedCallback
  /** 0 for the first delivery of a callback, 1 for the duplicate the gateway sends anyway. */
  copy: number
}

export interface ExpectedOrder {
  orderId: string
  /** What happens to the order, e.g. "failed, paid, refund partial". */
  scenario: string
  /** Minor units: what the order costs (what the merchant registers). */
  amount: number
  status: OrderStatus
  paidAmount: number
  refundedAmount: number
  currency: string
  anomalies: string[]
}

export interface SimulationPlan {
  callbacks: PlannedCallback[]
  deliveries: PlannedDelivery[]
  expected: ExpectedOrder[]
}

/** mulberry32: a tiny seeded PRNG, good enough to pick scenarios reproducibly. */
export function seededRandom (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), a | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * The form body exactly as the seed's PHP sender builds it: ksort, sign the
 * sorted `k=v` pairs (empty values left out), then http_build_query with
 * `sign` appended last.
 */
export function signedGenericBody (params: Record<string, string>, secret: string): string {
  const sorted = Object.fromEntries(Object.entries(params).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
  return new URLSearchParams({ ...sorted, sign: signGenericParams(sorted, secret) }).toString()
}

/** Builds every callback for every order, the delivery order, and the state each order must reach. */
export function planSimulation (options: PlanOptions): SimulationPlan {
  const random = seededRandom(options.seed)
  const between = (min: number, max: number): number => min + Math.floor(random() * (max - min + 1))
  const digits = Math.max(4, String(options.orders).length)
  const callbacks: PlannedCallback[] = []
  const expected: ExpectedOrder[] = []

  for (let i = 1; i <= options.orders; i++) {
    const orderId = `${options.prefix}-${String(i).padStart(digits, '0')}`
    const amount = between(100, 99_999)
    const steps: string[] = []
    let n = 0
    const add = (status: GenericStatus, value: number, extra: Record<string, string>): void => {
      n++
      const notifyId = `${orderId}-n${n}`
      const params = {
        order_id: orderId,
        amount: formatMinorUnits(value, options.currency),
        currency: options.currency,
        status,
        notify_id: notifyId,
        ...extra
      }
      callbacks.push({ notifyId, orderId, status, params })
    }

    const path = random()
    if (path < 0.2) {
      steps.push('pending')
      add(GenericStatus.Pending, amount, { trade_no: `${orderId}-T1` })
    } else if (path < 0.4) {
      // A declined first attempt, then a successful second one: a late "failed" must not win.
      steps.push('failed')
      add(GenericStatus.Failed, amount, { trade_no: `${orderId}-T0` })
    }
    steps.push('paid')
    add(GenericStatus.Paid, amount, { trade_no: `${orderId}-T1` })

    let refunded = 0
    if (random() < options.refunds) {
      const partial = between(1, amount - 1)
      const full = random() < 0.5
      if (full && random() < 0.5) {
        steps.push('refund full')
        add(GenericStatus.Refunded, amount, { trade_no: `${orderId}-T1`, refund_no: `${orderId}-R1` })
        refunded = amount
      } else {
        steps.push('refund partial')
        add(GenericStatus.Refunded, partial, { trade_no: `${orderId}-T1`, refund_no: `${orderId}-R1` })
        refunded = partial
        if (full) {
          steps.push('refund rest')
          add(GenericStatus.Refunded, amount - partial, { trade_no: `${orderId}-T1`, refund_no: `${orderId}-R2` })
          refunded = amount
        }
      }
    }
    expected.push({
      orderId,
      scenario: steps.join(', '),
      amount,
      status: refunded >= amount ? OrderStatus.Refunded : refunded > 0 ? OrderStatus.PartiallyRefunded : OrderStatus.Paid,
      paidAmount: amount,
      refundedAmount: refunded,
      currency: options.currency,
      anomalies: []
    })
  }

  const deliveries: PlannedDelivery[] = []
  for (const callback of callbacks) {
    deliveries.push({ callback, copy: 0 })
    if (random() < options.duplicates) deliveries.push({ callback, copy: 1 })
  }
  if (options.shuffle) {
    for (let i = deliveries.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1))
      const swap = deliveries[i]!
      deliveries[i] = deliveries[j]!
      deliveries[j] = swap
    }
  }
  return { callbacks, deliveries, expected }
}
