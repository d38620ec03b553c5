import { signAlipayFields } from '../gateways/alipay.js'
import { encodeFormBytes, parseFormBytes } from '../gateways/form-bytes.js'
import { signGenericParams } from '../gateways/generic.js'
import { isJsonObject } from '../gateways/json.js'
import { standardWebhookHeaders } from '../gateways/standard-webhooks.js'
import { stripeSignatureHeader } from '../gateways/stripe.js'
import { wechatpayHeaders } from '../gateways/wechatpay.js'
import type { LocalGatewayKeys } from '../local-gateway-keys.js'
import type { PaymentData, RawRequest } from '../orders/events.js'
import { sealedResource, wechatpayResource } from './wechatpay-resource.js'

/**
 * Re-signing a recorded callback with the local identity, each gateway by its
 * own scheme: what the gateway would send if it were configured with the
 * local keys and delivered the notification now. Delivery ids stay as
 * recorded, so the local service deduplicates as production did.
 */

/** A re-signed request: the body and the headers that carry its signature. */
export interface Resigned {
  body: Buffer
  headers: Record<string, string>
}

/** The result of re-signing: a request, or why this one cannot be re-made. */
export type Resigning = Resigned | { unusable: string }

function rawBytes (raw: RawRequest): Buffer {
  return Buffer.from(raw.body, raw.encoding === 'base64' ? 'base64' : 'utf8')
}

/**
 * Generic: the same parameters in the same order and encoding, with `sign`
 * recomputed and a `timestamp` (when present) moved to now in its own unit,
 * since the service refuses signed times older than its window.
 */
export function resignGeneric (raw: RawRequest, secret: string, now: Date): Resigning {
  const text = rawBytes(raw).toString('utf8')
  const stamp = (old: string): string => old.length === 13 ? String(now.getTime()) : String(Math.floor(now.getTime() / 1000))
  const unusable = { unusable: 'the recorded body is not a form or flat JSON' }
  if (raw.contentType.toLowerCase().includes('json')) {
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch {
      return unusable
    }
    if (!isJsonObject(value)) return unusable
    if (typeof value.timestamp === 'string' && value.timestamp !== '') value.timestamp = stamp(value.timestamp)
    else if (typeof value.timestamp === 'number') value.timestamp = Number(stamp(String(value.timestamp)))
    const params: Record<string, string> = {}
    for (const [key, v] of Object.entries(value)) if (typeof v === 'string' || typeof v === 'number') params[key] = String(v)
    value.sign = signGenericParams(params, secret)
    return { body: Buffer.from(JSON.stringify(value)), headers: {} }
  }
  const decode = (s: string): string => decodeURIComponent(s.replaceAll('+', ' '))
  let pairs: Array<[string, string, string]>
  try {
    // [raw pair, decoded key, decoded value]: untouched pairs are sent back byte for byte.
    pairs = text.split('&').filter(pair => pair !== '').map(pair => {
      const eq = pair.indexOf('=')
      return eq === -1 ? [pair, decode(pair), ''] : [pair, decode(pair.slice(0, eq)), decode(pair.slice(eq + 1))]
    })
  } catch {
    return unusable
  }
  const params: Record<string, string> = {}
  for (const pair of pairs) {
    if (pair[1] === 'timestamp' && pair[2] !== '') {
      pair[2] = stamp(pair[2])
      pair[0] = `timestamp=${pair[2]}`
    }
    params[pair[1]] = pair[2]
  }
  const sign = signGenericParams(params, secret)
  const hasSign = pairs.some(pair => pair[1] === 'sign')
  const out = pairs.map(pair => pair[1] === 'sign' ? `sign=${sign}` : pair[0])
  if (!hasSign) out.push(`sign=${sign}`)
  return { body: Buffer.from(out.join('&')), headers: {} }
}

/**
 * Alipay: `app_id` and `seller_id` name production's application and become
 * the local ones; every other value keeps its bytes in the body's charset,
 * and RSA2 is computed over those bytes, as Alipay signs them. Alipay's
 * signature carries no time, so nothing else changes.
 */
export function resignAlipay (raw: RawRequest, keys: LocalGatewayKeys['alipay']): Resigning {
  let fields: Map<string, Buffer>
  try {
    fields = parseFormBytes(rawBytes(raw))
  } catch {
    return { unusable: 'the recorded body is not a form' }
  }
  // Map#set keeps an existing field where it was; a missing seller_id is added (the local service checks it).
  fields.set('app_id', Buffer.from(keys.appId, 'latin1'))
  fields.set('seller_id', Buffer.from(keys.sellerId, 'latin1'))
  fields.set('sign', Buffer.from(signAlipayFields(fields, keys.privateKey), 'latin1'))
  return { body: encodeFormBytes(fields), headers: {} }
}

/** Stripe: the body byte for byte, `Stripe-Signature: t=<now>,v1=…` under the local `whsec_`. */
export function resignStripe (raw: RawRequest, keys: LocalGatewayKeys['stripe'], now: Date): Resigning {
  const body = rawBytes(raw)
  return { body, headers: { 'stripe-signature': stripeSignatureHeader(keys.webhookSecret, body, now) } }
}

/** Standard Webhooks: the body byte for byte and the recorded `webhook-id`; `webhook-timestamp` now, signed with the local secret. */
export function resignStandard (raw: RawRequest, keys: LocalGatewayKeys['standard'], now: Date): Resigning {
  const webhookId = raw.headers['webhook-id']
  if (webhookId === undefined || webhookId === '') return { unusable: 'no webhook-id was recorded' }
  const body = rawBytes(raw)
  return { body, headers: standardWebhookHeaders(keys.secret, webhookId, body, now) }
}

/**
 * WeChat Pay: the envelope as recorded (its `id` is the delivery id) with the
 * resource rebuilt from the recorded facts and sealed under the local APIv3
 * key, since the recorded ciphertext is under production's; then signed with
 * the local platform key, `Wechatpay-Timestamp` now and a fresh nonce.
 */
export function resignWechatpay (raw: RawRequest, facts: PaymentData, keys: LocalGatewayKeys['wechatpay'], now: Date): Resigning {
  let envelope: unknown
  try {
    envelope = JSON.parse(rawBytes(raw).toString('utf8'))
  } catch {
    return { unusable: 'the recorded body is not JSON' }
  }
  if (!isJsonObject(envelope) || typeof envelope.event_type !== 'string' || !isJsonObject(envelope.resource)) {
    return { unusable: 'the recorded body is not a notification envelope' }
  }
  const recorded = envelope.resource
  const originalType = typeof recorded.original_type === 'string' ? recorded.original_type : envelope.event_type.startsWith('REFUND.') ? 'refund' : 'transaction'
  const associatedData = typeof recorded.associated_data === 'string' ? recorded.associated_data : originalType
  envelope.resource = sealedResource(wechatpayResource(envelope.event_type, facts), keys.apiV3Key, originalType, associatedData)
  const body = Buffer.from(JSON.stringify(envelope))
  return { body, headers: wechatpayHeaders(body, keys.privateKey, keys.serial, now) }
}
