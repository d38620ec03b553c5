import type { FastifyPluginAsync } from 'fastify'
import type { ConsoleContext } from '../context.js'
import { LiveStream } from '../live-stream.js'

export interface LiveOptions extends ConsoleContext {
  /** Open live streams this process serves at once; past it, 503 (default 100). */
  maxLiveStreams?: number
  /** Least time between two commit messages of a stream (default 500 ms). */
  liveIntervalMs?: number
  /** A comment this often on a quiet stream (default 15 s). */
  liveHeartbeatMs?: number
}

/**
 * GET /console/live: server-sent events for the signed-in console
 * (console-assets/live.js): `event: commit` with `data: {"position":N}`
 * after commits, throttled. Each stream costs a socket and two timers, so
 * their number is bounded; the service's close ends them all.
 */
export const liveView: FastifyPluginAsync<LiveOptions> = async (app, options) => {
  const open = new Set<LiveStream>()
  const max = options.maxLiveStreams ?? 100
  const streamOptions = { minIntervalMs: options.liveIntervalMs ?? 500, heartbeatMs: options.liveHeartbeatMs ?? 15_000 }

  // Before the server stops taking connections: a stream left open would keep close() waiting.
  app.addHook('preClose', async () => {
    for (const stream of open) stream.finish()
  })

  app.get('/console/live', { schema: { hide: true } }, async (_request, reply) => {
    if (open.size >= max) {
      return await reply.code(503).header('retry-after', '30').type('text/plain; charset=utf-8').send('too many live streams: try again later')
    }
    const stream = new LiveStream(options.log, streamOptions)
    open.add(stream)
    stream.once('close', () => { open.delete(stream) })
    reply.header('cache-control', 'no-store').header('x-accel-buffering', 'no')
    return await reply.type('text/event-stream').send(stream)
  })
}
