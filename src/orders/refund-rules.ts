import type { Anomaly, Fact } from './order-fold.js'

/**
 * How refunds count towards an order (DESIGN §4): a refund is checked like a
 * payment. Pure functions of the set of distinct facts, so any arrival order
 * gives the same answer (test/orders/order-fold.test.ts).
 */

export interface RefundTally {
  /** Minor units of the order's currency returned to the payer. */
  refundedAmount: number
  anomalies: Anomaly[]
}

const isoWithZone = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/
const unixTime = /^\d{1,13}$/

/**
 * A gateway's own time of a report as milliseconds since the epoch, when it
 * names an instant: Unix seconds (13 digits: milliseconds), or ISO 8601 with
 * a zone. Anything else (Alipay's zone-less local time) is null: never read
 * in the machine's own time zone, so a rebuild anywhere gives the same state.
 */
export function gatewayInstant (text: string | null): number | null {
  if (text === null) return null
  if (unixTime.test(text)) return text.length === 13 ? Number(text) : Number(text) * 1000
  if (!isoWithZone.test(text)) return null
  const time = Date.parse(text)
  return Number.isNaN(time) ? null : time
}

/** The later of two known instants (an unknown one never wins). */
export function laterInstant (a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.max(a, b)
}

/** Whether the gateway's own times say `a` was reported after `b`; false when either time is unknown. */
function after (a: Fact, b: Fact): boolean {
  const at = a.at ?? null
  const bt = b.at ?? null
  return at !== null && bt !== null && at > bt
}

/**
 * Whether `better` is the same refund as `refund` reported with more of its
 * identity: a refund id where `refund` has none, or a transaction id where
 * neither has a refund id. The two have different fact keys (so both were
 * kept) but the same gateway, currency and amount, and no id contradicts.
 */
function identifiesBetter (better: Fact, refund: Fact): boolean {
  if (better === refund || better.type !== 'PaymentRefunded' || better.cumulative || refund.refundId !== null) return false
  if (better.gateway !== refund.gateway || better.currency !== refund.currency || better.amount !== refund.amount) return false
  if (better.refundId !== null) return refund.transactionId === null || better.transactionId === null || refund.transactionId === better.transactionId
  return refund.transactionId === null && better.transactionId !== null
}

/**
 * What the refund facts return of the order's payment.
 * - Only refunds in `currency` (the currency it was paid in) are summed;
 *   one in another currency is `refund_currency_mismatch`.
 * - Once a payment is known, only refunds from a gateway that reported it
 *   are summed; another gateway's refund (or failed refund) is `gateway_mismatch`.
 * - One refund reported two ways (with and without its refund or transaction
 *   id) counts once: `duplicate_refund`.
 * - A refund whose latest word is a failure (by the gateway's own time; a
 *   failure wins when the times cannot tell) does not count, and the
 *   failure is `refund_failed`; it also comes off a running total
 *   (charge.refunded) that was reported before it.
 */
export function tallyRefunds (facts: readonly Fact[], currency: string | null, payingGateways: ReadonlySet<string>): RefundTally {
  const anomalies = new Set<Anomaly>()
  const refunds = facts.filter(fact => fact.type === 'PaymentRefunded')
  const foreign = (fact: Fact): boolean => payingGateways.size > 0 && !payingGateways.has(fact.gateway)

  const succeeded = new Map<string, Fact>()
  for (const refund of refunds) if (refund.refundId !== null) succeeded.set(`${refund.gateway}|${refund.refundId}`, refund)
  const failedIds = new Set<string>()
  const standingFailures: Fact[] = []
  for (const failure of facts) {
    if (failure.type !== 'RefundFailed') continue
    if (foreign(failure)) anomalies.add('gateway_mismatch')
    const id = `${failure.gateway}|${failure.refundId ?? ''}`
    const success = failure.refundId === null ? undefined : succeeded.get(id)
    // WeChat Pay's REFUND.ABNORMAL may be followed by REFUND.SUCCESS for the same refund: then it succeeded.
    if (success !== undefined && after(success, failure)) continue
    anomalies.add('refund_failed')
    standingFailures.push(failure)
    if (failure.refundId !== null) failedIds.add(id)
  }

  let each = 0
  let total = 0
  for (const refund of refunds) {
    const otherGateway = foreign(refund)
    const otherCurrency = currency !== null && refund.currency !== currency
    if (otherGateway) anomalies.add('gateway_mismatch')
    if (otherCurrency) anomalies.add('refund_currency_mismatch')
    if (otherGateway || otherCurrency) {
      // Flagged, never summed.
    } else if (refund.refundId !== null && failedIds.has(`${refund.gateway}|${refund.refundId}`)) {
      // Reported succeeded, and failed since (or we cannot tell which came last): it does not count.
    } else if (refund.cumulative) {
      // A running total counts every refund of its transaction that had not failed when it was reported.
      let failedSince = 0
      for (const failure of standingFailures) {
        if (failure.gateway === refund.gateway && failure.transactionId === refund.transactionId &&
          failure.currency === refund.currency && !after(refund, failure)) failedSince += failure.amount
      }
      total = Math.max(total, refund.amount - failedSince)
    } else if (refunds.some(better => identifiesBetter(better, refund))) {
      anomalies.add('duplicate_refund')
    } else {
      each += refund.amount
    }
  }
  // Running totals and single refunds describe the same money: the larger is what was returned.
  return { refundedAmount: Math.max(each, total), anomalies: [...anomalies] }
}
