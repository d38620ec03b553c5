import type { FastifyPluginAsync } from 'fastify'
import { sendPage, sessionOf, type ConsoleContext } from '../context.js'
import { notice } from '../layout.js'

// Placeholder until the view is built (issue 12).
export const outboundView: FastifyPluginAsync<ConsoleContext> = async (app) => {
  app.get('/console/outbound', { schema: { hide: true } }, async (request, reply) => {
    return sendPage(reply, { title: 'Outbound', section: 'outbound', session: sessionOf(request), body: notice('note', 'This view is being built.') })
  })
}
