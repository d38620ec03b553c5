import type { FastifyPluginAsync } from 'fastify'
import { sendPage, sessionOf, type ConsoleContext } from '../context.js'
import { notice } from '../layout.js'

// Placeholder until the view is built (issue 12).
export const reviewView: FastifyPluginAsync<ConsoleContext> = async (app) => {
  app.get('/console/review', { schema: { hide: true } }, async (request, reply) => {
    return sendPage(reply, { title: 'Review queue', section: 'review', session: sessionOf(request), body: notice('note', 'This view is being built.') })
  })
}
