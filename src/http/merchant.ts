import type { FastifyPluginAsync } from 'fastify'
import formbody from '@fastify/formbody'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import { AppError, MalformedError } from '../errors.js'
import type { EventAppender } from '../event-log/event-log.js'
import { parseCurrency, parseDecimalAmount } from '../orders/money.js'
import { findOrder } from '../orders/queries.js'
import { requireBearer } from './auth.js'
import { parseStrictJson } from './json-body.js'
import { ErrorBody, OrderId, OrderViewSchema } from './schemas.js'

export interface MerchantRoutesOptions {
  db: Kysely<Database>
  eventLog: EventAppender
  merchantToken: string
  defaultCurrency: string
  now: () => Date
}

const orderBodyLimit = 4096

/**
 * POST /orders — the merchant registers what it expects to be paid, as an
 * OrderPlaced event, so callbacks can be checked against it. Registering the
 * same order again with the same amount is a no-op; with another amount, 409.
 * The amount is a decimal string in major units ("88.88"), as the generic
 * gateway's callbacks carry it; a JSON number is refused, since every
 * integer-amount API (Stripe, WeChat Pay, Standard Webhooks) means minor units
 * by it and 8888 would be read as 8888.00.
 */
export const merchantRoutes: FastifyPluginAsync<MerchantRoutesOptions> = async (plugin, options) => {
  const app = plugin.withTypeProvider<TypeBoxTypeProvider>()
  await app.register(formbody)
  parseStrictJson(plugin)
  app.addHook('onRequest', requireBearer(options.merchantToken, 'merchant'))

  // Registrations of one order run one after another: two concurrent ones with different
  // amounts must get 201 and 409, not both 201 because each checked before the other's append.
  const registering = new Map<string, Promise<unknown>>()
  const oneAtATime = async <T>(orderId: string, work: () => Promise<T>): Promise<T> => {
    const current = (registering.get(orderId) ?? Promise.resolve()).then(work, work)
    registering.set(orderId, current)
    try {
      return await current
    } finally {
      if (registering.get(orderId) === current) registering.delete(orderId)
    }
  }

  app.post('/orders', {
    // An order registration is three short fields: anything near this size is not one.
    bodyLimit: orderBodyLimit,
    schema: {
      summary: 'Register an order and the amount it must be paid',
      security: [{ merchantToken: [] }],
      body: Type.Object({
        order_id: OrderId,
        amount: Type.String({ description: 'decimal string in major units, e.g. "88.88" (a JSON number is refused)', maxLength: 32 }),
        currency: Type.Optional(Type.String({ description: 'ISO 4217, defaults to PAYNOTIFY_DEFAULT_CURRENCY' }))
      }, { additionalProperties: false }),
      response: { 200: OrderViewSchema, 201: OrderViewSchema, 409: ErrorBody }
    },
    // Before validation: the schema's type coercion would turn 8888 into "8888".
    preValidation: async (request) => {
      const body = request.body as Record<string, unknown> | null | undefined
      if (typeof body === 'object' && body !== null && typeof body.amount === 'number') {
        throw new MalformedError('must be a decimal string in major units such as "88.88" (a JSON number is refused: 8888 would be read as 8888.00, not 88.88)', 'amount')
      }
    }
  }, async (request, reply) => {
    const { order_id: orderId } = request.body
    const currency = parseCurrency(request.body.currency ?? options.defaultCurrency)
    const amount = parseDecimalAmount(request.body.amount, currency)
    return await oneAtATime(orderId, async () => {
      const existing = await findOrder(options.db, orderId)
      if (existing !== undefined && existing.expectedAmount !== null) {
        if (existing.expectedAmount === amount && existing.expectedCurrency === currency) return await reply.code(200).send(existing)
        throw new AppError(409, 'order_conflict', `order ${orderId} is already registered with another amount or currency`)
      }
      await options.eventLog.append([{
        streamId: orderId,
        type: 'OrderPlaced',
        data: { orderId, amount, currency },
        metadata: { gateway: 'merchant', deliveryId: `order:${orderId}:${amount}:${currency}`, receivedAt: options.now().toISOString(), requestId: request.id }
      }])
      return await reply.code(201).send((await findOrder(options.db, orderId))!)
    })
  })
}
