import type { FastifyPluginAsync } from 'fastify'
import { sendPage, sessionOf, type ConsoleContext } from '../context.js'
import { notice } from '../layout.js'

// Placeholder until the view is built (issue 12).
export const orderView: FastifyPluginAsync<ConsoleContext> = async (app) => {
  app.get('/console/orders/:id', { schema: { hide: true } }, async (request, reply) => {
    return sendPage(reply, { title: 'Order', section: 'orders', session: sessionOf(request), body: notice('note', 'This view is being built.') })
  })
}
