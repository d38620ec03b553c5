import { isUtf8 } from 'node:buffer'
import type { FastifyPluginAsync } from 'fastify'
import { Type } from '@sinclair/typebox'
import { AppError, MalformedError } from '../errors.js'
import type { EventAppender, NewEvent } from '../event-log/event-log.js'
import type { GatewayRegistry } from '../gateways/registry.js'
import { headerValue, jsonErrorAck, type Ack, type RawCallback } from '../gateways/types.js'
import { streamIdOf, type EventMetadata, type RawRequest } from '../orders/events.js'
import { toAppError } from './errors.js'

export interface NotifyRoutesOptions {
  gateways: GatewayRegistry
  eventLog: EventAppender
  bodyLimit: number
  now: () => Date
}

// Any name is accepted here so that every gateway we do not serve is a 404, not a 400.
const Params = Type.Object({ gateway: Type.String({ description: 'gateway name: generic, alipay, stripe, wechatpay, standard' }) })
const gatewayName = /^[a-z0-9_-]{1,32}$/

function mediaTypeOf (contentType: string): string {
  const semicolon = contentType.indexOf(';')
  return (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase()
}

/**
 * Formats receivedAt once per millisecond: under load several callbacks share a
 * millisecond, and toISOString (~0.45 µs) was a visible part of the handler.
 * An invalid date never matches (NaN) and throws as toISOString does.
 */
function isoFormatter (): (date: Date) => string {
  let lastTime = Number.NaN
  let lastIso = ''
  return date => {
    const time = date.getTime()
    if (time !== lastTime) {
      lastIso = date.toISOString()
      lastTime = time
    }
    return lastIso
  }
}

/**
 * POST /notify/:gateway — verify on the raw bytes, parse, append, and only
 * then ack. Its own content-type parsers keep the body as a Buffer (signatures
 * cover the exact bytes); they are scoped to this plugin.
 */
export const notifyRoutes: FastifyPluginAsync<NotifyRoutesOptions> = async (app, options) => {
  const { gateways, eventLog, now } = options
  const toIso = isoFormatter()

  app.removeAllContentTypeParsers()
  app.addContentTypeParser(['application/x-www-form-urlencoded', 'application/json'], { parseAs: 'buffer', bodyLimit: options.bodyLimit },
    (_request, body, done) => { done(null, body) })

  const send = (reply: import('fastify').FastifyReply, ack: Ack): void => {
    reply.code(ack.statusCode).type(ack.contentType).send(ack.body)
  }

  // Refusals are answered the way the gateway expects (Alipay `fail`, WeChat Pay's JSON, …).
  app.setErrorHandler((error, request, reply) => {
    const appError = toAppError(error)
    if (appError.statusCode >= 500) request.log.error({ err: error }, 'notify failed')
    else request.log.warn({ code: appError.code, gateway: (request.params as { gateway?: string }).gateway }, appError.message)
    const adapter = gateways.get((request.params as { gateway?: string }).gateway ?? '')
    send(reply, adapter === undefined ? jsonErrorAck(appError) : adapter.ack(appError))
  })

  app.post<{ Params: { gateway: string } }>('/notify/:gateway', {
    bodyLimit: options.bodyLimit,
    // At the default level (info) a callback costs no log line of its own: an accepted one is
    // in the event log itself (requestId, receivedAt), refusals are logged at warn. At the peak
    // of a sale, two access lines per callback cost a sixth of the request's CPU (measured with bench/).
    ...(app.log.level === 'info' ? { logLevel: 'warn' } : {}),
    schema: {
      summary: 'Receive a payment gateway callback',
      description: 'Verifies the signature on the raw body, appends the notification to the event log and acks only after the commit is durable.',
      params: Params,
      hide: false
    }
  }, async (request, reply) => {
    const adapter = gateways.get(request.params.gateway)
    if (adapter === undefined) {
      // Echo the name only when it could be one: it comes from the URL.
      const name = gatewayName.test(request.params.gateway) ? ` named ${request.params.gateway}` : ''
      throw new AppError(404, 'unknown_gateway', `no gateway${name} is configured`)
    }
    const contentType = headerValue(request.headers, 'content-type') ?? ''
    const mediaType = mediaTypeOf(contentType)
    if (!Buffer.isBuffer(request.body) || !adapter.mediaTypes.includes(mediaType)) {
      throw new AppError(415, 'unsupported_media_type', `${adapter.name} callbacks must be ${adapter.mediaTypes.join(' or ')}`)
    }
    const callback: RawCallback = { body: request.body, mediaType, contentType, headers: request.headers }
    // One clock reading serves the signature window and receivedAt.
    const receivedAt = now()
    const verified = adapter.verify(callback, receivedAt)
    const notifications = adapter.parse(verified, callback)

    const replayHeader = headerValue(request.headers, 'x-paynotify-replay-of')
    if (replayHeader !== undefined && !/^[1-9]\d{0,15}$/.test(replayHeader)) {
      throw new MalformedError('must be a log position', 'x-paynotify-replay-of')
    }
    const utf8 = isUtf8(callback.body)
    const headers: Record<string, string> = {}
    for (const name of adapter.signatureHeaders) {
      const value = headerValue(request.headers, name)
      if (value !== undefined) headers[name] = value
    }
    const raw: RawRequest = { body: callback.body.toString(utf8 ? 'utf8' : 'base64'), encoding: utf8 ? 'utf8' : 'base64', contentType, headers }
    const receivedAtIso = toIso(receivedAt)
    const events = notifications.map((notification): NewEvent => {
      const metadata: EventMetadata = { gateway: adapter.name, deliveryId: notification.deliveryId, receivedAt: receivedAtIso, requestId: request.id, raw }
      if (replayHeader !== undefined) metadata.replayOf = Number(replayHeader)
      return { streamId: streamIdOf(notification), type: notification.type, data: notification.data, metadata } as NewEvent
    })
    // A verified callback about nothing we track (e.g. a Stripe event type we do not map) is acked, not stored.
    const recorded = events.length === 0 ? [] : await eventLog.append(events)
    request.log.debug({ gateway: adapter.name, positions: recorded.map(e => e.position), orders: recorded.map(e => e.streamId) }, 'callback recorded')
    send(reply, adapter.ack())
    return reply
  })
}
