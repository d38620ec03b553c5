import { html } from 'ghtml'
import { formatMinorUnits } from '../orders/money.js'
import { Anomaly } from '../orders/order-fold.js'

/**
 * How the console shows money, times and anomalies to a person. Money stays
 * integer minor units everywhere else; only here does it become a decimal,
 * with the currency's own exponent (CNY 2, JPY 0, KWD 3).
 */

/**
 * 8888 CNY → "88.88 CNY", 500 JPY → "500 JPY", -5 CNY → "-0.05 CNY"; without
 * a currency, or with one ICU cannot format, or past the safe integers, the
 * bare minor units (a page never fails on an amount).
 */
export function formatMoney (minor: number, currency: string | null): string {
  if (currency === null) return `${minor} (minor units)`
  if (!Number.isSafeInteger(minor)) return `${minor} (minor units of ${currency})`
  try {
    return `${minor < 0 ? '-' : ''}${formatMinorUnits(Math.abs(minor), currency)} ${currency}`
  } catch {
    return `${minor} (minor units of ${currency})`
  }
}

/**
 * A stored ISO-8601 UTC time as people read it: "2026-06-01 10:00:00 UTC"
 * (the console's times are all UTC, as the log records them).
 */
export function formatTime (iso: string | null): string {
  if (iso === null) return '—'
  const match = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(\.\d+)?Z$/.exec(iso)
  return match === null ? iso : `${match[1]!} ${match[2]!} UTC`
}

/** formatTime in a <time> element that carries the stored ISO time. */
export function timeHtml (iso: string): string {
  return html`<time datetime="${iso}">${formatTime(iso)}</time>`
}

/** What each anomaly means, and what an admin should check before resolving it. */
export const anomalyExplanations: Readonly<Record<Anomaly, string>> = {
  [Anomaly.AmountMismatch]: 'The amount paid differs from the amount the merchant registered, or two reports of one payment disagree on it: compare the gateway\'s record of the payment with the order before shipping or refunding.',
  [Anomaly.CurrencyMismatch]: 'The payment came in another currency than the order was registered in, or reports of it disagree on the currency: check the gateway\'s record and whether the merchant priced the order in that currency.',
  [Anomaly.DuplicatePayment]: 'The gateway reports more than one successful payment (different transaction ids) for this order, so the customer may have paid twice: check the gateway and refund the extra payment.',
  [Anomaly.RefundExceedsPaid]: 'More has been refunded than was paid: check the gateway\'s refund records for a refund counted twice or a refund of another order.',
  [Anomaly.RefundBeforePayment]: 'A refund arrived for an order with no successful payment yet: check whether the payment callback is missing or late, and the gateway\'s record of the payment.',
  [Anomaly.ClosedAfterPaid]: 'The gateway reported the order closed although a payment succeeded: check whether the money was taken and whether the order should be fulfilled or refunded.',
  [Anomaly.RefundFailed]: 'A refund failed at the gateway and no later report says it succeeded, so the money is still with the merchant: retry the refund or contact the customer.',
  [Anomaly.RefundCurrencyMismatch]: 'A refund was reported in another currency than the payment and is not counted in the totals: check the gateway\'s refund record and its amount.',
  [Anomaly.GatewayMismatch]: 'Payments or refunds for this order were reported by more than one gateway: check that each gateway really took or returned money for this order.',
  [Anomaly.DuplicateRefund]: 'One refund was reported two ways (with and without its refund or transaction id) and is counted once: check the gateway shows a single refund.',
  [Anomaly.ZeroAmountPayment]: 'A signed payment of zero arrived; it is kept but never makes the order paid: check the gateway for the real amount or a test payment.',
  [Anomaly.UnknownOrder]: 'Payment reports arrived for an order the merchant never registered: check the order id with the merchant, or whether its registration is missing.'
}

/** The sentence for an anomaly code; a code this build does not know is named as such. */
export function explainAnomaly (code: string): string {
  return Object.hasOwn(anomalyExplanations, code)
    ? anomalyExplanations[code as Anomaly]
    : 'An anomaly this version of the console does not describe: check the order\'s timeline.'
}

/** The signature scheme each source's adapter verified before an event was stored. */
const signatureSchemes: Readonly<Record<string, string>> = {
  generic: 'HMAC-SHA256 over the sorted form fields',
  alipay: 'RSA2 (SHA256withRSA, Alipay public key)',
  wechatpay: 'WECHATPAY2-SHA256-RSA2048 + AEAD_AES_256_GCM resource',
  stripe: 'Stripe-Signature HMAC-SHA256',
  standard: 'Standard Webhooks HMAC-SHA256',
  merchant: 'merchant token (registration)',
  admin: 'admin token (console or admin API)'
}

/** The signature scheme verified for an event from `gateway`. */
export function signatureScheme (gateway: string): string {
  return Object.hasOwn(signatureSchemes, gateway) ? signatureSchemes[gateway]! : `none known for source ${gateway}`
}
