import type { FastifyInstance } from 'fastify'
import { assertNoDuplicateKeys } from '../gateways/strict-json.js'

/**
 * Parses application/json bodies of the plugin's routes with Fastify's own
 * parser (prototype-poisoning checks included), then refuses a repeated key,
 * which that parser would resolve by keeping the last.
 */
export function parseStrictJson (app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = String(body)
    parseJson(request, text, (error, value) => {
      if (error !== null) {
        done(error, undefined)
        return
      }
      try {
        assertNoDuplicateKeys(text)
        done(null, value)
      } catch (duplicate) {
        done(duplicate as Error, undefined)
      }
    })
  })
}
