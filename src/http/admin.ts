import type SQLite from 'better-sqlite3'
import type { FastifyPluginAsync } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import { AppError, MalformedError } from '../errors.js'
import { maxStoredDeliveries } from '../event-log/deliveries.js'
import { readEvents, rowToEvent } from '../event-log/read.js'
import { readTimelinePage } from '../event-log/timeline.js'
import { eventTypes } from '../orders/events.js'
import { Anomaly, OrderStatus } from '../orders/order-fold.js'
import { findOrder, listOrders } from '../orders/queries.js'
import { maxNoteLength, recordReviewNote, type ReviewNoteAppender } from '../orders/review-notes.js'
import { listUnattributed } from '../projection/unattributed-reports.js'
import { requireBearer } from './auth.js'
import { EventStream } from './event-stream.js'
import { parseStrictJson } from './json-body.js'
import { ErrorBody, EventSchema, OrderId, OrderViewSchema, refuseUnknownQuery, TimelineEntry } from './schemas.js'

export interface AdminRoutesOptions {
  db: Kysely<Database>
  /** The same connection as `db`: the timeline folds an order's earlier events on it synchronously, page by page. */
  sqlite: SQLite.Database
  adminToken: string
  /** Review notes are appended through it. */
  eventLog: ReviewNoteAppender
  /** The service clock (a note's receivedAt). */
  now: () => Date
}

// A note is at most 500 characters; escaped as \uXXXX pairs in JSON that is ~6 KiB.
const reviewNoteBodyLimit = 8 * 1024

const IsoTime = Type.String({ format: 'date-time', description: 'ISO-8601 UTC, compared with recordedAt' })
const security = [{ adminToken: [] }]

/** The admin API over the projection and the log, and review notes. Every route needs the admin token. */
export const adminRoutes: FastifyPluginAsync<AdminRoutesOptions> = async (plugin, options) => {
  const app = plugin.withTypeProvider<TypeBoxTypeProvider>()
  const { db, sqlite } = options
  parseStrictJson(plugin)
  app.addHook('onRequest', requireBearer(options.adminToken, 'admin'))
  app.addHook('onRoute', refuseUnknownQuery)

  app.get('/admin/orders/:id', {
    schema: {
      summary: 'Current state of one order',
      security,
      params: Type.Object({ id: OrderId }),
      response: { 200: OrderViewSchema, 404: ErrorBody }
    }
  }, async (request) => {
    const order = await findOrder(db, request.params.id)
    if (order === undefined) throw new AppError(404, 'order_not_found', `no order ${request.params.id}`)
    return order
  })

  app.get('/admin/orders', {
    schema: {
      summary: 'Orders, filtered and cursor paged by order id',
      security,
      querystring: Type.Object({
        status: Type.Optional(Type.Union(Object.values(OrderStatus).map(s => Type.Literal(s)))),
        gateway: Type.Optional(Type.String({ maxLength: 32 })),
        anomaly: Type.Optional(Type.Union(Object.values(Anomaly).map(a => Type.Literal(a)))),
        needsReview: Type.Optional(Type.Boolean({ description: 'true: only orders with an anomaly to review; false: only the others' })),
        cursor: Type.Optional(OrderId),
        limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 })
      }),
      response: { 200: Type.Object({ orders: Type.Array(OrderViewSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) }) }
    }
  }, async (request) => await listOrders(db, request.query))

  app.get('/admin/orders/:id/events', {
    schema: {
      summary: 'Timeline of every delivery for one order, repeats marked with the position of the first, cursor paged by stream version',
      security,
      params: Type.Object({ id: OrderId }),
      querystring: Type.Object({
        cursor: Type.Integer({ minimum: 0, default: 0, description: 'nextCursor of the previous page: the entries after this streamVersion' }),
        limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 })
      }),
      response: {
        200: Type.Object({
          orderId: Type.String(),
          events: Type.Array(TimelineEntry),
          nextCursor: Type.Union([Type.Integer(), Type.Null()]),
          unstoredRepeats: Type.Integer({ description: `repeats of this order's deliveries acked but not stored: each delivery id keeps at most ${maxStoredDeliveries} events` })
        }),
        404: ErrorBody
      }
    }
  }, async (request) => {
    const { id } = request.params
    const page = await readTimelinePage(sqlite, db, id, request.query.cursor, request.query.limit)
    if (page.unknown) throw new AppError(404, 'order_not_found', `no events for order ${id}`)
    return { orderId: id, events: page.entries, nextCursor: page.nextCursor, unstoredRepeats: page.unstoredRepeats }
  })

  app.post('/admin/orders/:id/review-notes', {
    bodyLimit: reviewNoteBodyLimit,
    schema: {
      summary: 'Record a review note: the order\'s anomalies as they stand are resolved and it leaves the review queue; money state never changes',
      security,
      params: Type.Object({ id: OrderId }),
      body: Type.Object({
        note: Type.String({ maxLength: 4 * maxNoteLength, description: `what was done, e.g. "refunded by hand": 1-${maxNoteLength} characters once trimmed, no control characters` })
      }, { additionalProperties: false }),
      response: {
        201: Type.Object({
          position: Type.Integer({ description: 'the note\'s position in the log' }),
          recordedAt: Type.String(),
          resolves: Type.Array(Type.String(), { description: 'the anomalies it resolved' }),
          order: OrderViewSchema
        }),
        400: ErrorBody,
        404: ErrorBody,
        409: ErrorBody
      }
    }
  }, async (request, reply) => {
    const result = await recordReviewNote(options.eventLog, db, request.params.id, request.body.note, { requestId: request.id, address: request.ip }, options.now)
    return await reply.code(201).send(result)
  })

  app.get('/admin/events', {
    schema: {
      summary: 'The global log in position order; Accept: application/x-ndjson streams every matching event',
      security,
      querystring: Type.Object({
        after: Type.Integer({ minimum: 0, default: 0 }),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
        type: Type.Optional(Type.Union(eventTypes.map(t => Type.Literal(t)))),
        gateway: Type.Optional(Type.String({ maxLength: 32 })),
        from: Type.Optional(IsoTime),
        to: Type.Optional(IsoTime)
      }),
      response: { 200: Type.Object({ events: Type.Array(EventSchema), nextCursor: Type.Union([Type.Integer(), Type.Null()]) }) }
    }
  }, async (request, reply) => {
    const { limit, from, to, ...rest } = request.query
    // recorded_at is stored as toISOString(); compare like with like, whatever offset or precision was asked.
    const filter = { ...rest, from: toStoredTime(from, 'from'), to: toStoredTime(to, 'to') }
    if ((request.headers.accept ?? '').includes('application/x-ndjson')) {
      // A stream bypasses the response schema; the type provider cannot know that.
      return reply.type('application/x-ndjson').send(new EventStream(db, filter, limit) as never)
    }
    const pageSize = limit ?? 100
    const rows = await readEvents(db, { ...filter, limit: pageSize + 1 })
    const page = rows.slice(0, pageSize).map(rowToEvent)
    return { events: page, nextCursor: rows.length > pageSize ? page[page.length - 1]!.position : null }
  })

  app.get('/admin/unattributed', {
    schema: {
      summary: 'Verified reports that name no order (a Stripe event without order metadata), in log order, each with the orders its transaction id joined it to',
      security,
      querystring: Type.Object({
        after: Type.Integer({ minimum: 0, default: 0, description: 'cursor: the last position of the previous page' }),
        limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
        attributed: Type.Optional(Type.Boolean({ description: 'true: only reports that joined an order; false: only those no order claims yet' }))
      }),
      response: {
        200: Type.Object({
          events: Type.Array(Type.Intersect([EventSchema, Type.Object({ orders: Type.Array(Type.String(), { description: 'orders whose own events carry its gateway and transaction id' }) })])),
          nextCursor: Type.Union([Type.Integer(), Type.Null()])
        })
      }
    }
  }, async (request) => {
    const { reports, nextCursor } = await listUnattributed(db, request.query)
    return { events: reports.map(({ orders, ...row }) => ({ ...rowToEvent(row), orders: JSON.parse(orders) as string[] })), nextCursor }
  })
}

/** A date-time in the stored form; one the format allows but Date cannot hold (a leap second) is malformed. */
function toStoredTime (value: string | undefined, field: string): string | undefined {
  if (value === undefined) return undefined
  const time = new Date(value)
  if (Number.isNaN(time.getTime())) throw new MalformedError('must be an ISO-8601 date-time', field)
  return time.toISOString()
}
