import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type SQLite from 'better-sqlite3'
import { MalformedError } from '../errors.js'
import { orderMessageTypes, webhookIdPattern } from '../projection/outbox.js'
import { maxEndpointUrlLength } from '../outbound/endpoint-url.js'
import type { Actor } from '../outbound/endpoints.js'
import type { Outbound } from '../outbound/runtime.js'
import { requireBearer } from './auth.js'
import { FeedStream } from './feed.js'
import { ErrorBody, refuseUnknownQuery } from './schemas.js'

export interface OutboundRoutesOptions {
  outbound: Outbound
  sqlite: SQLite.Database
  adminToken: string
}

const security = [{ adminToken: [] }]
const Nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Union([schema, Type.Null()])
const EndpointId = Type.String({ pattern: '^ep_[0-9a-f]{32}$' })
const MessageId = Type.String({ pattern: webhookIdPattern.source })
const MessageType = Type.Union(orderMessageTypes.map(type => Type.Literal(type)))
const Events = Type.Array(MessageType, { maxItems: orderMessageTypes.length, description: 'the order.* types it receives; omitted or empty: every type' })
const Url = Type.String({ minLength: 1, maxLength: maxEndpointUrlLength })
const Description = Type.String({ maxLength: 500 })

const EndpointSchema = Type.Object({
  id: Type.String(),
  url: Type.String(),
  events: Type.Union([Type.Array(Type.String()), Type.Null()], { description: 'null: every type' }),
  description: Nullable(Type.String()),
  enabled: Type.Boolean(),
  disabledReason: Nullable(Type.String()),
  createdAt: Type.String(),
  updatedAt: Type.String()
})

function actorOf (request: FastifyRequest): Actor {
  return { kind: 'admin', requestId: request.id, address: request.ip }
}

/** Endpoints, messages, attempts and recovery jobs: the admin token's. */
export const outboundRoutes: FastifyPluginAsync<OutboundRoutesOptions> = async (plugin, options) => {
  const app = plugin.withTypeProvider<TypeBoxTypeProvider>()
  const { endpoints, messages } = options.outbound
  app.addHook('onRequest', requireBearer(options.adminToken, 'admin'))
  app.addHook('onRoute', refuseUnknownQuery)

  app.post('/admin/endpoints', {
    schema: {
      summary: 'Register an endpoint of the merchant\'s to receive order.* messages; answers its secret, once',
      security,
      body: Type.Object({ url: Url, events: Type.Optional(Events), description: Type.Optional(Description) }, { additionalProperties: false }),
      response: { 201: Type.Intersect([EndpointSchema, Type.Object({ secret: Type.String({ description: 'whsec_…: shown on creation and rotation only' }) })]), 400: ErrorBody }
    }
  }, async (request, reply) => reply.code(201).send(await endpoints.create(request.body, actorOf(request))))

  app.get('/admin/endpoints', {
    schema: {
      summary: 'Endpoints, by id, cursor paged (never their secrets)',
      security,
      querystring: Type.Object({ cursor: Type.Optional(EndpointId), limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }) }),
      response: { 200: Type.Object({ endpoints: Type.Array(EndpointSchema), nextCursor: Nullable(Type.String()) }) }
    }
  }, async (request) => endpoints.list(request.query.cursor ?? '', request.query.limit))

  app.get('/admin/endpoints/:id', {
    schema: { summary: 'One endpoint (never its secret)', security, params: Type.Object({ id: EndpointId }), response: { 200: EndpointSchema, 404: ErrorBody } }
  }, async (request) => endpoints.get(request.params.id))

  app.patch('/admin/endpoints/:id', {
    schema: {
      summary: 'Change an endpoint\'s url, events, description or enabled',
      security,
      params: Type.Object({ id: EndpointId }),
      body: Type.Object({
        url: Type.Optional(Url),
        events: Type.Optional(Type.Union([Events, Type.Null()])),
        description: Type.Optional(Type.Union([Description, Type.Null()])),
        enabled: Type.Optional(Type.Boolean())
      }, { additionalProperties: false, minProperties: 1 }),
      response: { 200: EndpointSchema, 400: ErrorBody, 404: ErrorBody }
    }
  }, async (request) => await endpoints.update(request.params.id, request.body, actorOf(request)))

  app.delete('/admin/endpoints/:id', {
    schema: { summary: 'Delete an endpoint; its undelivered messages are dead-lettered', security, params: Type.Object({ id: EndpointId }), response: { 204: Type.Null(), 404: ErrorBody } }
  }, async (request, reply) => {
    await endpoints.delete(request.params.id, actorOf(request))
    return await reply.code(204).send(null)
  })

  app.post('/admin/endpoints/:id/rotate-secret', {
    schema: {
      summary: 'A new secret; the previous ones keep signing beside it for 24 h',
      security,
      params: Type.Object({ id: EndpointId }),
      response: { 200: Type.Object({ id: Type.String(), secret: Type.String(), previousSecretsExpireAt: Type.String() }), 404: ErrorBody }
    }
  }, async (request) => await endpoints.rotateSecret(request.params.id, actorOf(request)))

  app.get('/admin/endpoints/:id/attempts', {
    schema: {
      summary: 'Every delivery attempt to an endpoint, newest first, cursor paged',
      security,
      params: Type.Object({ id: EndpointId }),
      querystring: Type.Object({ cursor: Type.Optional(Type.Integer({ minimum: 1 })), limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }) })
    }
  }, async (request) => {
    endpoints.get(request.params.id)
    return messages.attempts(request.params.id, request.query.cursor, request.query.limit)
  })

  app.post('/admin/endpoints/:id/recover', {
    schema: {
      summary: 'Re-send every failed or dead-lettered message of the endpoint created in [since, until), as a job',
      security,
      params: Type.Object({ id: EndpointId }),
      body: Type.Object({
        since: Type.String({ format: 'date-time' }),
        until: Type.Optional(Type.String({ format: 'date-time', description: 'default: now' }))
      }, { additionalProperties: false }),
      response: { 202: Type.Unknown({ description: 'the job, as GET /admin/jobs/:id shows it' }), 404: ErrorBody }
    }
  }, async (request, reply) => {
    endpoints.get(request.params.id)
    const since = storedTime(request.body.since, 'since')
    const until = request.body.until === undefined ? new Date().toISOString() : storedTime(request.body.until, 'until')
    if (until <= since) throw new MalformedError('must be after since', 'until')
    const job = messages.recover(request.params.id, since, until) as { id: string }
    return await reply.code(202).header('location', `/admin/jobs/${job.id}`).send(job)
  })

  app.get('/admin/jobs/:id', {
    schema: { summary: 'A job\'s state and progress', security, params: Type.Object({ id: Type.String({ pattern: '^job_[0-9a-f]{24}$' }) }), response: { 200: Type.Unknown(), 404: ErrorBody } }
  }, async (request) => messages.job(request.params.id))

  app.get('/admin/messages/:id', {
    schema: { summary: 'One outbound message: its body, state and every attempt per endpoint', security, params: Type.Object({ id: MessageId }), response: { 200: Type.Unknown(), 404: ErrorBody } }
  }, async (request) => messages.message(request.params.id))

  app.post('/admin/messages/:id/resend', {
    schema: {
      summary: 'Send one message again (same webhook-id): to every endpoint it went to, or to one',
      security,
      params: Type.Object({ id: MessageId }),
      body: Type.Object({ endpointId: Type.Optional(EndpointId) }, { additionalProperties: false }),
      response: { 202: Type.Object({ messageId: Type.String(), deliveries: Type.Integer() }), 404: ErrorBody }
    },
    // No body at all (curl -X POST) means every endpoint, as {} does.
    preValidation: async (request) => { request.body ??= {} }
  }, async (request, reply) => reply.code(202).send(messages.resend(request.params.id, request.body.endpointId)))
}

export interface FeedRoutesOptions {
  outbound: Outbound
  sqlite: SQLite.Database
  adminToken: string
}

/** GET /admin/feed: the pull feed, for the admin token or the read-only feed token. */
export const feedRoutes: FastifyPluginAsync<FeedRoutesOptions> = async (plugin, options) => {
  const app = plugin.withTypeProvider<TypeBoxTypeProvider>()
  const { feedToken } = options.outbound
  app.addHook('onRequest', requireBearer(feedToken === undefined ? [options.adminToken] : [options.adminToken, feedToken], 'feed'))

  app.get('/admin/feed', {
    schema: {
      summary: 'Every order.* message as server-sent events, live; resume with Last-Event-ID or ?after=',
      security: [{ adminToken: [] }],
      querystring: Type.Object({ after: Type.Optional(Type.Integer({ minimum: 0 })) }, { additionalProperties: false })
    }
  }, async (request, reply) => {
    const header = request.headers['last-event-id']
    let after = request.query.after ?? 0
    if (typeof header === 'string' && header !== '') {
      if (!/^\d{1,15}$/.test(header)) throw new MalformedError('must be the id: of a feed message', 'last-event-id')
      after = Number(header)
    }
    reply.header('cache-control', 'no-cache').header('x-accel-buffering', 'no')
    return await reply.type('text/event-stream').send(new FeedStream(options.sqlite, options.outbound.commits, after, options.outbound.durablePosition) as never)
  })
}

function storedTime (value: string, field: string): string {
  const time = new Date(value)
  if (Number.isNaN(time.getTime())) throw new MalformedError('must be an ISO-8601 date-time', field)
  return time.toISOString()
}
