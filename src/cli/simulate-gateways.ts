import { signAlipayParams } from '../gateways/alipay.js'
import { signGenericParams } from '../gateways/generic.js'
import { standardWebhookHeaders } from '../gateways/standard-webhooks.js'
import { stripeSignatureHeader, toStripeAmount } from '../gateways/stripe.js'
import { wechatpayHeaders } from '../gateways/wechatpay.js'
import type { LocalGatewayKeys } from '../local-gateway-keys.js'
import { formatMinorUnits } from '../orders/money.js'
import { Step, type GatewayScenarios, type PlannedCallback } from './simulate-plan.js'
import { sealedResource, wechatpayResource } from './wechatpay-resource.js'

/**
 * Each gateway `paynotify simulate` plays: its payloads for the planned
 * callbacks, signed with the local identity by the adapters' own signing
 * code, its documented retry schedule, and the answer it takes for an ack.
 */

export const simulatedGateways = ['generic', 'alipay', 'wechatpay', 'stripe', 'standard'] as const
export type SimulatedGatewayName = typeof simulatedGateways[number]

/**
 * The gaps between attempts, in minutes, as each gateway documents them.
 * Stripe says only "for up to three days with an exponential back off": this
 * doubles from one minute, 12 retries in 4095 minutes (2.8 days).
 */
export const retryMinutes: Readonly<Record<SimulatedGatewayName, readonly number[]>> = {
  // The seed's PHP sender retried as Alipay does.
  generic: [4, 10, 10, 60, 120, 360, 900],
  alipay: [4, 10, 10, 60, 120, 360, 900],
  wechatpay: [0.25, 0.25, 0.5, 3, 10, 20, 30, 30, 30, 60, 180, 180, 180, 360, 360],
  stripe: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048],
  // The spec's example: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
  standard: [5 / 60, 5, 30, 120, 300, 600, 600]
}

/** What each gateway reports besides payments and refunds: WeChat Pay notifies only successes and refund outcomes, Alipay has no failure. */
export const gatewayScenarios: Readonly<Record<SimulatedGatewayName, GatewayScenarios>> = {
  generic: { pending: true, failed: true, closed: true, refundFailed: false },
  alipay: { pending: true, failed: false, closed: true, refundFailed: false },
  wechatpay: { pending: false, failed: false, closed: false, refundFailed: true },
  stripe: { pending: true, failed: true, closed: true, refundFailed: false },
  standard: { pending: true, failed: true, closed: true, refundFailed: false }
}

/** One attempt's request. */
export interface Outgoing {
  body: string
  headers: Record<string, string>
}

export interface SimulatedGateway {
  readonly name: SimulatedGatewayName
  /** Whether an answer is the ack this gateway waits for (anything else is retried). */
  isAck: (statusCode: number, body: string) => boolean
  /**
   * The request for one callback: the payload is built once (a repeat
   * delivery is the same notification), and signed for each attempt at its
   * own time, as gateways re-sign their retries.
   */
  request: (callback: PlannedCallback) => (now: Date) => Outgoing
}

const form = 'application/x-www-form-urlencoded'
const json = 'application/json'
const success2xx = (statusCode: number): boolean => statusCode >= 200 && statusCode < 300
const seconds = (date: Date): number => Math.floor(date.getTime() / 1000)

/** A time as China's gateways write it, in Beijing time (UTC+8): `2026-12-01 10:00:00` or `2026-12-01T10:00:00+08:00`. */
function beijing (date: Date, style: 'alipay' | 'wechatpay'): string {
  const local = new Date(date.getTime() + 8 * 3600_000).toISOString().slice(0, 19)
  return style === 'alipay' ? local.replace('T', ' ') : `${local}+08:00`
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

/** The seed sender's numeric status codes. */
const genericStatus: Record<Step, string> = { pending: '0', paid: '1', failed: '2', refunded: '3', refund_failed: '', closed: '4' }

/** The generic parameters of a callback, without `timestamp` and `sign` (added at each attempt). */
export function genericParams (callback: PlannedCallback): Record<string, string> {
  return {
    order_id: callback.orderId,
    amount: formatMinorUnits(callback.amount, callback.currency),
    currency: callback.currency,
    status: genericStatus[callback.step],
    notify_id: callback.notifyId,
    trade_no: callback.transactionId,
    ...(callback.refundId === null ? {} : { refund_no: callback.refundId })
  }
}

function generic (secret: string): SimulatedGateway {
  return {
    name: 'generic',
    isAck: (statusCode, body) => statusCode === 200 && body.trim() === 'success',
    request: callback => {
      const params = genericParams(callback)
      // Like the seed's PHP sender, every attempt is signed anew with the current time: the service
      // refuses a timestamp older than 300 s, and a retry on the real schedule comes hours later.
      return now => ({ body: signedGenericBody({ ...params, timestamp: String(seconds(now)) }, secret), headers: { 'content-type': form } })
    }
  }
}

const alipayStatus: Partial<Record<Step, string>> = { pending: 'WAIT_BUYER_PAY', paid: 'TRADE_SUCCESS', closed: 'TRADE_CLOSED' }

function alipay (keys: LocalGatewayKeys['alipay'], startedAt: Date): SimulatedGateway {
  return {
    name: 'alipay',
    // Alipay retries until the body is exactly `success`.
    isAck: (statusCode, body) => statusCode === 200 && body === 'success',
    request: callback => {
      const at = (minute: number): string => beijing(new Date(startedAt.getTime() + minute * 60_000), 'alipay')
      const yuan = (minor: number): string => formatMinorUnits(minor, 'CNY')
      const fields: Record<string, string> = {
        notify_time: at(callback.minute),
        notify_type: 'trade_status_sync',
        notify_id: callback.notifyId,
        app_id: keys.appId,
        charset: 'utf-8',
        version: '1.0',
        sign_type: 'RSA2',
        seller_id: keys.sellerId,
        buyer_id: '2088102177846880',
        out_trade_no: callback.orderId,
        trade_no: callback.transactionId,
        subject: `paynotify simulate ${callback.orderId}`,
        total_amount: yuan(callback.total),
        gmt_create: at(0)
      }
      if (callback.step === Step.Refunded) {
        // A refund notification names the trade's running total refunded; a full refund closes the trade.
        Object.assign(fields, {
          trade_status: callback.refundedTotal >= callback.total ? 'TRADE_CLOSED' : 'TRADE_SUCCESS',
          gmt_payment: at(0),
          refund_fee: yuan(callback.refundedTotal),
          gmt_refund: `${at(callback.minute)}.000`,
          out_biz_no: callback.refundId
        })
      } else {
        fields.trade_status = alipayStatus[callback.step]!
        if (callback.step === Step.Paid) fields.gmt_payment = at(callback.minute)
        if (callback.step === Step.Closed) fields.gmt_close = at(callback.minute)
      }
      // The signature covers no time: the same body serves every attempt.
      const body = new URLSearchParams({ ...fields, sign: signAlipayParams(fields, keys.privateKey) }).toString()
      return () => ({ body, headers: { 'content-type': `${form}; charset=utf-8` } })
    }
  }
}

const wechatpayEvents: Partial<Record<Step, string>> = { paid: 'TRANSACTION.SUCCESS', refunded: 'REFUND.SUCCESS', refund_failed: 'REFUND.ABNORMAL' }

function wechatpay (keys: LocalGatewayKeys['wechatpay'], startedAt: Date): SimulatedGateway {
  return {
    name: 'wechatpay',
    isAck: statusCode => statusCode === 200 || statusCode === 204,
    request: callback => {
      const eventType = wechatpayEvents[callback.step]!
      const time = beijing(new Date(startedAt.getTime() + callback.minute * 60_000), 'wechatpay')
      const refund = eventType.startsWith('REFUND.')
      const resource = wechatpayResource(eventType, {
        orderId: callback.orderId,
        amount: callback.amount,
        currency: callback.currency,
        transactionId: callback.transactionId,
        refundId: callback.refundId,
        gatewayTime: callback.step === Step.RefundFailed ? null : time
      }, refund ? callback.total : undefined)
      const body = JSON.stringify({
        id: callback.notifyId,
        create_time: time,
        resource_type: 'encrypt-resource',
        event_type: eventType,
        summary: { 'TRANSACTION.SUCCESS': '支付成功', 'REFUND.SUCCESS': '退款成功', 'REFUND.ABNORMAL': '退款异常' }[eventType],
        resource: sealedResource(resource, keys.apiV3Key, refund ? 'refund' : 'transaction')
      })
      return now => ({ body, headers: { 'content-type': json, ...wechatpayHeaders(Buffer.from(body), keys.privateKey, keys.serial, now) } })
    }
  }
}

function stripeObject (callback: PlannedCallback): { type: string, object: Record<string, unknown> } {
  const currency = callback.currency.toLowerCase()
  const amount = toStripeAmount(callback.total, callback.currency)
  const metadata = { order_id: callback.orderId }
  const intent = (status: string, received: number, extra: Record<string, unknown> = {}): Record<string, unknown> =>
    ({ id: `pi_${callback.transactionId}`, object: 'payment_intent', amount, amount_received: received, currency, status, metadata, ...extra })
  switch (callback.step) {
    case Step.Pending: return { type: 'payment_intent.processing', object: intent('processing', 0) }
    case Step.Paid: return { type: 'payment_intent.succeeded', object: intent('succeeded', amount) }
    case Step.Failed: return { type: 'payment_intent.payment_failed', object: intent('requires_payment_method', 0, { last_payment_error: { code: 'card_declined', decline_code: 'insufficient_funds' } }) }
    case Step.Closed: return { type: 'payment_intent.canceled', object: intent('canceled', 0, { cancellation_reason: 'abandoned' }) }
    case Step.Refunded: {
      // charge.refunded carries the charge's running total refunded (amount_refunded).
      const refunded = toStripeAmount(callback.refundedTotal, callback.currency)
      return {
        type: 'charge.refunded',
        object: { id: `ch_${callback.transactionId}`, object: 'charge', amount, amount_captured: amount, amount_refunded: refunded, refunded: refunded >= amount, currency, payment_intent: `pi_${callback.transactionId}`, metadata }
      }
    }
    case Step.RefundFailed: throw new Error('the stripe simulation plans no failed refunds')
  }
}

function stripe (keys: LocalGatewayKeys['stripe'], startedAt: Date): SimulatedGateway {
  return {
    name: 'stripe',
    isAck: success2xx,
    request: callback => {
      const { type, object } = stripeObject(callback)
      const body = Buffer.from(JSON.stringify({
        id: `evt_${callback.notifyId}`,
        object: 'event',
        api_version: '2025-10-29.clover',
        created: seconds(startedAt) + callback.minute * 60,
        data: { object },
        livemode: false,
        pending_webhooks: 1,
        request: { id: null, idempotency_key: null },
        type
      }))
      return now => ({ body: body.toString(), headers: { 'content-type': json, 'stripe-signature': stripeSignatureHeader(keys.webhookSecret, body, now) } })
    }
  }
}

const standardTypes: Record<Step, string> = { pending: 'payment.pending', paid: 'payment.succeeded', failed: 'payment.failed', closed: 'payment.closed', refunded: 'payment.refunded', refund_failed: '' }

function standard (keys: LocalGatewayKeys['standard'], startedAt: Date): SimulatedGateway {
  return {
    name: 'standard',
    isAck: success2xx,
    request: callback => {
      const body = Buffer.from(JSON.stringify({
        type: standardTypes[callback.step],
        timestamp: new Date(startedAt.getTime() + callback.minute * 60_000).toISOString(),
        data: {
          order_id: callback.orderId,
          amount: callback.amount,
          currency: callback.currency,
          transaction_id: callback.transactionId,
          ...(callback.refundId === null ? {} : { refund_id: callback.refundId })
        }
      }))
      // The spec forbids `.` in a webhook-id (order ids may hold one); the id stays the same on every retry.
      const webhookId = `msg_${Buffer.from(callback.notifyId).toString('base64url')}`
      return now => ({ body: body.toString(), headers: { 'content-type': json, ...standardWebhookHeaders(keys.secret, webhookId, body, now) } })
    }
  }
}

/** The keys each gateway signs with: the generic secret, or the local identity `paynotify keys` made. */
export interface SimulationKeys {
  genericSecret?: string | undefined
  gateways: Partial<LocalGatewayKeys>
}

/**
 * The simulated gateway, or the reason it cannot be played (its keys are
 * missing). `startedAt` anchors the gateway's own times in its payloads.
 */
export function simulatedGateway (name: SimulatedGatewayName, keys: SimulationKeys, startedAt: Date): SimulatedGateway | string {
  const missing = `no local ${name} keys: run \`paynotify keys\` where PAYNOTIFY_DB points, and start the service with the variables it prints`
  switch (name) {
    case 'generic': return keys.genericSecret === undefined ? 'no generic secret: pass --secret, set PAYNOTIFY_GENERIC_SECRET, or run where PAYNOTIFY_DB has its secrets file' : generic(keys.genericSecret)
    case 'alipay': return keys.gateways.alipay === undefined ? missing : alipay(keys.gateways.alipay, startedAt)
    case 'wechatpay': return keys.gateways.wechatpay === undefined ? missing : wechatpay(keys.gateways.wechatpay, startedAt)
    case 'stripe': return keys.gateways.stripe === undefined ? missing : stripe(keys.gateways.stripe, startedAt)
    case 'standard': return keys.gateways.standard === undefined ? missing : standard(keys.gateways.standard, startedAt)
  }
}
