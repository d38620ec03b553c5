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
  /** What the simulated gateway can report. */
  scenarios: GatewayScenarios
}

/** What a callback reports, whatever the gateway's words for it. */
export const Step = {
  Pending: 'pending',
  Paid: 'paid',
  Failed: 'failed',
  Closed: 'closed',
  Refunded: 'refunded',
  RefundFailed: 'refund_failed'
} as const
export type Step = typeof Step[keyof typeof Step]

/** What a gateway can report besides payments and refunds (simulate-gateways.ts says which for each). */
export interface GatewayScenarios {
  pending: boolean
  failed: boolean
  closed: boolean
  /** A refund that fails first and succeeds later (WeChat Pay's REFUND.ABNORMAL). */
  refundFailed: boolean
}

export interface PlannedCallback {
  /** Unique per callback; each gateway derives its delivery id from it. */
  notifyId: string
  orderId: string
  step: Step
  /** Minor units: the payment's amount, or this refund's alone. */
  amount: number
  /** Minor units: what the order costs. */
  total: number
  /** Refunds: minor units refunded on the order once this one is done (Alipay's refund_fee, Stripe's amount_refunded). */
  refundedTotal: number
  currency: string
  transactionId: string
  refundId: string | null
  /** The gateway's clock, in minutes after the simulation started: its payment, refund and close times. */
  minute: number
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

/** Builds every callback for every order, the delivery order, and the state each order must reach. */
export function planSimulation (options: PlanOptions): SimulationPlan {
  const random = seededRandom(options.seed)
  const between = (min: number, max: number): number => min + Math.floor(random() * (max - min + 1))
  const digits = Math.max(4, String(options.orders).length)
  const { scenarios, currency } = options
  const callbacks: PlannedCallback[] = []
  const expected: ExpectedOrder[] = []

  for (let i = 1; i <= options.orders; i++) {
    const orderId = `${options.prefix}-${String(i).padStart(digits, '0')}`
    const total = between(100, 99_999)
    const steps: string[] = []
    let n = 0
    let refunded = 0
    const add = (step: Step, amount: number, transaction: string, refund: string | null = null, label: string = step): void => {
      n++
      steps.push(label)
      callbacks.push({
        notifyId: `${orderId}-n${n}`,
        orderId,
        step,
        amount,
        total,
        refundedTotal: refunded,
        currency,
        transactionId: `${orderId}-${transaction}`,
        refundId: refund,
        minute: n
      })
    }

    const path = random()
    if (scenarios.closed && path < 0.1) {
      // Never paid: the buyer walked away and the gateway closed the trade.
      if (scenarios.pending) add(Step.Pending, total, 'T1')
      add(Step.Closed, total, 'T1')
      expected.push({ orderId, scenario: steps.join(', '), amount: total, status: OrderStatus.Closed, paidAmount: 0, refundedAmount: 0, currency, anomalies: [] })
      continue
    }
    if (scenarios.pending && path < 0.25) {
      add(Step.Pending, total, 'T1')
    } else if (scenarios.failed && path < 0.4) {
      // A declined first attempt, then a successful second one: a late "failed" must not win.
      add(Step.Failed, total, 'T0')
    }
    add(Step.Paid, total, 'T1')

    if (random() < options.refunds) {
      const partial = between(1, total - 1)
      const full = random() < 0.5
      const first = full && random() < 0.5 ? total : partial
      // A refund the gateway reports as failed before it goes through (same refund id): no anomaly remains.
      if (scenarios.refundFailed && random() < 0.5) add(Step.RefundFailed, first, 'T1', `${orderId}-R1`, 'refund failed')
      refunded = first
      add(Step.Refunded, first, 'T1', `${orderId}-R1`, first === total ? 'refund full' : 'refund partial')
      if (full && first < total) {
        refunded = total
        add(Step.Refunded, total - partial, 'T1', `${orderId}-R2`, 'refund rest')
      }
    }
    expected.push({
      orderId,
      scenario: steps.join(', '),
      amount: total,
      status: refunded >= total ? OrderStatus.Refunded : refunded > 0 ? OrderStatus.PartiallyRefunded : OrderStatus.Paid,
      paidAmount: total,
      refundedAmount: refunded,
      currency,
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
