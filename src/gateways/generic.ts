import { createHmac, createSecretKey, timingSafeEqual } from 'node:crypto'
import { MalformedError, SignatureError } from '../errors.js'
import { orderIdPattern, type PaymentEventType } from '../orders/events.js'
import { parseCurrency, parseDecimalAmount } from '../orders/money.js'
import { decodeUtf8, optionalId, parseFlatJson, parseForm, signingString } from './params.js'
import { hmacSha256, sha256Hex, withinTolerance } from './signing.js'
import { jsonErrorAck, type GatewayAdapter, type PaymentNotification, type RawCallback } from './types.js'

export interface GenericOptions {
  secret: string
  defaultCurrency: string
  toleranceSeconds?: number
}

interface VerifiedGeneric {
  params: Map<string, string>
  signed: string
}

// The seed sender's numeric codes and their names.
const statusTypes: Record<string, PaymentEventType> = {
  0: 'PaymentPending',
  pending: 'PaymentPending',
  1: 'PaymentSucceeded',
  paid: 'PaymentSucceeded',
  success: 'PaymentSucceeded',
  2: 'PaymentFailed',
  failed: 'PaymentFailed',
  3: 'PaymentRefunded',
  refunded: 'PaymentRefunded',
  4: 'PaymentClosed',
  closed: 'PaymentClosed'
}

const hexSignature = /^[0-9a-fA-F]{64}$/

/** Signs generic parameters the way the seed's PHP sender does (also used by `simulate` and tests). */
export function signGenericParams (params: Record<string, string>, secret: string): string {
  return hmacSha256(secret, signingString(new Map(Object.entries(params)))).toString('hex')
}

function parseTimestamp (value: string): number {
  if (!/^\d{1,13}$/.test(value)) throw new SignatureError('timestamp must be Unix seconds')
  const n = Number(value)
  // 13 digits are milliseconds (what JavaScript senders send by mistake).
  return value.length === 13 ? n / 1000 : n
}

/**
 * The seed's format: form or flat JSON with order_id, amount, status and a
 * hex HMAC-SHA256 `sign` over the sorted parameters.
 */
export function createGenericAdapter (options: GenericOptions): GatewayAdapter<VerifiedGeneric> {
  const tolerance = options.toleranceSeconds ?? 300
  // Prepared once: turning the secret string into a key on every callback was a visible part of verify.
  const key = createSecretKey(Buffer.from(options.secret, 'utf8'))
  return {
    name: 'generic',
    mediaTypes: ['application/x-www-form-urlencoded', 'application/json'],
    // A dozen short fields (ids of at most 128 characters, a 64-character sign): well under 2 KiB.
    bodyLimit: 8 * 1024,
    signatureHeaders: [],

    verify (callback: RawCallback, now: Date): VerifiedGeneric {
      const text = decodeUtf8(callback.body)
      const params = callback.mediaType === 'application/json' ? parseFlatJson(text) : parseForm(text)
      const sign = params.get('sign')
      if (sign === undefined || sign === '') throw new SignatureError('sign is missing')
      if (!hexSignature.test(sign)) throw new SignatureError('sign must be 64 hex characters')
      const signed = signingString(params)
      const expected = createHmac('sha256', key).update(signed).digest()
      // Both sides are 32 bytes (sign is 64 hex characters), so timingSafeEqual compares them in constant time as they are.
      if (!timingSafeEqual(expected, Buffer.from(sign, 'hex'))) throw new SignatureError('sign does not match')
      const timestamp = params.get('timestamp')
      if (timestamp !== undefined && timestamp !== '' && !withinTolerance(parseTimestamp(timestamp), now, tolerance)) {
        throw new SignatureError(`timestamp is outside the ${tolerance} s window`)
      }
      return { params, signed }
    },

    parse ({ params, signed }: VerifiedGeneric): PaymentNotification[] {
      const orderId = params.get('order_id')
      if (orderId === undefined || orderId === '') throw new MalformedError('is required', 'order_id')
      if (!orderIdPattern.test(orderId)) throw new MalformedError('must be 1-64 characters of A-Z a-z 0-9 _ . : -', 'order_id')
      const status = params.get('status')
      if (status === undefined || status === '') throw new MalformedError('is required', 'status')
      const type = Object.hasOwn(statusTypes, status) ? statusTypes[status] : undefined
      if (type === undefined) throw new MalformedError('must be one of pending|0, paid|success|1, failed|2, refunded|3, closed|4', 'status')
      const currency = parseCurrency(params.get('currency') || options.defaultCurrency)
      const rawAmount = params.get('amount')
      if (rawAmount === undefined || rawAmount === '') throw new MalformedError('is required', 'amount')
      const amount = parseDecimalAmount(rawAmount, currency)
      const notifyId = optionalId(params, 'notify_id')
      return [{
        type,
        deliveryId: notifyId ?? `sha256:${sha256Hex(signed)}`,
        data: {
          orderId,
          amount,
          currency,
          gateway: 'generic',
          transactionId: optionalId(params, 'trade_no'),
          refundId: type === 'PaymentRefunded' ? optionalId(params, 'refund_no') : null,
          cumulative: false,
          gatewayStatus: status,
          gatewayTime: params.get('timestamp') || null
        }
      }]
    },

    ack (error) {
      return error === undefined
        ? { statusCode: 200, contentType: 'text/plain; charset=utf-8', body: 'success' }
        : jsonErrorAck(error)
    }
  }
}
