import type { Config } from '../config.js'
import type { Secrets } from '../secrets.js'
import { createGenericAdapter } from './generic.js'
import type { GatewayAdapter } from './types.js'

// Each adapter has its own verified-payload type; the route only passes it from verify to parse.
export type GatewayRegistry = ReadonlyMap<string, GatewayAdapter<any>>

/**
 * The adapters this service accepts callbacks for. A gateway whose keys are
 * not configured is absent, so its route answers 404 rather than accepting
 * anything unsigned.
 */
export function createGatewayRegistry (config: Config, secrets: Secrets): GatewayRegistry {
  const adapters: Array<GatewayAdapter<any>> = [
    createGenericAdapter({ secret: secrets.genericSecret, defaultCurrency: config.defaultCurrency })
  ]
  return new Map(adapters.map(adapter => [adapter.name, adapter]))
}
