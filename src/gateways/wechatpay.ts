import { createCipheriv, createDecipheriv, createSign, randomBytes, verify as verifySignature, type KeyLike, type KeyObject } from 'node:crypto'
import type { Config } from '../config.js'
import { ConfigError } from '../config.js'
import { MalformedError, SignatureError, type AppError } from '../errors.js'
import { orderIdPattern, type PaymentEventType } from '../orders/events.js'
import { parseCurrency, parseMinorUnits } from '../orders/money.js'
import { isJsonObject, parseJsonObject, type JsonObject } from './json.js'
import { parseRsaPublicKey } from './public-keys.js'
import { withinTolerance } from './signing.js'
import { headerValue, type Ack, type GatewayAdapter, type PaymentNotification, type RawCallback } from './types.js'

export interface WechatpayOptions {
  /** Platform public keys by Wechatpay-Serial (certificate serial or PUB_KEY_ID_…), upper case. */
  platformKeys: ReadonlyMap<string, KeyObject>
  /** The 32-byte APIv3 key that encrypts `resource`. */
  apiV3Key: Buffer
  toleranceSeconds?: number
}

interface VerifiedWechatpay {
  id: string
  eventType: string
  createTime: string | null
  /** The decrypted resource, for the event types this service records; null otherwise. */
  resource: JsonObject | null
}

const signatureType = 'WECHATPAY2-SHA256-RSA2048'
// WeChat Pay sends a few deliberately wrong signatures with this prefix to check that merchants verify.
const probePrefix = 'WECHATPAY/SIGNTEST/'
const base64Pattern = /^[A-Za-z0-9+/]+={0,2}$/
const idPattern = /^[\x21-\x7e]{1,128}$/
const serialPattern = /^[A-Za-z0-9_-]{1,64}$/
const gcmTagLength = 16
// Domestic WeChat Pay refunds carry no currency: they are in the trade's, which is CNY.
const defaultCurrency = 'CNY'

const eventTypes: Record<string, PaymentEventType> = {
  'TRANSACTION.SUCCESS': 'PaymentSucceeded',
  'REFUND.SUCCESS': 'PaymentRefunded',
  // ABNORMAL (e.g. the buyer's card was closed) may still end in SUCCESS; RefundFailed is cleared by a later refund fact.
  'REFUND.ABNORMAL': 'RefundFailed',
  'REFUND.CLOSED': 'RefundFailed'
}

function stringField (object: JsonObject, name: string, path: string): string {
  const value = object[name]
  if (typeof value !== 'string' || value === '') throw new MalformedError('must be a non-empty string', `${path}${name}`)
  return value
}

function optionalString (object: JsonObject, name: string, path: string): string | null {
  return object[name] === undefined || object[name] === null ? null : stringField(object, name, path)
}

function idField (object: JsonObject, name: string, path: string): string {
  const value = stringField(object, name, path)
  if (!idPattern.test(value)) throw new MalformedError('must be 1-128 printable ASCII characters', `${path}${name}`)
  return value
}

function objectField (object: JsonObject, name: string, path: string): JsonObject {
  const value = object[name]
  if (!isJsonObject(value)) throw new MalformedError('must be an object', `${path}${name}`)
  return value
}

/** AEAD_AES_256_GCM as WeChat Pay uses it: base64 ciphertext with the 16-byte tag appended, a 12-character nonce, associated data. */
function decryptResource (resource: JsonObject, key: Buffer): JsonObject {
  const algorithm = stringField(resource, 'algorithm', 'resource.')
  if (algorithm !== 'AEAD_AES_256_GCM') throw new MalformedError('must be AEAD_AES_256_GCM', 'resource.algorithm')
  const ciphertext = stringField(resource, 'ciphertext', 'resource.')
  if (!base64Pattern.test(ciphertext)) throw new MalformedError('must be base64', 'resource.ciphertext')
  const nonce = stringField(resource, 'nonce', 'resource.')
  const associatedData = resource.associated_data ?? ''
  if (typeof associatedData !== 'string') throw new MalformedError('must be a string', 'resource.associated_data')
  const sealed = Buffer.from(ciphertext, 'base64')
  if (sealed.length < gcmTagLength) throw new MalformedError('is shorter than its authentication tag', 'resource.ciphertext')
  let plaintext: Buffer
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(nonce, 'utf8'), { authTagLength: gcmTagLength })
    decipher.setAuthTag(sealed.subarray(sealed.length - gcmTagLength))
    decipher.setAAD(Buffer.from(associatedData, 'utf8'))
    plaintext = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - gcmTagLength)), decipher.final()])
  } catch {
    // The tag authenticates the resource: a failure is a wrong APIv3 key or a forged resource, so nothing is recorded.
    throw new SignatureError('resource does not decrypt with PAYNOTIFY_WECHATPAY_APIV3_KEY')
  }
  return parseJsonObject(plaintext, 'resource')
}

/** Seals a resource as WeChat Pay does (the inverse of decryptResource): base64 of the ciphertext with the tag appended. */
export function sealResource (plaintext: string, key: Buffer, nonce: string, associatedData: string): string {
  const cipher = createCipheriv('aes-256-gcm', key, Buffer.from(nonce, 'utf8'), { authTagLength: gcmTagLength })
  cipher.setAAD(Buffer.from(associatedData, 'utf8'))
  return Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]).toString('base64')
}

/** What Wechatpay-Signature signs: `${timestamp}\n${nonce}\n${body}\n`. */
function signedMessage (timestamp: string, nonce: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${timestamp}\n${nonce}\n`, 'utf8'), body, Buffer.from('\n')])
}

/**
 * The headers WeChat Pay sends with `body` at `now`, signed with the platform
 * private key that `serial` names (paynotify simulate and replay --to).
 */
export function wechatpayHeaders (body: Buffer, privateKey: KeyLike, serial: string, now: Date): Record<string, string> {
  const timestamp = String(Math.floor(now.getTime() / 1000))
  const nonce = randomBytes(16).toString('hex').toUpperCase()
  return {
    'wechatpay-serial': serial,
    'wechatpay-timestamp': timestamp,
    'wechatpay-nonce': nonce,
    'wechatpay-signature': createSign('RSA-SHA256').update(signedMessage(timestamp, nonce, body)).sign(privateKey, 'base64'),
    'wechatpay-signature-type': signatureType
  }
}

function requireHeader (callback: RawCallback, name: string): string {
  const value = headerValue(callback.headers, name.toLowerCase())
  if (value === undefined || value === '') throw new SignatureError(`${name} header is missing`)
  return value
}

/**
 * WeChat Pay API v3 notifications (回调通知): a JSON envelope signed with the
 * platform key named by Wechatpay-Serial, its `resource` encrypted with the
 * APIv3 key. Acked with 204; refusals get `{"code":"FAIL","message":…}`.
 */
export function createWechatpayAdapter (options: WechatpayOptions): GatewayAdapter<VerifiedWechatpay> {
  const tolerance = options.toleranceSeconds ?? 300
  return {
    name: 'wechatpay',
    mediaTypes: ['application/json'],
    // The envelope and its base64 resource; a transaction with promotion_detail and goods lists stays within a few KiB.
    bodyLimit: 32 * 1024,
    signatureHeaders: ['wechatpay-serial', 'wechatpay-signature', 'wechatpay-timestamp', 'wechatpay-nonce', 'wechatpay-signature-type'],

    verify (callback: RawCallback, now: Date): VerifiedWechatpay {
      const signature = requireHeader(callback, 'Wechatpay-Signature')
      const serial = requireHeader(callback, 'Wechatpay-Serial')
      const timestamp = requireHeader(callback, 'Wechatpay-Timestamp')
      const nonce = requireHeader(callback, 'Wechatpay-Nonce')
      const type = headerValue(callback.headers, 'wechatpay-signature-type')
      if (type !== undefined && type !== signatureType) throw new SignatureError(`Wechatpay-Signature-Type must be ${signatureType}`)
      if (signature.startsWith(probePrefix)) throw new SignatureError(`Wechatpay-Signature is a ${probePrefix} probe`)
      const key = serialPattern.test(serial) ? options.platformKeys.get(serial.toUpperCase()) : undefined
      if (key === undefined) throw new SignatureError('Wechatpay-Serial names no configured platform key')
      if (!/^\d{1,12}$/.test(timestamp) || !withinTolerance(Number(timestamp), now, tolerance)) {
        throw new SignatureError(`Wechatpay-Timestamp is outside the ${tolerance} s window`)
      }
      if (!base64Pattern.test(signature)) throw new SignatureError('Wechatpay-Signature must be base64')
      if (!verifySignature('sha256', signedMessage(timestamp, nonce, callback.body), key, Buffer.from(signature, 'base64'))) {
        throw new SignatureError('Wechatpay-Signature does not match the platform key')
      }

      const envelope = parseJsonObject(callback.body)
      const eventType = stringField(envelope, 'event_type', '')
      const recorded = Object.hasOwn(eventTypes, eventType)
      return {
        id: idField(envelope, 'id', ''),
        eventType,
        createTime: optionalString(envelope, 'create_time', ''),
        resource: recorded ? decryptResource(objectField(envelope, 'resource', ''), options.apiV3Key) : null
      }
    },

    parse ({ id, eventType, createTime, resource }: VerifiedWechatpay): PaymentNotification[] {
      const type = Object.hasOwn(eventTypes, eventType) ? eventTypes[eventType] : undefined
      // Event types this service does not track are acked (so they stop) and not recorded.
      if (type === undefined || resource === null) return []
      const orderId = stringField(resource, 'out_trade_no', 'resource.')
      if (!orderIdPattern.test(orderId)) throw new MalformedError('must be 1-64 characters of A-Z a-z 0-9 _ . : -', 'resource.out_trade_no')
      const amount = objectField(resource, 'amount', 'resource.')
      const currency = amount.currency === undefined ? defaultCurrency : parseCurrency(amount.currency, 'resource.amount.currency')
      const common = { orderId, currency, gateway: 'wechatpay', gatewayStatus: eventType }

      if (type === 'PaymentSucceeded') {
        const tradeState = optionalString(resource, 'trade_state', 'resource.')
        if (tradeState !== null && tradeState !== 'SUCCESS') throw new MalformedError(`is ${tradeState} in a TRANSACTION.SUCCESS notification`, 'resource.trade_state')
        return [{
          type,
          deliveryId: id,
          data: {
            ...common,
            transactionId: idField(resource, 'transaction_id', 'resource.'),
            amount: parseMinorUnits(amount.total, 'resource.amount.total'),
            refundId: null,
            cumulative: false,
            gatewayTime: optionalString(resource, 'success_time', 'resource.') ?? createTime
          }
        }]
      }
      return [{
        type,
        deliveryId: id,
        data: {
          ...common,
          transactionId: resource.transaction_id === undefined ? null : idField(resource, 'transaction_id', 'resource.'),
          // amount.refund is this refund alone (each refund has its own refund_id).
          amount: parseMinorUnits(amount.refund, 'resource.amount.refund'),
          refundId: idField(resource, 'refund_id', 'resource.'),
          cumulative: false,
          gatewayTime: optionalString(resource, 'success_time', 'resource.') ?? createTime
        }
      }]
    },

    ack (error?: AppError): Ack {
      // WeChat Pay takes 200/204 as received; any 4xx/5xx with this body makes it retry.
      return error === undefined
        ? { statusCode: 204, contentType: 'text/plain; charset=utf-8', body: '' }
        : { statusCode: error.statusCode, contentType: 'application/json; charset=utf-8', body: JSON.stringify({ code: 'FAIL', message: error.message }) }
    }
  }
}

/**
 * Parses PAYNOTIFY_WECHATPAY_PLATFORM_KEYS: a JSON object from Wechatpay-Serial
 * (platform certificate serial, or the WeChat Pay public key id PUB_KEY_ID_…)
 * to that key as PEM public key, PEM certificate or base64 DER. Several
 * entries let a rotation overlap.
 */
export function parsePlatformKeys (value: string): Map<string, KeyObject> {
  const variable = 'PAYNOTIFY_WECHATPAY_PLATFORM_KEYS'
  let parsed: unknown
  try {
    parsed = JSON.parse(value)
  } catch {
    throw new ConfigError(`invalid configuration: ${variable} must be a JSON object {"<serial>": "<PEM>"}`)
  }
  if (!isJsonObject(parsed) || Object.keys(parsed).length === 0) {
    throw new ConfigError(`invalid configuration: ${variable} must be a non-empty JSON object {"<serial>": "<PEM>"}`)
  }
  const keys = new Map<string, KeyObject>()
  for (const [serial, pem] of Object.entries(parsed)) {
    const name = `${variable}["${serial}"]`
    if (!serialPattern.test(serial)) throw new ConfigError(`invalid configuration: ${name}: a serial is 1-64 characters of A-Z a-z 0-9 _ -`)
    if (typeof pem !== 'string') throw new ConfigError(`invalid configuration: ${name} must be a PEM string`)
    const { key, certificate } = parseRsaPublicKey(pem, name)
    const stripZeros = (hex: string): string => hex.toUpperCase().replace(/^0+/, '')
    if (certificate !== null && stripZeros(certificate.serialNumber) !== stripZeros(serial)) {
      throw new ConfigError(`invalid configuration: ${name} is a certificate with serial ${certificate.serialNumber}`)
    }
    if (keys.has(serial.toUpperCase())) throw new ConfigError(`invalid configuration: ${name} is listed twice`)
    keys.set(serial.toUpperCase(), key)
  }
  return keys
}

/**
 * The wechatpay adapter when its keys are configured, else undefined (its
 * route is then 404). One key without the other is a configuration error.
 */
export function wechatpayAdapterFromConfig (keys: Config['gateways']['wechatpay']): GatewayAdapter<VerifiedWechatpay> | undefined {
  if (keys.platformKeys === undefined && keys.apiV3Key === undefined) return undefined
  if (keys.platformKeys === undefined || keys.apiV3Key === undefined) {
    throw new ConfigError('invalid configuration: PAYNOTIFY_WECHATPAY_PLATFORM_KEYS and PAYNOTIFY_WECHATPAY_APIV3_KEY must be set together')
  }
  const apiV3Key = Buffer.from(keys.apiV3Key, 'utf8')
  if (apiV3Key.length !== 32) throw new ConfigError('invalid configuration: PAYNOTIFY_WECHATPAY_APIV3_KEY must be 32 bytes')
  return createWechatpayAdapter({ platformKeys: parsePlatformKeys(keys.platformKeys), apiV3Key })
}
