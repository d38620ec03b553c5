import type { Anomaly } from './order-fold.js'

/**
 * The event catalogue in code. Events are facts, named in the past tense and
 * never edited: a changed shape gets a new schema version (see events/ and
 * upcastEvent below).
 */
export const EventType = {
  OrderPlaced: 'OrderPlaced',
  PaymentPending: 'PaymentPending',
  PaymentSucceeded: 'PaymentSucceeded',
  PaymentFailed: 'PaymentFailed',
  PaymentRefunded: 'PaymentRefunded',
  /** A refund the gateway could not complete (WeChat Pay REFUND.ABNORMAL/CLOSED, Stripe refund.failed): no money moved. */
  RefundFailed: 'RefundFailed',
  PaymentClosed: 'PaymentClosed',
  /**
   * A verified report that names no order we can use (a Stripe event without
   * order metadata). Kept in a stream of its own per gateway, never dropped;
   * the projection joins it to every order whose own events carry its
   * transaction id (order-fold.ts, unattributed-reports.ts).
   */
  UnattributedReportReceived: 'UnattributedReportReceived',
  /**
   * An outbound endpoint was created, changed, deleted, had its secret
   * rotated, or was disabled by the dispatcher (410). Not an order's event:
   * every one is in the stream ~endpoints, and the writer projects them into
   * the endpoints table (projection/endpoints-projection.ts). Secrets never
   * appear in it.
   */
  EndpointChanged: 'EndpointChanged',
  /**
   * An admin reviewed an order's anomalies and wrote down what was done
   * ("refunded by hand"). In the order's own stream; it never changes money
   * state: the anomalies it names stay anomalies, and stop asking for review
   * (order-fold.ts).
   */
  ReviewNoteRecorded: 'ReviewNoteRecorded'
} as const
export type EventType = typeof EventType[keyof typeof EventType]
export type PaymentEventType = Exclude<EventType, 'OrderPlaced' | 'UnattributedReportReceived' | 'EndpointChanged' | 'ReviewNoteRecorded'>

export const eventTypes: readonly EventType[] = Object.values(EventType)

/** The current schema version of every event type. */
export const currentSchemaVersion = 1

/** Order ids are stream ids: short, printable, and safe in URLs, logs and the hash chain. */
export const orderIdPattern = /^[A-Za-z0-9_.:-]{1,64}$/

export interface OrderPlacedData {
  orderId: string
  /** Expected amount in integer minor units of `currency`. */
  amount: number
  currency: string
}

export interface PaymentData {
  orderId: string
  /** Integer minor units of `currency`. For refunds: the amount refunded. */
  amount: number
  currency: string
  gateway: string
  /** The gateway's transaction id (Alipay trade_no, Stripe PaymentIntent), when it sent one. */
  transactionId: string | null
  /** Refunds (and failed refunds): the gateway's refund id, when it sent one. */
  refundId: string | null
  /** Refunds: true when `amount` is the total refunded so far (Alipay refund_fee), not this refund alone. */
  cumulative: boolean
  /** The status as the gateway named it (TRADE_SUCCESS, payment_intent.succeeded, 1 …). */
  gatewayStatus: string
  /** The gateway's own time of the event, as it sent it. */
  gatewayTime: string | null
}

/** A report about money or a payment that names no order: the fields of PaymentData but orderId, and what it would have been. */
export interface UnattributedReportData extends Omit<PaymentData, 'orderId'> {
  /** The event it would have been, had it named an order. */
  reportedType: PaymentEventType
  /** Why it is unattributed, e.g. "no metadata.order_id". */
  reason: string
}

/**
 * Unattributed reports of a gateway share one stream. Its id starts with a
 * character no order id has (orderIdPattern), so it never names an order
 * and sorts after every order id.
 */
export const unattributedStreamPrefix = '~unattributed:'

export function unattributedStreamId (gateway: string): string {
  return `${unattributedStreamPrefix}${gateway}`
}

/** The stream of every EndpointChanged event. */
export const endpointsStreamId = '~endpoints'

/** Whether a stream is an order's: the others (unattributed reports, endpoints) start with `~`, which no order id has. */
export function isOrderStream (streamId: string): boolean {
  return !streamId.startsWith('~')
}

/** Every stream id the log can hold: an order id, a gateway's unattributed reports (gateway names as in EventMetadata), or the endpoints'. */
export const streamIdPattern = /^(?:[A-Za-z0-9_.:-]{1,64}|~unattributed:[a-z0-9_-]{1,32}|~endpoints)$/

/** The request as received, kept so a callback can be replayed byte for byte. */
export interface RawRequest {
  body: string
  encoding: 'utf8' | 'base64'
  contentType: string
  /** Only the headers the gateway's signature scheme needs. */
  headers: Record<string, string>
  /** sha256 (hex) and length of the body's bytes: the log stores the body once by this hash (event-log/raw-bodies.ts). */
  bodySha256?: string
  bodySize?: number
}

export interface EventMetadata {
  gateway: string
  /** Delivery dedup key: the same value on a retry of the same notification. */
  deliveryId: string
  receivedAt: string
  requestId: string
  raw?: RawRequest
  /** Set when a developer re-delivered a recorded callback (`paynotify replay --to`). */
  replayOf?: number
}

export const EndpointChange = {
  Created: 'created',
  Updated: 'updated',
  Deleted: 'deleted',
  SecretRotated: 'secret_rotated',
  /** By the dispatcher, when the endpoint answered 410 Gone. */
  Disabled: 'disabled'
} as const
export type EndpointChange = typeof EndpointChange[keyof typeof EndpointChange]

/** An endpoint's settings (never its secret). */
export interface EndpointSettings {
  url: string
  /** The order.* types it receives; null for every type. */
  events: string[] | null
  description: string | null
  enabled: boolean
}

export interface EndpointChangedData {
  endpointId: string
  change: EndpointChange
  /** The settings after the change; null once deleted. */
  endpoint: EndpointSettings | null
  /** Why, when the change was not an admin's (disabled: "answered 410 Gone"). */
  reason: string | null
  /** Who changed it: an admin request, or the dispatcher. */
  actor: { kind: 'admin' | 'dispatcher', requestId: string | null, address: string | null }
}

export interface ReviewNoteRecordedData {
  orderId: string
  /** What the admin did or found, 1-500 characters, trimmed, without control characters (review-notes.ts). */
  note: string
  /** The order's anomalies when the note was recorded, sorted: the ones it reviewed. One that appears later still needs review. */
  resolves: Anomaly[]
  /** The admin request that recorded it. */
  actor: { requestId: string, address: string }
}

export type OrderPlaced = { type: 'OrderPlaced', data: OrderPlacedData }
export type PaymentEvent = { type: PaymentEventType, data: PaymentData }
export type UnattributedReport = { type: 'UnattributedReportReceived', data: UnattributedReportData }
export type EndpointChanged = { type: 'EndpointChanged', data: EndpointChangedData }
export type ReviewNoteRecorded = { type: 'ReviewNoteRecorded', data: ReviewNoteRecordedData }
export type DomainEvent = OrderPlaced | PaymentEvent | UnattributedReport | EndpointChanged | ReviewNoteRecorded

/** The stream an event belongs to: its order's, its gateway's unattributed reports, or the endpoints'. */
export function streamIdOf (event: DomainEvent): string {
  if (event.type === 'EndpointChanged') return endpointsStreamId
  return event.type === 'UnattributedReportReceived' ? unattributedStreamId(event.data.gateway) : event.data.orderId
}

/** An event as stored in the log. */
export type RecordedEvent = DomainEvent & {
  position: number
  streamId: string
  streamVersion: number
  schemaVersion: number
  metadata: EventMetadata
  recordedAt: string
  hash: string
}

/**
 * Converts an event read from the log to the current shape. Version 1 is the
 * only version so far; a version 2 adds a case here and keeps version 1
 * samples folding (test/orders/upcast.test.ts).
 */
export function upcastEvent (type: string, schemaVersion: number, data: unknown): DomainEvent {
  if (schemaVersion !== currentSchemaVersion) {
    throw new Error(`unknown schema version ${schemaVersion} of ${type}`)
  }
  if (!(eventTypes as readonly string[]).includes(type)) throw new Error(`unknown event type ${type}`)
  return { type, data } as DomainEvent
}
