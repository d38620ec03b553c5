import { ConfigError } from '../config.js'
import { MalformedError, SignatureError } from '../errors.js'
import { orderIdPattern, type PaymentEventType } from '../orders/events.js'
import { parseCurrency, parseMinorUnits } from '../orders/money.js'
import { asJsonObject, parseJsonObject, singleHeader, type JsonObject } from './json.js'
import { hmacSha256, safeEqual, withinTolerance } from './signing.js'
import { jsonErrorAck, type GatewayAdapter, type PaymentNotification, type RawCallback } from './types.js'

export interface StandardWebhooksOptions {
  /** `whsec_` followed by the base64 of the key (the Standard Webhooks serialization). */
  secret: string
  toleranceSeconds?: number
}

export interface VerifiedStandardWebhook {
  webhookId: string
  payload: JsonObject
}

/** Our payment event types, as a Standard Webhooks sender names them. */
const eventTypes: Record<string, PaymentEventType> = {
  'payment.pending': 'PaymentPending',
  'payment.succeeded': 'PaymentSucceeded',
  'payment.failed': 'PaymentFailed',
  'payment.refunded': 'PaymentRefunded',
  'payment.closed': 'PaymentClosed'
}

// The spec forbids `.` in the id (it delimits the signed content); the timestamp is integer seconds.
const webhookIdPattern = /^[\x21-\x2d\x2f-\x7e]{1,256}$/
const unixSeconds = /^\d{1,12}$/
const signatureEntry = /^([a-z0-9]+),([A-Za-z0-9+/]+={0,2})$/
const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const idPattern = /^[\x21-\x7e]{1,128}$/

/**
 * Decodes a `whsec_…` secret into the HMAC key. The spec asks for at least
 * 24 random bytes; a shorter or non-base64 secret is a configuration error.
 */
export function standardWebhooksKey (secret: string): Buffer {
  const encoded = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : ''
  if (encoded === '' || !base64Pattern.test(encoded)) {
    throw new ConfigError('invalid configuration: PAYNOTIFY_STANDARD_SECRET must be whsec_ followed by base64')
  }
  const key = Buffer.from(encoded, 'base64')
  if (key.length < 24) throw new ConfigError('invalid configuration: PAYNOTIFY_STANDARD_SECRET must decode to at least 24 bytes')
  return key
}

/** A v1 signature: base64 HMAC-SHA256 of `${webhook-id}.${webhook-timestamp}.${raw body}`. */
export function standardSignature (key: Buffer, webhookId: string, timestamp: string, body: Buffer): string {
  return hmacSha256(key, Buffer.concat([Buffer.from(`${webhookId}.${timestamp}.`), body])).toString('base64')
}

/** The three headers a Standard Webhooks sender sends with `body` at `now` (paynotify simulate and replay --to). */
export function standardWebhookHeaders (secret: string, webhookId: string, body: Buffer, now: Date): Record<string, string> {
  const timestamp = String(Math.floor(now.getTime() / 1000))
  return {
    'webhook-id': webhookId,
    'webhook-timestamp': timestamp,
    'webhook-signature': `v1,${standardSignature(standardWebhooksKey(secret), webhookId, timestamp, body)}`
  }
}

function id (object: JsonObject, key: string, required: boolean): string | null {
  const value = object[key]
  if (!required && (value === undefined || value === null || value === '')) return null
  if (typeof value !== 'string' || !idPattern.test(value)) throw new MalformedError('must be 1-128 printable ASCII characters', `data.${key}`)
  return value
}

/**
 * Standard Webhooks (standardwebhooks.com, spec 1.0): `webhook-id`,
 * `webhook-timestamp` and `webhook-signature` (space-separated `v1,<base64>`
 * HMAC-SHA256 of `${id}.${timestamp}.${raw body}`); the payload is
 * `{ type, timestamp, data: { order_id, amount, currency, transaction_id, refund_id? } }`
 * with `amount` an integer in the currency's minor units.
 */
export function createStandardWebhooksAdapter (options: StandardWebhooksOptions): GatewayAdapter<VerifiedStandardWebhook> {
  const tolerance = options.toleranceSeconds ?? 300
  const key = standardWebhooksKey(options.secret)

  return {
    name: 'standard',
    mediaTypes: ['application/json'],
    // Our payload is a few short fields; room for a sender that adds its own.
    bodyLimit: 16 * 1024,
    signatureHeaders: ['webhook-id', 'webhook-timestamp', 'webhook-signature'],

    verify (callback: RawCallback, now: Date): VerifiedStandardWebhook {
      const webhookId = singleHeader(callback, 'webhook-id')
      const timestamp = singleHeader(callback, 'webhook-timestamp')
      const signatures = singleHeader(callback, 'webhook-signature')
      if (!webhookIdPattern.test(webhookId)) throw new SignatureError('webhook-id header is malformed')
      if (!unixSeconds.test(timestamp)) throw new SignatureError('webhook-timestamp header must be Unix seconds')
      const expected = standardSignature(key, webhookId, timestamp, callback.body)
      let matched = false
      for (const entry of signatures.split(' ')) {
        // A malformed entry (a repeated header joined by Node with ", " makes one) refuses the whole header.
        const parsed = signatureEntry.exec(entry)
        if (parsed === null) throw new SignatureError('webhook-signature header is malformed')
        // v1a (asymmetric) and future schemes are skipped: only the shared-secret v1 is configured.
        if (parsed[1] === 'v1' && safeEqual(parsed[2]!, expected)) matched = true
      }
      if (!matched) throw new SignatureError('no v1 signature matches')
      if (!withinTolerance(Number(timestamp), now, tolerance)) throw new SignatureError(`timestamp is outside the ${tolerance} s window`)
      return { webhookId, payload: parseJsonObject(callback.body) }
    },

    parse ({ webhookId, payload }: VerifiedStandardWebhook): PaymentNotification[] {
      if (typeof payload.type !== 'string') throw new MalformedError('must be a string', 'type')
      // Other event types from the same sender are acked and not stored (the spec lets senders add types).
      const type = Object.hasOwn(eventTypes, payload.type) ? eventTypes[payload.type] : undefined
      if (type === undefined) return []
      const data = asJsonObject(payload.data, 'data')
      const orderId = data.order_id
      if (typeof orderId !== 'string' || !orderIdPattern.test(orderId)) {
        throw new MalformedError('must be 1-64 characters of A-Z a-z 0-9 _ . : -', 'data.order_id')
      }
      const currency = parseCurrency(typeof data.currency === 'string' ? data.currency.toUpperCase() : data.currency, 'data.currency')
      return [{
        type,
        deliveryId: webhookId,
        data: {
          orderId,
          amount: parseMinorUnits(data.amount, 'data.amount'),
          currency,
          gateway: 'standard',
          transactionId: id(data, 'transaction_id', true),
          refundId: type === 'PaymentRefunded' ? id(data, 'refund_id', false) : null,
          cumulative: false,
          gatewayStatus: payload.type,
          gatewayTime: typeof payload.timestamp === 'string' ? payload.timestamp : null
        }
      }]
    },

    ack (error) {
      return error === undefined
        ? { statusCode: 204, contentType: 'text/plain; charset=utf-8', body: '' }
        : jsonErrorAck(error)
    }
  }
}
