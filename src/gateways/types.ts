import type { IncomingHttpHeaders } from 'node:http'
import type { AppError } from '../errors.js'
import type { PaymentEvent, UnattributedReport } from '../orders/events.js'

/** A callback exactly as it arrived: the raw bytes are what signatures cover. */
export interface RawCallback {
  body: Buffer
  /** Media type without parameters, lower case (application/x-www-form-urlencoded, application/json). */
  mediaType: string
  /** The whole Content-Type header, parameters included. */
  contentType: string
  headers: IncomingHttpHeaders
}

/**
 * One normalized fact reported by a callback; becomes one event in the log:
 * in its order's stream, or, when it names no order, in the gateway's
 * unattributed reports.
 */
export type PaymentNotification = (PaymentEvent | UnattributedReport) & {
  /** Delivery dedup key: equal on every retry of the same notification. */
  deliveryId: string
}

/** What the gateway is told. */
export interface Ack {
  statusCode: number
  contentType: string
  body: string
}

/**
 * One adapter per gateway (DESIGN §5). The notify route calls, in order:
 * verify (on the raw bytes, before anything enters the log), parse, and ack.
 */
export interface GatewayAdapter<Verified = unknown> {
  readonly name: string
  /** Media types this gateway posts; anything else is 415. */
  readonly mediaTypes: readonly string[]
  /**
   * The largest body this gateway realistically posts, in bytes: its route's
   * limit (413 beyond it), never above PAYNOTIFY_BODY_LIMIT.
   */
  readonly bodyLimit: number
  /** Header names (lower case) kept with the raw body so a callback can be replayed. */
  readonly signatureHeaders: readonly string[]
  /** Checks the signature (and replay window) on the raw bytes; throws SignatureError or MalformedError. */
  verify: (callback: RawCallback, now: Date) => Verified
  /** Turns a verified payload into notifications; throws MalformedError naming the field. */
  parse: (verified: Verified, callback: RawCallback) => PaymentNotification[]
  /** The answer the gateway expects: success once durable, or the refusal for an error. */
  ack: (error?: AppError) => Ack
}

/** The first value of a header, or undefined. */
export function headerValue (headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}

/** The JSON error body every route uses: { error: { code, message } }. */
export function jsonErrorAck (error: AppError): Ack {
  return {
    statusCode: error.statusCode,
    contentType: 'application/json; charset=utf-8',
    body: JSON.stringify({ error: { code: error.code, message: error.message } })
  }
}
