import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import { lazySchemaCompilers } from '../../src/http/lazy-schemas.js'

// The service compiles each route's schemas on the route's first use (src/http/lazy-schemas.ts):
// what a request gets must be exactly what Fastify's own compilers give, the first time and after.

const ajv = { customOptions: { removeAdditional: false, coerceTypes: true, allErrors: false } }
const schema = {
  body: {
    type: 'object',
    required: ['amount'],
    properties: { amount: { type: 'integer', minimum: 0 }, note: { type: 'string', maxLength: 8 } }
  },
  querystring: { type: 'object', properties: { limit: { type: 'integer', maximum: 5 } } },
  response: { 200: { type: 'object', properties: { amount: { type: 'integer' }, limit: { type: 'integer' } } } }
}

function build (lazy: boolean): FastifyInstance {
  const app = Fastify({ ajv, ...(lazy ? { schemaController: lazySchemaCompilers() } : {}) })
  app.addSchema({ $id: 'Shared', type: 'object', properties: { id: { type: 'string', pattern: '^[a-z]+$' } }, required: ['id'] })
  // Extra fields in the answer: the serializer leaves them out.
  app.post('/pay', { schema }, async request => ({ ...(request.body as object), ...(request.query as object), secret: 'never sent' }))
  app.post('/ref', { schema: { body: { $ref: 'Shared#' } } }, async request => request.body)
  return app
}

t.test('lazily compiled schemas answer as Fastify\'s own compilers do, request after request', async t => {
  const lazy = build(true)
  const eager = build(false)
  t.teardown(async () => { await Promise.all([lazy.close(), eager.close()]) })
  const requests = [
    { url: '/pay', payload: { amount: '12' } },
    { url: '/pay', payload: { amount: -1 } },
    { url: '/pay', payload: { note: 'x' } },
    { url: '/pay', payload: { amount: 1, note: 'far too long' } },
    { url: '/pay?limit=9', payload: { amount: 1 } },
    { url: '/pay?limit=3', payload: { amount: 7 } },
    { url: '/ref', payload: { id: 'abc' } },
    { url: '/ref', payload: { id: 'ABC' } },
    { url: '/ref', payload: {} }
  ]
  // Twice over: the first use compiles, the second reuses what it compiled.
  for (const request of [...requests, ...requests]) {
    const [a, b] = await Promise.all([lazy.inject({ method: 'POST', ...request }), eager.inject({ method: 'POST', ...request })])
    t.equal(a.statusCode, b.statusCode, `${request.url} ${JSON.stringify(request.payload)}: status ${b.statusCode}`)
    t.equal(a.body, b.body, `${request.url} ${JSON.stringify(request.payload)}: ${b.body}`)
  }
  const paid = await lazy.inject({ method: 'POST', url: '/pay?limit=3', payload: { amount: '7' } })
  t.same(paid.json(), { amount: 7, limit: 3 }, 'coerced, and only the answer schema\'s fields sent')
  const refused = await lazy.inject({ method: 'POST', url: '/pay', payload: { amount: -1 } })
  t.equal(refused.statusCode, 400)
  t.match(refused.json().message, /amount must be >= 0/)
})

t.test('a headers schema is refused when its route is added, not ignored', async t => {
  const app = Fastify({ schemaController: lazySchemaCompilers() })
  app.get('/h', { schema: { headers: { type: 'object', properties: { 'X-Id': { type: 'string' } } } } }, async () => 'ok')
  await t.rejects(async () => { await app.ready() }, /headers schemas are not supported/)
})
