import { randomBytes } from 'node:crypto'
import { sealResource } from '../gateways/wechatpay.js'
import type { PaymentData } from '../orders/events.js'

/** The facts a WeChat Pay resource carries, as the adapter records them. */
export type WechatpayFacts = Pick<PaymentData, 'orderId' | 'amount' | 'currency' | 'transactionId' | 'refundId' | 'gatewayTime'>

/**
 * The decrypted `resource` WeChat Pay sends for a fact: the inverse of the
 * adapter's parse, field for field, so a rebuilt resource records the same
 * facts. `replay --to` rebuilds recorded ones this way (their ciphertext is
 * under production's APIv3 key) and `simulate` builds its own.
 */
export function wechatpayResource (eventType: string, facts: WechatpayFacts, total?: number): Record<string, unknown> {
  const time = facts.gatewayTime === null ? {} : { success_time: facts.gatewayTime }
  if (eventType === 'TRANSACTION.SUCCESS') {
    return {
      out_trade_no: facts.orderId,
      transaction_id: facts.transactionId,
      trade_type: 'NATIVE',
      trade_state: 'SUCCESS',
      trade_state_desc: '支付成功',
      ...time,
      amount: { total: facts.amount, payer_total: facts.amount, currency: facts.currency, payer_currency: facts.currency }
    }
  }
  return {
    out_trade_no: facts.orderId,
    ...(facts.transactionId === null ? {} : { transaction_id: facts.transactionId }),
    out_refund_no: facts.refundId,
    refund_id: facts.refundId,
    refund_status: eventType.slice('REFUND.'.length),
    ...time,
    // Domestic refunds name no currency (the adapter reads them as CNY).
    amount: {
      ...(total === undefined ? {} : { total }),
      refund: facts.amount,
      payer_refund: facts.amount,
      ...(facts.currency === 'CNY' ? {} : { currency: facts.currency })
    }
  }
}

const nonceAlphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

/** The envelope's `resource`: the plaintext sealed under an APIv3 key with a fresh 12-character nonce. */
export function sealedResource (plaintext: Record<string, unknown>, apiV3Key: string, originalType: string, associatedData = originalType): Record<string, string> {
  const nonce = [...randomBytes(12)].map(byte => nonceAlphabet[byte % nonceAlphabet.length]).join('')
  return {
    original_type: originalType,
    algorithm: 'AEAD_AES_256_GCM',
    ciphertext: sealResource(JSON.stringify(plaintext), Buffer.from(apiV3Key, 'utf8'), nonce, associatedData),
    associated_data: associatedData,
    nonce
  }
}
