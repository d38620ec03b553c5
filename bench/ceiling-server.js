// The ingest ceiling: a bare Fastify route with paynotify's body parser
// (raw Buffer kept for signature checks, same body limit) answering
// `success` without verifying or storing anything. No logger, no plugins:
// the fastest this stack answers this request on this machine.
import Fastify from 'fastify'

const app = Fastify({ bodyLimit: 65536 })
app.removeAllContentTypeParsers()
app.addContentTypeParser(['application/x-www-form-urlencoded', 'application/json'], { parseAs: 'buffer', bodyLimit: 65536 },
  (_request, body, done) => { done(null, body) })
app.get('/healthz', async () => ({ status: 'ok' }))
app.post('/notify/:gateway', async (request, reply) => {
  if (!Buffer.isBuffer(request.body)) return reply.code(415).send('fail')
  return reply.code(200).type('text/plain; charset=utf-8').send('success')
})

const port = Number(process.env.PORT ?? 3001)
await app.listen({ host: '127.0.0.1', port })
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
}
