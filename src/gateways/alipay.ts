import { createSign, verify as verifySignature, type KeyLike, type KeyObject } from 'node:crypto'
import type { Config } from '../config.js'
import { ConfigError } from '../config.js'
import { AppError, MalformedError, SignatureError } from '../errors.js'
import { orderIdPattern, type PaymentEventType } from '../orders/events.js'
import { parseDecimalAmount } from '../orders/money.js'
import { charsetLabel, decodeCharset, parseFormBytes } from './form-bytes.js'
import { assertSignable, optionalId } from './params.js'
import { parseRsaPublicKey } from './public-keys.js'
import { safeEqual, sha256Hex } from './signing.js'
import { type Ack, type GatewayAdapter, type PaymentNotification, type RawCallback } from './types.js'

export interface AlipayOptions {
  /** Alipay's public key (not the merchant's application key). */
  publicKey: KeyObject
  appId: string
  sellerId?: string | undefined
}

interface VerifiedAlipay {
  params: Map<string, string>
  signed: Buffer
}

// Open Platform notifications carry amounts in yuan (total_amount, refund_fee: "单位为人民币（元）").
const currency = 'CNY'
const excluded = new Set(['sign', 'sign_type'])
const base64Signature = /^[A-Za-z0-9+/]{40,1024}={0,2}$/

const tradeStatusTypes: Record<string, PaymentEventType> = {
  WAIT_BUYER_PAY: 'PaymentPending',
  // TRADE_FINISHED is a second report of a paid trade (no more refunds possible): fact dedup by trade_no.
  TRADE_SUCCESS: 'PaymentSucceeded',
  TRADE_FINISHED: 'PaymentSucceeded',
  TRADE_CLOSED: 'PaymentClosed'
}

/**
 * The bytes Alipay signs: parameters sorted by name, `sign`, `sign_type` and
 * empty values left out, `k=v` joined by `&`, values percent-decoded but
 * still in the notification's charset (Alipay's SDKs verify
 * `content.getBytes(charset)`).
 *
 * Alipay's string escapes nothing either, so the generic rule applies
 * (assertSignable: a MalformedError for a name or value that would let the
 * string read two ways). Here the signer is Alipay itself, and the fields a
 * merchant fills in (subject, body, passback_params) may hold `&`: the rule
 * lets "Tom & Jerry" or "A&B" through and refuses only `&` followed by a name
 * and `=`. Such a value cannot be told from a notification whose fields were
 * moved into it (a merchant that puts a buyer's text in `subject` would hand
 * the buyer that power), so it is refused rather than guessed at: Alipay gets
 * `fail`, retries, and the refusal is logged naming the field.
 */
export function alipaySigningBytes (fields: ReadonlyMap<string, Buffer>): Buffer {
  const parts: Buffer[] = []
  const names = [...fields.keys()].filter(name => !excluded.has(name) && fields.get(name)!.length > 0).sort()
  for (const name of names) {
    const value = fields.get(name)!
    // Only a value holding `&` (one byte, 0x26, in every charset Alipay uses) needs its text read.
    assertSignable(name, value.includes(0x26) ? value.toString('latin1') : '')
    if (parts.length > 0) parts.push(Buffer.from('&'))
    parts.push(Buffer.from(`${name}=`, 'latin1'), value)
  }
  return Buffer.concat(parts)
}

/**
 * Signs parameters the way Alipay signs a UTF-8 notification (RSA2): for
 * `paynotify simulate` and tests. Returns the base64 `sign` value.
 */
export function signAlipayParams (params: Readonly<Record<string, string>>, privateKey: KeyLike): string {
  return signAlipayFields(new Map(Object.entries(params).map(([name, value]) => [name, Buffer.from(value, 'utf8')])), privateKey)
}

/** RSA2 over fields whose values are bytes in the notification's charset (paynotify replay --to re-signs those). */
export function signAlipayFields (fields: ReadonlyMap<string, Buffer>, privateKey: KeyLike): string {
  return createSign('RSA-SHA256').update(alipaySigningBytes(fields)).sign(privateKey, 'base64')
}

function required (params: Map<string, string>, field: string): string {
  const value = params.get(field)
  if (value === undefined || value === '') throw new MalformedError('is required', field)
  return value
}

/**
 * Alipay Open Platform asynchronous notifications (异步通知): form-encoded in
 * the charset the body names, RSA2-signed with Alipay's key, acked with the
 * exact body `success`.
 */
export function createAlipayAdapter (options: AlipayOptions): GatewayAdapter<VerifiedAlipay> {
  return {
    name: 'alipay',
    mediaTypes: ['application/x-www-form-urlencoded'],
    // About 40 documented fields; the longest (subject 256, body 400, passback_params 512
    // characters, fund_bill_list, voucher_detail_list) stay under 8 KiB even percent-encoded GBK.
    bodyLimit: 16 * 1024,
    // The signature travels in the body; the Content-Type (kept anyway) carries nothing signed.
    signatureHeaders: [],

    verify (callback: RawCallback): VerifiedAlipay {
      const fields = parseFormBytes(callback.body)
      const charsetField = fields.get('charset')
      const charsetName = charsetField !== undefined && charsetField.length > 0
        ? charsetField.toString('latin1')
        : /;\s*charset=([^;\s]+)/i.exec(callback.contentType)?.[1] ?? 'utf-8'
      const label = charsetLabel(charsetName)
      const params = new Map<string, string>()
      for (const [name, value] of fields) params.set(name, decodeCharset(value, label, name))

      const sign = params.get('sign')
      if (sign === undefined || sign === '') throw new SignatureError('sign is missing')
      if (!base64Signature.test(sign)) throw new SignatureError('sign must be base64')
      const signType = params.get('sign_type')
      if (signType !== undefined && signType !== '' && signType !== 'RSA2') throw new SignatureError('sign_type must be RSA2')
      const signed = alipaySigningBytes(fields)
      if (!verifySignature('sha256', signed, options.publicKey, Buffer.from(sign, 'base64'))) {
        throw new SignatureError('sign does not match the Alipay public key')
      }
      // A genuine notification for another merchant's application is not ours to record.
      if (!safeEqual(params.get('app_id') ?? '', options.appId)) {
        throw new AppError(401, 'wrong_recipient', 'app_id does not match PAYNOTIFY_ALIPAY_APP_ID')
      }
      if (options.sellerId !== undefined && !safeEqual(params.get('seller_id') ?? '', options.sellerId)) {
        throw new AppError(401, 'wrong_recipient', 'seller_id does not match PAYNOTIFY_ALIPAY_SELLER_ID')
      }
      return { params, signed }
    },

    parse ({ params, signed }: VerifiedAlipay): PaymentNotification[] {
      const orderId = required(params, 'out_trade_no')
      if (!orderIdPattern.test(orderId)) throw new MalformedError('must be 1-64 characters of A-Z a-z 0-9 _ . : -', 'out_trade_no')
      const tradeStatus = required(params, 'trade_status')
      const transactionId = optionalId(params, 'trade_no')
      // Retries carry the same notify_id; without one, the signed bytes identify the notification.
      const deliveryId = optionalId(params, 'notify_id') ?? `sha256:${sha256Hex(signed)}`
      const notifyTime = params.get('notify_time') || null
      const common = { orderId, currency, gateway: 'alipay', transactionId, gatewayStatus: tradeStatus }

      // refund_fee is also sent as "0.00" on payments; gmt_refund marks a refund notification.
      const refundFee = params.get('refund_fee')
      const gmtRefund = params.get('gmt_refund')
      if (refundFee !== undefined && refundFee !== '' && gmtRefund !== undefined && gmtRefund !== '') {
        return [{
          type: 'PaymentRefunded',
          deliveryId,
          data: {
            ...common,
            // refund_fee is the total refunded on the trade so far, not this refund alone.
            amount: parseDecimalAmount(refundFee, currency, 'refund_fee'),
            refundId: optionalId(params, 'out_biz_no'),
            cumulative: true,
            gatewayTime: gmtRefund
          }
        }]
      }

      const type = Object.hasOwn(tradeStatusTypes, tradeStatus) ? tradeStatusTypes[tradeStatus] : undefined
      if (type === undefined) throw new MalformedError('must be WAIT_BUYER_PAY, TRADE_SUCCESS, TRADE_FINISHED or TRADE_CLOSED', 'trade_status')
      const timeField = type === 'PaymentSucceeded' ? 'gmt_payment' : type === 'PaymentClosed' ? 'gmt_close' : 'gmt_create'
      return [{
        type,
        deliveryId,
        data: {
          ...common,
          amount: parseDecimalAmount(required(params, 'total_amount'), currency, 'total_amount'),
          refundId: null,
          cumulative: false,
          gatewayTime: params.get(timeField) || notifyTime
        }
      }]
    },

    ack (error): Ack {
      // Alipay retries until the body is exactly `success`; anything else, with a non-2xx status, asks for a retry.
      return error === undefined
        ? { statusCode: 200, contentType: 'text/plain; charset=utf-8', body: 'success' }
        : { statusCode: error.statusCode, contentType: 'text/plain; charset=utf-8', body: 'fail' }
    }
  }
}

/**
 * The alipay adapter when its keys are configured, else undefined (its route
 * is then 404). A key without an app id is a configuration error, not a
 * silently disabled gateway.
 */
export function alipayAdapterFromConfig (keys: Config['gateways']['alipay']): GatewayAdapter<VerifiedAlipay> | undefined {
  if (keys.publicKey === undefined && keys.appId === undefined) return undefined
  if (keys.publicKey === undefined || keys.appId === undefined) {
    throw new ConfigError('invalid configuration: PAYNOTIFY_ALIPAY_PUBLIC_KEY and PAYNOTIFY_ALIPAY_APP_ID must be set together')
  }
  const { key } = parseRsaPublicKey(keys.publicKey, 'PAYNOTIFY_ALIPAY_PUBLIC_KEY')
  return createAlipayAdapter({ publicKey: key, appId: keys.appId, sellerId: keys.sellerId })
}
