import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify'
import swagger from '@fastify/swagger'
import type { Config } from './config.js'
import { createGatewayRegistry, type GatewayRegistry } from './gateways/registry.js'
import { adminRoutes } from './http/admin.js'
import { consolePlugin } from './console/plugin.js'
import { AppError } from './errors.js'
import { toAppError } from './http/errors.js'
import { healthRoutes } from './http/health.js'
import { lazySchemaCompilers } from './http/lazy-schemas.js'
import { merchantRoutes } from './http/merchant.js'
import { metricsRoutes } from './http/metrics.js'
import { notifyRoutes } from './http/notify.js'
import { feedRoutes, outboundRoutes } from './http/outbound.js'
import { RefusalStore } from './http/refusals.js'
import { refusalRoutes } from './http/refusals-routes.js'
import { Metrics, unmatchedRoute } from './metrics.js'
import { countOrdersNeedingReview } from './orders/queries.js'
import type { Outbound } from './outbound/runtime.js'
import { ErrorBody } from './http/schemas.js'
import type { Secrets } from './secrets.js'
import type { ServiceStore } from './store.js'

/** Body limit of routes that do not set their own (admin and health routes take no body). */
const defaultBodyLimit = 16 * 1024

export interface AppDeps {
  config: Config
  secrets: Secrets
  store: ServiceStore
  /** Defaults to the configured gateways; tests may pass their own. */
  gateways?: GatewayRegistry
  /** The service clock (signature windows, receivedAt). */
  now?: () => Date
  logger?: FastifyServerOptions['logger']
  /** Outbound delivery and the feed (outbound/runtime.ts): its routes, and a wake-up after every append. */
  outbound?: Outbound
}

/**
 * Builds the whole service as a Fastify instance without listening: server.ts
 * listens, tests use inject. Plugins and routes are registered explicitly.
 */
export async function buildApp (deps: AppDeps): Promise<FastifyInstance> {
  const { config, secrets, store, outbound } = deps
  const eventLog = outbound === undefined ? store.eventLog : outbound.notifying(store.eventLog)
  const now = deps.now ?? (() => new Date())
  const app = Fastify({
    logger: deps.logger ?? {
      level: config.logLevel,
      // Tokens and signatures never reach the log, whatever a serializer adds later.
      redact: ['req.headers.authorization', 'req.headers["stripe-signature"]', 'req.headers["webhook-signature"]', 'req.headers["wechatpay-signature"]']
    },
    genReqId: () => randomUUID(),
    // Routes that take a body set their own limit (notify: PAYNOTIFY_BODY_LIMIT, orders: a few KiB).
    bodyLimit: defaultBodyLimit,
    // Slow clients are cut off rather than holding sockets open: the headers and the whole
    // request each have a deadline (slowloris), and a socket idle that long is closed.
    requestTimeout: config.limits.requestTimeoutMs,
    connectionTimeout: config.limits.idleTimeoutMs,
    keepAliveTimeout: Math.min(5_000, config.limits.idleTimeoutMs),
    maxRequestsPerSocket: 1000,
    // Node enforces the two deadlines on a timer (every 30 s by default): check often enough that they bite on time.
    http: { headersTimeout: config.limits.headersTimeoutMs, connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(config.limits.headersTimeoutMs / 4))) },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true, allErrors: false } },
    schemaController: lazySchemaCompilers(),
    // Fastify's own answers to a bad or over-long URL quote the whole path: ours name no part of it.
    frameworkErrors: (error, _request, reply) => {
      const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH'
      const appError = tooLong
        ? new AppError(414, 'uri_too_long', 'url: a path segment is over 100 characters')
        : new AppError(400, 'malformed', 'url: is not a valid URL')
      return (reply as FastifyReply).code(appError.statusCode).send({ error: { code: appError.code, message: appError.message } })
    }
  })

  // A connection flood is refused at the socket beyond this many open connections.
  app.server.maxConnections = config.limits.maxConnections

  app.addSchema(ErrorBody)
  await app.register(swagger, {
    openapi: {
      info: { title: 'paynotify', version: '0.1.0', description: 'Payment notification ingestion, event log and order state.' },
      components: {
        securitySchemes: {
          adminToken: { type: 'http', scheme: 'bearer' },
          merchantToken: { type: 'http', scheme: 'bearer' },
          metricsToken: { type: 'http', scheme: 'bearer', description: 'PAYNOTIFY_METRICS_TOKEN: GET /metrics only' }
        }
      }
    }
  })

  app.setErrorHandler((error, request, reply) => {
    const appError = toAppError(error)
    if (appError.statusCode >= 500) request.log.error({ err: error }, 'request failed')
    return reply.code(appError.statusCode).send({ error: { code: appError.code, message: appError.message } })
  })
  app.setNotFoundHandler((request, reply) => {
    return reply.code(404).send({ error: { code: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` } })
  })

  const gateways = deps.gateways ?? createGatewayRegistry(config, secrets, app.log)
  const metrics = config.metrics.enabled ? instrument(app, deps, gateways) : undefined
  // One per app, in memory: what a refused callback looked like (GET /admin/refusals, the console).
  const refusals = config.refusals.maxEntries > 0 ? new RefusalStore({ maxEntries: config.refusals.maxEntries, now: () => now().getTime() }) : undefined

  await app.register(healthRoutes, { sqlite: store.sqlite })
  await app.register(notifyRoutes, {
    gateways,
    eventLog,
    bodyLimit: config.bodyLimit,
    acceptReplays: config.acceptReplays,
    now,
    metrics,
    refusals
  })
  await app.register(merchantRoutes, {
    db: store.db,
    eventLog,
    merchantToken: secrets.merchantToken,
    defaultCurrency: config.defaultCurrency,
    now
  })
  await app.register(adminRoutes, { db: store.db, sqlite: store.sqlite, adminToken: secrets.adminToken, eventLog, now })
  if (refusals !== undefined) await app.register(refusalRoutes, { refusals, adminToken: secrets.adminToken, now: () => now().getTime() })
  if (outbound !== undefined) {
    await app.register(outboundRoutes, { outbound, sqlite: store.sqlite, adminToken: secrets.adminToken })
    await app.register(feedRoutes, { outbound, sqlite: store.sqlite, adminToken: secrets.adminToken })
  }

  await app.register(consolePlugin, { db: store.db, sqlite: store.sqlite, eventLog, log: store.eventLog, config, now, outbound, refusals, adminToken: secrets.adminToken })

  if (metrics !== undefined) await app.register(metricsRoutes, { metrics, adminToken: secrets.adminToken, metricsToken: config.metrics.token })

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  return app
}

/**
 * This app's metrics (metrics.ts), fed by the store's commits, the
 * dispatcher's attempts and a hook on every answer (added before the routes,
 * so it sees them all) that labels it with its route template.
 */
function instrument (app: FastifyInstance, deps: AppDeps, gateways: GatewayRegistry): Metrics {
  const { store, outbound } = deps
  const metrics = new Metrics({
    gateways: gateways.keys(),
    logPosition: () => store.eventLog.tail.position,
    ordersNeedingReview: async () => await countOrdersNeedingReview(store.db),
    activeDeliveries: outbound === undefined ? undefined : () => outbound.messages.activeDeliveries()
  })
  const stopCommits = store.eventLog.observeCommits(report => { metrics.commit(report) })
  const stopAttempts = outbound?.dispatcher.observeAttempts(result => { metrics.deliveryAttempt(result) })
  app.addHook('onClose', async () => {
    stopCommits()
    stopAttempts?.()
  })
  app.addHook('onResponse', (request, reply, done) => {
    // A 404's URL is whatever the client sent: it never becomes a label.
    const route = request.is404 ? unmatchedRoute : request.routeOptions.url ?? unmatchedRoute
    metrics.request(route, request.method, reply.statusCode, reply.elapsedTime / 1000)
    done()
  })
  return metrics
}
