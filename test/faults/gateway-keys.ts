import { createCipheriv, createHmac, createSign, generateKeyPairSync, randomBytes, randomUUID, type KeyObject } from 'node:crypto'
import { signedForm, testSecrets } from '../helpers.js'

/**
 * Keys for every gateway the registry knows, in the formats .env.example
 * gives, and signers written from each scheme's description (DESIGN §5), not
 * from the adapters: a forged or fuzzed callback is judged by what the
 * gateway would really send.
 */

const rsa = (): { publicKey: KeyObject, privateKey: KeyObject } => generateKeyPairSync('rsa', { modulusLength: 2048 })
const pem = (key: KeyObject): string => key.export({ type: 'spki', format: 'pem' }).toString()

export const alipayKeys = rsa()
export const alipayAppId = '2021000000000001'
export const wechatpayKeys = rsa()
export const wechatpaySerial = '5157F09EFDC096DE15EBE81A47057A7232F1B8E1'
export const wechatpayApiV3Key = 'Fz8kQ2wL7nR4tY1uI9oP3aS6dG5hJ0xC'
export const stripeSecret = `whsec_${randomBytes(24).toString('hex')}`
export const standardSecret = `whsec_${randomBytes(32).toString('base64')}`

/** Environment enabling every gateway. */
export const allGatewaysEnv: Record<string, string> = {
  PAYNOTIFY_ALIPAY_PUBLIC_KEY: pem(alipayKeys.publicKey),
  PAYNOTIFY_ALIPAY_APP_ID: alipayAppId,
  PAYNOTIFY_WECHATPAY_PLATFORM_KEYS: JSON.stringify({ [wechatpaySerial]: pem(wechatpayKeys.publicKey) }),
  PAYNOTIFY_WECHATPAY_APIV3_KEY: wechatpayApiV3Key,
  PAYNOTIFY_STRIPE_WEBHOOK_SECRET: stripeSecret,
  PAYNOTIFY_STANDARD_SECRET: standardSecret
}

export interface SignedRequest {
  body: string
  headers: Record<string, string>
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000)

/** Generic: hex HMAC-SHA256 of the sorted `k=v` pairs, in the form body (test/helpers signedForm). */
export function signGeneric (params: Record<string, string>, secret = testSecrets.genericSecret): SignedRequest {
  return { body: signedForm(params, secret), headers: { 'content-type': 'application/x-www-form-urlencoded' } }
}

/** Alipay RSA2: SHA256withRSA over the sorted, decoded `k=v` pairs without sign and sign_type; base64 `sign` in the body. */
export function signAlipay (params: Record<string, string>, key: KeyObject = alipayKeys.privateKey): SignedRequest {
  const signing = Object.keys(params).filter(k => k !== 'sign' && k !== 'sign_type' && params[k] !== '').sort().map(k => `${k}=${params[k]}`).join('&')
  const sign = createSign('RSA-SHA256').update(signing, 'utf8').sign(key, 'base64')
  return {
    body: new URLSearchParams({ ...params, sign_type: 'RSA2', sign }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }
  }
}

/** Stripe: `Stripe-Signature: t=…,v1=hex HMAC-SHA256(whsec string, "t.body")`. */
export function signStripe (body: string, options: { secret?: string, timestamp?: number } = {}): SignedRequest {
  const t = options.timestamp ?? nowSeconds()
  const v1 = createHmac('sha256', options.secret ?? stripeSecret).update(`${t}.${body}`).digest('hex')
  return { body, headers: { 'content-type': 'application/json', 'stripe-signature': `t=${t},v1=${v1}` } }
}

/** Standard Webhooks: `webhook-signature: v1,base64 HMAC-SHA256(base64-decoded secret, "id.ts.body")`. */
export function signStandard (body: string, options: { secret?: string, timestamp?: number, id?: string } = {}): SignedRequest {
  const t = options.timestamp ?? nowSeconds()
  const id = options.id ?? `msg_${randomBytes(8).toString('hex')}`
  const key = Buffer.from((options.secret ?? standardSecret).slice('whsec_'.length), 'base64')
  const v1 = createHmac('sha256', key).update(`${id}.${t}.${body}`).digest('base64')
  return { body, headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(t), 'webhook-signature': `v1,${v1}` } }
}

/** WeChat Pay v3: SHA256withRSA over "ts\nnonce\nbody\n" with the platform key named by Wechatpay-Serial. */
export function signWechatpay (body: string, options: { key?: KeyObject, timestamp?: number, serial?: string } = {}): SignedRequest {
  const t = String(options.timestamp ?? nowSeconds())
  const nonce = randomBytes(16).toString('hex')
  const signature = createSign('RSA-SHA256').update(`${t}\n${nonce}\n${body}\n`).sign(options.key ?? wechatpayKeys.privateKey, 'base64')
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'wechatpay-serial': options.serial ?? wechatpaySerial,
      'wechatpay-timestamp': t,
      'wechatpay-nonce': nonce,
      'wechatpay-signature': signature,
      'wechatpay-signature-type': 'WECHATPAY2-SHA256-RSA2048'
    }
  }
}

/** Keys that belong to no configured gateway: what a forger would sign with. */
export const impostor = {
  rsa: rsa().privateKey,
  hmacSecret: `whsec_${randomBytes(32).toString('base64')}`
}

export interface SignOptions {
  /** HMAC gateways: sign with this secret instead of the configured one. */
  secret?: string
  /** RSA gateways: sign with this private key instead of the configured one. */
  key?: KeyObject
  timestamp?: number
}

/** Signs a JSON body for a JSON gateway, or a form built from `params` for a form gateway. */
export function signFor (gateway: string, content: { json: string, params: Record<string, string> }, options: SignOptions = {}): SignedRequest | undefined {
  switch (gateway) {
    case 'generic': return signGeneric(options.timestamp === undefined ? content.params : { ...content.params, timestamp: String(options.timestamp) }, options.secret)
    case 'alipay': return signAlipay(content.params, options.key)
    case 'stripe': return signStripe(content.json, options)
    case 'standard': return signStandard(content.json, options)
    case 'wechatpay': return signWechatpay(content.json, options)
    default: return undefined
  }
}

function aesGcm (plaintext: string, nonce: string, associatedData: string): string {
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(wechatpayApiV3Key), Buffer.from(nonce))
  cipher.setAAD(Buffer.from(associatedData))
  return Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]).toString('base64')
}

/** The order id, amount and delivery id fields of each gateway's payload. */
export const fieldsOf: Record<string, { orderId: string, amount: string, amountKind: 'decimal' | 'json', currency?: string, others: string[] }> = {
  generic: { orderId: 'order_id', amount: 'amount', amountKind: 'decimal', currency: 'currency', others: ['status', 'notify_id', 'trade_no', 'timestamp'] },
  alipay: { orderId: 'out_trade_no', amount: 'total_amount', amountKind: 'decimal', others: ['trade_status', 'trade_no', 'notify_id', 'app_id', 'charset'] },
  stripe: { orderId: 'metadata.order_id', amount: 'amount_received', amountKind: 'json', currency: 'currency', others: [] },
  standard: { orderId: 'order_id', amount: 'amount', amountKind: 'json', currency: 'currency', others: ['transaction_id'] },
  wechatpay: { orderId: 'out_trade_no', amount: 'amount.total', amountKind: 'json', currency: 'amount.currency', others: ['transaction_id', 'trade_state'] }
}

/**
 * A genuine payment callback for `gateway` (10.00 CNY, order `orderId`), signed
 * as the gateway would sign it, or with `sign` overrides. With `field`, that
 * field holds `value` instead (raw JSON text for JSON amounts), still signed.
 */
export function genuineCallback (gateway: string, options: { orderId?: string, field?: string, value?: string, sign?: SignOptions } = {}): SignedRequest | undefined {
  const id = randomUUID()
  const orderId = options.orderId ?? `fz-${id}`
  const { field = 'note', value = 'fine' } = options
  const inject = (json: string): string => json.replace('"__RAW__"', value)
  switch (gateway) {
    case 'generic': {
      const params: Record<string, string> = { order_id: orderId, amount: '10.00', status: '1', currency: 'CNY', notify_id: id, trade_no: `T-${id}` }
      params[field] = value
      return signFor('generic', { json: '', params }, options.sign)
    }
    case 'alipay': {
      const params: Record<string, string> = {
        app_id: alipayAppId,
        out_trade_no: orderId,
        trade_no: `2026${Date.now()}`,
        trade_status: 'TRADE_SUCCESS',
        total_amount: '10.00',
        notify_id: id,
        notify_time: '2026-11-27 12:00:00',
        gmt_payment: '2026-11-27 12:00:00',
        charset: 'utf-8'
      }
      params[field] = value
      return signFor('alipay', { json: '', params }, options.sign)
    }
    case 'stripe': {
      const object: Record<string, unknown> = { id: `pi_${id}`, object: 'payment_intent', amount: 1000, amount_received: 1000, currency: 'cny', metadata: { order_id: orderId } }
      if (field === 'metadata.order_id') object.metadata = { order_id: value }
      else object[field] = field === 'amount_received' ? '__RAW__' : value
      return signFor('stripe', { json: inject(JSON.stringify({ id: `evt_${id}`, object: 'event', type: 'payment_intent.succeeded', created: nowSeconds(), data: { object } })), params: {} }, options.sign)
    }
    case 'standard': {
      const data: Record<string, unknown> = { order_id: orderId, amount: 1000, currency: 'CNY', transaction_id: `T-${id}` }
      data[field] = field === 'amount' ? '__RAW__' : value
      return signFor('standard', { json: inject(JSON.stringify({ type: 'payment.succeeded', timestamp: new Date().toISOString(), data })), params: {} }, options.sign)
    }
    case 'wechatpay': {
      const resource: Record<string, unknown> = { out_trade_no: orderId, transaction_id: `42${Date.now()}`, trade_state: 'SUCCESS', amount: { total: 1000, currency: 'CNY' } }
      if (field === 'amount.total') resource.amount = { total: '__RAW__', currency: 'CNY' }
      else if (field === 'amount.currency') resource.amount = { total: 1000, currency: value }
      else resource[field] = value
      const nonce = randomBytes(6).toString('hex')
      const envelope = {
        id,
        create_time: '2026-11-27T12:00:00+08:00',
        resource_type: 'encrypt-resource',
        event_type: 'TRANSACTION.SUCCESS',
        resource: { original_type: 'transaction', algorithm: 'AEAD_AES_256_GCM', ciphertext: aesGcm(inject(JSON.stringify(resource)), nonce, 'transaction'), associated_data: 'transaction', nonce }
      }
      return signFor('wechatpay', { json: JSON.stringify(envelope), params: {} }, options.sign)
    }
    default:
      return undefined
  }
}
