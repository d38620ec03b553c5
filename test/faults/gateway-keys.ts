import { createHmac, createSign, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
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

/** Signs a JSON body for a JSON gateway, or a form built from `params` for a form gateway. */
export function signFor (gateway: string, content: { json: string, params: Record<string, string> }): SignedRequest | undefined {
  switch (gateway) {
    case 'generic': return signGeneric(content.params)
    case 'alipay': return signAlipay(content.params)
    case 'stripe': return signStripe(content.json)
    case 'standard': return signStandard(content.json)
    case 'wechatpay': return signWechatpay(content.json)
    default: return undefined
  }
}
