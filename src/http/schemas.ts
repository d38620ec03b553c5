import { Type, type TSchema } from '@sinclair/typebox'
import type { onRouteHookHandler } from 'fastify'
import { Anomaly, OrderStatus } from '../orders/order-fold.js'
import { eventTypes, orderIdPattern } from '../orders/events.js'

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()])

export const ErrorBody = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String() })
}, { $id: 'ErrorBody' })

export const OrderId = Type.String({ pattern: orderIdPattern.source, description: 'Order id: 1-64 characters of A-Z a-z 0-9 _ . : -' })

export const OrderViewSchema = Type.Object({
  orderId: Type.String(),
  status: Type.Union(Object.values(OrderStatus).map(s => Type.Literal(s))),
  needsReview: Type.Boolean(),
  anomalies: Type.Array(Type.Union(Object.values(Anomaly).map(a => Type.Literal(a)))),
  expectedAmount: Nullable(Type.Integer({ description: 'minor units' })),
  expectedCurrency: Nullable(Type.String()),
  paidAmount: Type.Integer({ description: 'minor units' }),
  refundedAmount: Type.Integer({ description: 'minor units' }),
  currency: Nullable(Type.String()),
  gateway: Nullable(Type.String()),
  gatewayTradeNo: Nullable(Type.String()),
  duplicateCount: Type.Integer(),
  version: Type.Integer(),
  lastPosition: Type.Integer(),
  firstSeenAt: Nullable(Type.String()),
  updatedAt: Nullable(Type.String())
}, { $id: 'OrderView' })

export const EventSchema = Type.Object({
  position: Type.Integer(),
  streamId: Type.String(),
  streamVersion: Type.Integer(),
  type: Type.Union(eventTypes.map(t => Type.Literal(t))),
  schemaVersion: Type.Integer(),
  data: Type.Unknown({ description: 'the event data (see events/ for each type and version)' }),
  metadata: Type.Unknown({ description: 'gateway, deliveryId, receivedAt, requestId, raw request' }),
  recordedAt: Type.String(),
  hash: Type.String()
})

export const TimelineEntry = Type.Intersect([EventSchema, Type.Object({
  outcome: Type.Union([Type.Literal('applied'), Type.Literal('duplicate')]),
  duplicateReason: Type.Optional(Type.Union([Type.Literal('delivery'), Type.Literal('fact')])),
  duplicateOf: Type.Optional(Type.Integer({ description: 'position of the first delivery of this notification or fact' }))
})])

/**
 * An onRoute hook for the admin plugins: every route refuses a query
 * parameter it does not know (400 naming it). A misspelt filter
 * (?staus=failed) would otherwise be dropped, and the answer look like a
 * filtered one.
 */
export const refuseUnknownQuery: onRouteHookHandler = route => {
  const querystring = (route.schema?.querystring ?? { type: 'object', properties: {} }) as Record<string, unknown>
  route.schema = { ...route.schema, querystring: { ...querystring, additionalProperties: false } }
}
