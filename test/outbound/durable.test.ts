import { once } from 'node:events'
import t from 'tap'
import { FeedStream } from '../../src/http/feed.js'
import { callbackParams, createEndpoint, outboxRows, sendCallback, startOutboundApp } from './harness.js'
import { startReceiver } from './receiver.js'

// At synchronous=FULL the writer thread syncs the WAL after its COMMIT (src/event-log/writer-worker.ts):
// for a moment a committed message is readable but not yet on disk, and a power loss could take it
// back. The dispatcher and the feed go no further than the writer's acked tail (its durable position).

/** Lets the dispatcher's pending tick run (it is queued with setImmediate after a nudge). */
async function afterTick (): Promise<void> {
  for (let i = 0; i < 2; i++) await new Promise(resolve => setImmediate(resolve))
}

t.test('a message past the durable position is neither delivered nor fed until the disk has it', async t => {
  const disk = { position: Number.MAX_SAFE_INTEGER }
  const service = await startOutboundApp(t, { durablePosition: () => disk.position })
  const receiver = await startReceiver(t)
  await createEndpoint(service.app, { url: receiver.url }, receiver)
  // The disk stops here: what follows is committed, not synced.
  disk.position = service.store.eventLog.tail.position
  await sendCallback(service.app, callbackParams('durable-1', 'paid', 8888))
  const [message] = outboxRows(service, 'durable-1')
  t.ok(message !== undefined && message.position > disk.position, 'the callback wrote its message past the durable position')

  const feed = new FeedStream(service.store.sqlite, service.outbound.commits, 0, service.outbound.durablePosition)
  t.teardown(() => { feed.destroy() })
  feed.setEncoding('utf8')
  const fed: string[] = []
  feed.on('data', (chunk: string) => { fed.push(chunk) })
  service.outbound.dispatcher.nudge()
  await afterTick()
  t.equal(receiver.delivered.length, 0, 'not delivered while only committed')
  t.equal(service.outbound.dispatcher.inflight, 0, 'and not in flight')
  t.same(fed, [], 'not fed either')

  disk.position = Number.MAX_SAFE_INTEGER
  const data = once(feed, 'data')
  service.outbound.commits.emit('committed')
  await data
  t.match(fed.join(''), `id: ${message!.seq}\nevent: order.updated\n`, 'fed once the disk has it')
  await receiver.until(r => r.delivered.length === 1)
  t.equal(receiver.delivered[0]!.headers['webhook-id'], message!.message_id, 'and delivered')
})
