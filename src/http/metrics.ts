import type { FastifyPluginAsync } from 'fastify'
import { Type } from '@sinclair/typebox'
import type { Metrics } from '../metrics.js'
import { requireBearer } from './auth.js'

export interface MetricsRoutesOptions {
  metrics: Metrics
  adminToken: string
  /** PAYNOTIFY_METRICS_TOKEN: opens this route and nothing else. */
  metricsToken?: string | undefined
}

/** GET /metrics: Prometheus text for the admin token or the metrics token, never the merchant token. */
export const metricsRoutes: FastifyPluginAsync<MetricsRoutesOptions> = async (app, options) => {
  const { metrics, adminToken, metricsToken } = options
  app.addHook('onRequest', requireBearer(metricsToken === undefined ? [adminToken] : [adminToken, metricsToken], 'metrics'))

  app.get('/metrics', {
    schema: {
      summary: 'Prometheus metrics: callbacks by gateway and outcome, batch sizes, commit and request times, log position, orders needing review, outbound deliveries, the process',
      security: [{ adminToken: [] }, { metricsToken: [] }],
      response: { 200: Type.String({ description: 'Prometheus text exposition format 0.0.4' }) }
    }
  }, async (_request, reply) => {
    const text = await metrics.render()
    return await reply.type(metrics.contentType).header('cache-control', 'no-store').send(text)
  })
}
