import type { FastifyPluginAsync } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { requireBearer } from './auth.js'
import { RefusalSchema, RefusalSummarySchema, summaryMinutes, type RefusalStore } from './refusals.js'
import { refuseUnknownQuery } from './schemas.js'

export interface RefusalRoutesOptions {
  refusals: RefusalStore
  adminToken: string
  /** Epoch milliseconds: the service clock the summary's window ends at. */
  now: () => number
}

const security = [{ adminToken: [] }]
const Cursor = Type.Integer({ minimum: 0 })

/** GET /admin/refusals and its summary: the last refused callbacks (http/refusals.ts), for the admin token only. */
export const refusalRoutes: FastifyPluginAsync<RefusalRoutesOptions> = async (plugin, options) => {
  const app = plugin.withTypeProvider<TypeBoxTypeProvider>()
  const { refusals, now } = options
  app.addHook('onRequest', requireBearer(options.adminToken, 'admin'))
  app.addHook('onRoute', refuseUnknownQuery)

  app.get('/admin/refusals', {
    schema: {
      summary: 'The last refused callbacks, newest first: why each was refused, its headers (secrets redacted) and the head of its body, kept in memory apart from the event log',
      description: 'At most PAYNOTIFY_REFUSALS_MAX refusals (default 500) and 1 MiB are kept, the oldest dropped first; none survives a restart. ' +
        'Page with before=nextCursor; after=<the newest id seen> answers only what arrived since.',
      security,
      querystring: Type.Object({
        before: Type.Optional(Type.Integer({ minimum: 1, description: 'cursor: only refusals older than this id (the nextCursor of the page before)' })),
        after: Type.Optional({ ...Cursor, description: 'only refusals newer than this id' }),
        limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
        gateway: Type.Optional(Type.String({ maxLength: 32 })),
        code: Type.Optional(Type.String({ maxLength: 64, description: 'the reason: bad_signature, malformed, body_too_large, unknown_gateway, …' }))
      }),
      response: {
        200: Type.Object({
          refusals: Type.Array(RefusalSchema),
          nextCursor: Type.Union([Type.Integer(), Type.Null()], { description: 'before= of the next page; null on the last' })
        })
      }
    }
  }, async (request) => refusals.list(request.query))

  app.get('/admin/refusals/summary', {
    schema: {
      summary: 'Refused callbacks counted by reason and by gateway over the last minutes (dropped ones included), and what the store keeps',
      security,
      querystring: Type.Object({
        minutes: Type.Integer({ minimum: 1, maximum: summaryMinutes, default: summaryMinutes, description: 'this many minutes, the current one included, each from its start' })
      }),
      response: {
        200: Type.Intersect([RefusalSummarySchema, Type.Object({
          kept: Type.Object({
            entries: Type.Integer(),
            bytes: Type.Integer({ description: 'approximate' }),
            maxEntries: Type.Integer(),
            maxBytes: Type.Integer(),
            recorded: Type.Integer({ description: 'refusals recorded since the service started' }),
            evicted: Type.Integer({ description: 'refusals dropped to stay within the bounds' })
          })
        })])
      }
    }
  }, async (request) => {
    // minutes=1 is the current minute only.
    const since = now() - (request.query.minutes - 1) * 60_000
    return { ...refusals.summary(since), kept: refusals.stats() }
  })
}
