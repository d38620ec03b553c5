import type { Config } from '../config.js'
import type { Secrets } from '../secrets.js'
import { alipayAdapterFromConfig } from './alipay.js'
import { createGenericAdapter } from './generic.js'
import { createStandardWebhooksAdapter } from './standard-webhooks.js'
import { createStripeAdapter } from './stripe.js'
import type { GatewayAdapter } from './types.js'
import { wechatpayAdapterFromConfig } from './wechatpay.js'

// Each adapter has its own verified-payload type; the route only passes it from verify to parse.
export type GatewayRegistry = ReadonlyMap<string, GatewayAdapter<any>>

/** The app logger, for verified callbacks an adapter acks without recording (a Stripe event naming no order). */
export interface GatewayLog {
  warn: (details: Record<string, unknown>, message: string) => void
}

/**
 * The adapters this service accepts callbacks for. A gateway whose keys are
 * not configured is absent, so its route answers 404 rather than accepting
 * anything unsigned.
 */
export function createGatewayRegistry (config: Config, secrets: Secrets, log?: GatewayLog): GatewayRegistry {
  const adapters: Array<GatewayAdapter<any>> = [
    createGenericAdapter({ secret: secrets.genericSecret, defaultCurrency: config.defaultCurrency })
  ]
  const { stripe, standard } = config.gateways
  if (stripe.webhookSecret !== undefined) {
    adapters.push(createStripeAdapter({
      webhookSecret: stripe.webhookSecret,
      orderIdKey: stripe.orderIdKey,
      warn: (details, message) => { log?.warn(details, message) }
    }))
  }
  if (standard.secret !== undefined) adapters.push(createStandardWebhooksAdapter({ secret: standard.secret }))
  // Half-configured keys throw a ConfigError here (a start-up failure), never a silently open route.
  for (const adapter of [alipayAdapterFromConfig(config.gateways.alipay), wechatpayAdapterFromConfig(config.gateways.wechatpay)]) {
    if (adapter !== undefined) adapters.push(adapter)
  }
  return new Map(adapters.map(adapter => [adapter.name, adapter]))
}
