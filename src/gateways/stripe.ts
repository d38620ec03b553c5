import { MalformedError, SignatureError } from '../errors.js'
import { orderIdPattern, type PaymentEventType } from '../orders/events.js'
import { currencyExponent, parseCurrency, parseMinorUnits } from '../orders/money.js'
import { asJsonObject, parseJsonObject, singleHeader, type JsonObject } from './json.js'
import { hmacSha256, safeEqual, withinTolerance } from './signing.js'
import { jsonErrorAck, type GatewayAdapter, type PaymentNotification, type RawCallback } from './types.js'

/** Where a verified event that names no order is logged (the app logger's warn). */
export type WarnLog = (details: Record<string, unknown>, message: string) => void

export interface StripeOptions {
  /** The endpoint's signing secret, `whsec_…`; the whole string is the HMAC key. */
  webhookSecret: string
  /** The metadata key holding the merchant's order id (PAYNOTIFY_STRIPE_ORDER_ID_KEY). */
  orderIdKey: string
  toleranceSeconds?: number
  warn?: WarnLog
}

export interface StripeEvent {
  id: string
  type: string
  created: number | null
  object: JsonObject
}

// Stripe's own minor units differ from ISO 4217 for some currencies (docs.stripe.com/currencies):
// these are zero-decimal and these three-decimal; every other currency is two-decimal in the API,
// ISK and HUF included, whatever their ISO exponent.
const zeroDecimal = new Set(['BIF', 'CLP', 'DJF', 'GNF', 'JPY', 'KMF', 'KRW', 'MGA', 'PYG', 'RWF', 'UGX', 'VND', 'VUV', 'XAF', 'XOF', 'XPF'])
const threeDecimal = new Set(['BHD', 'JOD', 'KWD', 'OMR', 'TND'])

const headerItem = /^([a-z0-9]+)=(\S+)$/
const unixSeconds = /^\d{1,12}$/
const idPattern = /^[\x21-\x7e]{1,128}$/

/** Stripe's exponent for a currency: how many decimals its API amounts carry. */
export function stripeExponent (currency: string): number {
  return zeroDecimal.has(currency) ? 0 : threeDecimal.has(currency) ? 3 : 2
}

/**
 * Converts a Stripe amount (the currency's smallest unit as Stripe counts it)
 * to this service's minor units (the ISO exponent, money.ts), exactly.
 */
export function fromStripeAmount (value: unknown, currency: string, field: string): number {
  const amount = parseMinorUnits(value, field)
  const shift = currencyExponent(currency) - stripeExponent(currency)
  if (shift >= 0) {
    const minor = amount * 10 ** shift
    if (!Number.isSafeInteger(minor)) throw new MalformedError('is too large', field)
    return minor
  }
  const divisor = 10 ** -shift
  if (amount % divisor !== 0) throw new MalformedError(`${currency} ${amount} has more decimals than ${currency} allows`, field)
  return amount / divisor
}

/** The inverse of fromStripeAmount: this service's minor units as Stripe's API counts them. */
export function toStripeAmount (minor: number, currency: string): number {
  const shift = currencyExponent(currency) - stripeExponent(currency)
  return shift >= 0 ? minor / 10 ** shift : minor * 10 ** -shift
}

/** A v1 signature: hex HMAC-SHA256 of `${t}.${raw body}`, keyed by the whole `whsec_…` string. */
export function stripeSignature (webhookSecret: string, timestamp: string, body: Buffer): string {
  return hmacSha256(webhookSecret, Buffer.concat([Buffer.from(`${timestamp}.`), body])).toString('hex')
}

/** The Stripe-Signature header Stripe would send with `body` at `now` (paynotify simulate and replay --to). */
export function stripeSignatureHeader (webhookSecret: string, body: Buffer, now: Date): string {
  const timestamp = String(Math.floor(now.getTime() / 1000))
  return `t=${timestamp},v1=${stripeSignature(webhookSecret, timestamp, body)}`
}

/**
 * Parses `t=…,v1=…[,v1=…][,v0=…]`. Strict on shape: a repeated header (which
 * Node joins with ", ") or a second `t` is refused rather than guessed at.
 */
function parseSignatureHeader (header: string): { timestamp: string, v1: string[] } {
  let timestamp: string | undefined
  const v1: string[] = []
  for (const item of header.split(',')) {
    const match = headerItem.exec(item)
    if (match === null) throw new SignatureError('stripe-signature header is malformed')
    const [, scheme, value] = match as unknown as [string, string, string]
    if (scheme === 't') {
      if (timestamp !== undefined) throw new SignatureError('stripe-signature header has more than one timestamp')
      timestamp = value
    } else if (scheme === 'v1') {
      v1.push(value)
    }
    // v0 (test-mode legacy) and unknown schemes are ignored, as Stripe's own libraries do.
  }
  if (timestamp === undefined || !unixSeconds.test(timestamp)) throw new SignatureError('stripe-signature header has no valid timestamp')
  if (v1.length === 0) throw new SignatureError('stripe-signature header has no v1 signature')
  return { timestamp, v1 }
}

function requiredId (object: JsonObject, key: string, field: string): string {
  const value = object[key]
  if (typeof value !== 'string' || !idPattern.test(value)) throw new MalformedError('must be 1-128 printable ASCII characters', field)
  return value
}

function optionalId (object: JsonObject, key: string, field: string): string | null {
  const value = object[key]
  if (value === undefined || value === null) return null
  // An expanded object in place of an id carries the id inside.
  if (typeof value === 'object' && !Array.isArray(value)) return requiredId(value as JsonObject, 'id', field)
  if (typeof value !== 'string' || !idPattern.test(value)) throw new MalformedError('must be an id', field)
  return value
}

function parseEvent (body: Buffer): StripeEvent {
  const event = parseJsonObject(body)
  const created = event.created
  if (created !== undefined && created !== null && (typeof created !== 'number' || !Number.isSafeInteger(created))) {
    throw new MalformedError('must be Unix seconds', 'created')
  }
  const type = event.type
  if (typeof type !== 'string' || type === '') throw new MalformedError('must be a string', 'type')
  return {
    id: requiredId(event, 'id', 'id'),
    type,
    created: typeof created === 'number' ? created : null,
    object: asJsonObject(asJsonObject(event.data, 'data').object, 'data.object')
  }
}

interface Mapped {
  type: PaymentEventType
  amountField: string
  transactionId: string | null
  refundId: string | null
  cumulative: boolean
}

/** Maps a Stripe event to one of our fact types, or null for events we do not track. */
function mapEvent (event: StripeEvent): Mapped | null {
  const object = event.object
  const kind = (event.type.startsWith('checkout.session.') ? 'checkout.session' : event.type.split('.')[0]) ?? ''
  const own = (): string => {
    // An event whose object is not the kind its type names is not one we understand.
    if (object.object !== kind) throw new MalformedError(`must be ${kind} for ${event.type}`, 'data.object.object')
    return requiredId(object, 'id', 'data.object.id')
  }
  switch (event.type) {
    case 'payment_intent.succeeded':
      return { type: 'PaymentSucceeded', amountField: 'amount_received', transactionId: own(), refundId: null, cumulative: false }
    case 'payment_intent.processing':
      return { type: 'PaymentPending', amountField: 'amount', transactionId: own(), refundId: null, cumulative: false }
    case 'payment_intent.payment_failed':
      return { type: 'PaymentFailed', amountField: 'amount', transactionId: own(), refundId: null, cumulative: false }
    case 'payment_intent.canceled':
      return { type: 'PaymentClosed', amountField: 'amount', transactionId: own(), refundId: null, cumulative: false }
    case 'checkout.session.completed':
    case 'checkout.session.async_payment_succeeded':
    case 'checkout.session.async_payment_failed': {
      // Keyed on the PaymentIntent, so this and payment_intent.succeeded are one fact.
      const sessionId = own()
      const transactionId = optionalId(object, 'payment_intent', 'data.object.payment_intent') ?? sessionId
      const status = object.payment_status
      let type: PaymentEventType | null
      if (event.type === 'checkout.session.async_payment_failed') type = 'PaymentFailed'
      else if (status === 'paid') type = 'PaymentSucceeded'
      // A delayed payment method: the session completed but the money follows (async_payment_succeeded).
      else if (status === 'unpaid') type = 'PaymentPending'
      else if (status === 'no_payment_required') type = null
      else throw new MalformedError('must be paid, unpaid or no_payment_required', 'data.object.payment_status')
      return type === null ? null : { type, amountField: 'amount_total', transactionId, refundId: null, cumulative: false }
    }
    case 'charge.refunded': {
      const chargeId = own()
      // amount_refunded is the charge's total so far, so several partial refunds never add up twice.
      return {
        type: 'PaymentRefunded',
        amountField: 'amount_refunded',
        transactionId: optionalId(object, 'payment_intent', 'data.object.payment_intent') ?? chargeId,
        refundId: null,
        cumulative: true
      }
    }
    case 'refund.created':
    case 'refund.updated':
    case 'refund.failed': {
      const refundId = own()
      const status = object.status
      let type: PaymentEventType | null = null
      if (event.type === 'refund.failed' || status === 'failed') type = 'RefundFailed'
      else if (status === 'succeeded') type = 'PaymentRefunded'
      // pending, requires_action, canceled: no money has moved; a later refund.updated reports the outcome.
      if (type === null) return null
      return {
        type,
        amountField: 'amount',
        transactionId: optionalId(object, 'payment_intent', 'data.object.payment_intent') ?? optionalId(object, 'charge', 'data.object.charge'),
        refundId,
        cumulative: false
      }
    }
    default:
      return null
  }
}

/**
 * Stripe webhooks (docs.stripe.com/webhooks/signature): JSON Event objects
 * signed with `Stripe-Signature: t=…,v1=…`, HMAC-SHA256 of `${t}.${raw body}`
 * keyed by the whole `whsec_…` secret. The order id comes from the event
 * object's metadata. An event that names no order (a refund created in the
 * Dashboard carries no metadata) is recorded as an unattributed report, acked
 * and logged: the projection joins it to the order whose payment carries its
 * PaymentIntent (or charge) id, whichever arrives first. Refusing it would
 * make Stripe retry it for days and then disable the endpoint.
 */
export function createStripeAdapter (options: StripeOptions): GatewayAdapter<StripeEvent> {
  const tolerance = options.toleranceSeconds ?? 300
  const { webhookSecret, orderIdKey } = options
  const warn = options.warn ?? (() => {})

  /** The order the event names, or why it names none. */
  const orderIdOf = (event: StripeEvent): { orderId: string } | { reason: string } => {
    const metadata = event.object.metadata
    let value: unknown = metadata !== null && typeof metadata === 'object' ? (metadata as JsonObject)[orderIdKey] : undefined
    // Checkout's own field for "your reference", when the session metadata does not carry the key.
    if ((value === undefined || value === '') && event.object.object === 'checkout.session') value = event.object.client_reference_id
    if (typeof value === 'string' && orderIdPattern.test(value)) return { orderId: value }
    return { reason: value === undefined || value === null || value === '' ? `no metadata.${orderIdKey}` : `metadata.${orderIdKey} is not a valid order id` }
  }

  return {
    name: 'stripe',
    mediaTypes: ['application/json'],
    // An Event with its object: metadata alone may be 50 keys of 500-character values (about 27 KB).
    bodyLimit: 64 * 1024,
    signatureHeaders: ['stripe-signature'],

    verify (callback: RawCallback, now: Date): StripeEvent {
      const { timestamp, v1 } = parseSignatureHeader(singleHeader(callback, 'stripe-signature'))
      const expected = stripeSignature(webhookSecret, timestamp, callback.body)
      // Every candidate is compared, so timing does not tell which one matched.
      const matched = v1.reduce((found, candidate) => safeEqual(candidate, expected) || found, false)
      if (!matched) throw new SignatureError('no v1 signature matches')
      if (!withinTolerance(Number(timestamp), now, tolerance)) throw new SignatureError(`timestamp is outside the ${tolerance} s window`)
      return parseEvent(callback.body)
    },

    parse (event: StripeEvent): PaymentNotification[] {
      const mapped = mapEvent(event)
      if (mapped === null) return []
      const rawCurrency = event.object.currency
      const currency = parseCurrency(typeof rawCurrency === 'string' ? rawCurrency.toUpperCase() : rawCurrency, 'data.object.currency')
      const amount = fromStripeAmount(event.object[mapped.amountField], currency, `data.object.${mapped.amountField}`)
      const report = {
        amount,
        currency,
        gateway: 'stripe',
        transactionId: mapped.transactionId,
        refundId: mapped.refundId,
        cumulative: mapped.cumulative,
        gatewayStatus: event.type,
        gatewayTime: event.created === null ? null : String(event.created)
      }
      const named = orderIdOf(event)
      if ('orderId' in named) return [{ type: mapped.type, deliveryId: event.id, data: { orderId: named.orderId, ...report } }]
      warn({
        gateway: 'stripe',
        eventId: event.id,
        eventType: event.type,
        objectId: typeof event.object.id === 'string' ? event.object.id : null,
        transactionId: mapped.transactionId,
        reason: named.reason
      }, 'stripe event names no order: recorded as unattributed')
      return [{ type: 'UnattributedReportReceived', deliveryId: event.id, data: { reportedType: mapped.type, ...report, reason: named.reason } }]
    },

    ack (error) {
      return error === undefined
        ? { statusCode: 200, contentType: 'application/json; charset=utf-8', body: '{"received":true}' }
        : jsonErrorAck(error)
    }
  }
}
