import { isUtf8 } from 'node:buffer'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import { AppError, excerpt, MalformedError } from '../errors.js'
import type { EventAppender, NewEvent } from '../event-log/event-log.js'
import type { GatewayRegistry } from '../gateways/registry.js'
import { headerValue, jsonErrorAck, type Ack, type GatewayAdapter, type RawCallback } from '../gateways/types.js'
import type { CallbackOutcome, Metrics } from '../metrics.js'
import { streamIdOf, type EventMetadata, type RawRequest } from '../orders/events.js'
import { toAppError } from './errors.js'
import type { RefusalStore } from './refusals.js'

export interface NotifyRoutesOptions {
  gateways: GatewayRegistry
  eventLog: EventAppender
  /** PAYNOTIFY_BODY_LIMIT: no gateway's route takes a larger body, whatever its own limit. */
  bodyLimit: number
  /** PAYNOTIFY_ACCEPT_REPLAYS: honour x-paynotify-replay-of (a service that `replay --to` targets); otherwise it is refused. */
  acceptReplays: boolean
  now: () => Date
  /** Counts each callback to a configured gateway by outcome (absent with PAYNOTIFY_METRICS=0). */
  metrics?: Metrics | undefined
  /** Keeps the last refused callbacks for GET /admin/refusals and the console (absent with PAYNOTIFY_REFUSALS_MAX=0). */
  refusals?: RefusalStore | undefined
}

// Any name is accepted here so that every gateway we do not serve is a 404, not a 400.
const Params = Type.Object({ gateway: Type.String({ description: 'gateway name: generic, alipay, stripe, wechatpay, standard' }) })
const gatewayName = /^[a-z0-9_-]{1,32}$/

function mediaTypeOf (contentType: string): string {
  const semicolon = contentType.indexOf(';')
  return (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase()
}

/** What a refusal of a callback counts as (metrics.ts callbackOutcomes). */
function refusalOutcome (statusCode: number): CallbackOutcome {
  if (statusCode === 401) return 'refused_signature'
  if (statusCode === 503) return 'store_unavailable'
  return statusCode < 500 ? 'refused_malformed' : 'internal_error'
}

/** The configured gateway a request's route serves (route config), or undefined on the catch-all route. */
function routeGateway (request: FastifyRequest): string | undefined {
  return (request.routeOptions.config as { gateway?: string }).gateway
}

/**
 * POST /notify/:gateway — verify on the raw bytes, parse, append, and only
 * then ack. Its own content-type parsers keep the body as a Buffer (signatures
 * cover the exact bytes); they are scoped to this plugin.
 */
export const notifyRoutes: FastifyPluginAsync<NotifyRoutesOptions> = async (app, options) => {
  const { gateways, eventLog, now, metrics, refusals } = options

  app.removeAllContentTypeParsers()
  app.addContentTypeParser(['application/x-www-form-urlencoded', 'application/json'], { parseAs: 'buffer', bodyLimit: options.bodyLimit },
    (_request, body, done) => { done(null, body) })

  const send = (reply: FastifyReply, ack: Ack): void => {
    reply.code(ack.statusCode).type(ack.contentType).send(ack.body)
  }

  // Refusals are answered the way the gateway expects (Alipay `fail`, WeChat Pay's JSON, …).
  app.setErrorHandler((error, request, reply) => {
    const appError = toAppError(error)
    const gateway = routeGateway(request)
    if (appError.statusCode >= 500) {
      request.log.error({ err: error }, 'notify failed')
    } else {
      // On the catch-all route the name is whatever the URL says: only an excerpt is logged.
      request.log.warn({ code: appError.code, gateway: gateway ?? excerpt((request.params as { gateway?: string }).gateway ?? '') }, appError.message)
    }
    const adapter = gateway === undefined ? undefined : gateways.get(gateway)
    // Only a configured gateway's route is counted: the catch-all's name comes from the URL.
    if (adapter !== undefined) metrics?.callback(adapter.name, refusalOutcome(appError.statusCode))
    if (refusals !== undefined) {
      const named = (request.params as { gateway?: string }).gateway
      refusals.record({
        at: now(),
        // On the catch-all route the URL names the gateway: kept only when it could be a name.
        gateway: gateway ?? (named !== undefined && gatewayName.test(named) ? named : null),
        statusCode: appError.statusCode,
        code: appError.code,
        message: appError.message,
        address: request.ip,
        headers: request.headers,
        // A Buffer once the route's parser has read it; undefined when refused before (413, 415 from the parser, an unknown gateway).
        body: Buffer.isBuffer(request.body) ? request.body : undefined
      })
    }
    send(reply, adapter === undefined ? jsonErrorAck(appError) : adapter.ack(appError))
  })

  // At the default level (info) a callback costs no log line of its own: an accepted one is
  // in the event log itself (requestId, receivedAt), refusals are logged at warn. At the peak
  // of a sale, two access lines per callback cost a sixth of the request's CPU (measured with bench/).
  const logLevel = app.log.level === 'info' ? { logLevel: 'warn' as const } : {}

  // Any other name: 404 from onRequest, before its body is read, so every gateway we do not serve is a 404, never a 413 or 415.
  const refuseUnknown = async (request: FastifyRequest<{ Params: { gateway: string } }>): Promise<never> => {
    // Echo the name only when it could be one: it comes from the URL.
    const name = gatewayName.test(request.params.gateway) ? ` named ${request.params.gateway}` : ''
    throw new AppError(404, 'unknown_gateway', `no gateway${name} is configured`)
  }
  app.post<{ Params: { gateway: string } }>('/notify/:gateway', {
    ...logLevel,
    onRequest: refuseUnknown,
    schema: {
      summary: 'Receive a payment gateway callback',
      description: 'Verifies the signature on the raw body, appends the notification to the event log and acks only after the commit is durable. ' +
        'Each gateway takes bodies up to its own limit, never above PAYNOTIFY_BODY_LIMIT (413 beyond it).',
      params: Params,
      hide: false
    }
  }, refuseUnknown)

  // One route per configured gateway, so each takes at most its own body limit: the body is
  // refused while it streams in, before a byte of it is parsed.
  for (const adapter of gateways.values()) {
    app.post(`/notify/${adapter.name}`, {
      bodyLimit: Math.min(adapter.bodyLimit, options.bodyLimit),
      config: { gateway: adapter.name },
      ...logLevel,
      // Documented once, as /notify/{gateway}.
      schema: { hide: true }
    }, async (request, reply) => await receive(adapter, request, reply))
  }

  async function receive (adapter: GatewayAdapter, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const contentType = headerValue(request.headers, 'content-type') ?? ''
    const mediaType = mediaTypeOf(contentType)
    if (!Buffer.isBuffer(request.body) || !adapter.mediaTypes.includes(mediaType)) {
      throw new AppError(415, 'unsupported_media_type', `${adapter.name} callbacks must be ${adapter.mediaTypes.join(' or ')}`)
    }
    // Checked before the signature: a replay label is an operator's tool, and only a service started to take replays honours it.
    const replayHeader = headerValue(request.headers, 'x-paynotify-replay-of')
    if (replayHeader !== undefined && !options.acceptReplays) {
      throw new AppError(403, 'replays_not_accepted', 'x-paynotify-replay-of: this service does not take replays (start it with PAYNOTIFY_ACCEPT_REPLAYS=1)')
    }
    if (replayHeader !== undefined && !(/^[1-9]\d{0,15}$/.test(replayHeader) && Number.isSafeInteger(Number(replayHeader)))) {
      throw new MalformedError('must be a log position (an integer from 1 to 2^53 - 1)', 'x-paynotify-replay-of')
    }
    const callback: RawCallback = { body: request.body, mediaType, contentType, headers: request.headers }
    // One clock reading serves the signature window and receivedAt.
    const receivedAt = now()
    const verified = adapter.verify(callback, receivedAt)
    const notifications = adapter.parse(verified, callback)

    const utf8 = isUtf8(callback.body)
    const headers: Record<string, string> = {}
    for (const name of adapter.signatureHeaders) {
      const value = headerValue(request.headers, name)
      if (value !== undefined) headers[name] = value
    }
    const raw: RawRequest = { body: callback.body.toString(utf8 ? 'utf8' : 'base64'), encoding: utf8 ? 'utf8' : 'base64', contentType, headers }
    const receivedAtIso = receivedAt.toISOString()
    const events = notifications.map((notification): NewEvent => {
      const metadata: EventMetadata = { gateway: adapter.name, deliveryId: notification.deliveryId, receivedAt: receivedAtIso, requestId: request.id, raw }
      if (replayHeader !== undefined) metadata.replayOf = Number(replayHeader)
      return { streamId: streamIdOf(notification), type: notification.type, data: notification.data, metadata } as NewEvent
    })
    // A verified callback about nothing we track (e.g. a Stripe event type we do not map) is acked, not stored.
    const { recorded, repeats } = events.length === 0 ? { recorded: [], repeats: 0 } : await eventLog.appendWithRepeats(events)
    const outcome: CallbackOutcome = events.length > 0 && repeats === events.length ? 'duplicate' : 'accepted'
    metrics?.callback(adapter.name, outcome)
    request.log.debug({ gateway: adapter.name, outcome, positions: recorded.map(e => e.position), orders: recorded.map(e => e.streamId) }, 'callback recorded')
    send(reply, adapter.ack())
    return reply
  }
}
