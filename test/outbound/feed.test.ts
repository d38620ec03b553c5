import { randomBytes } from 'node:crypto'
import { request, type ClientRequest, type IncomingHttpHeaders } from 'node:http'
import t from 'tap'
import { adminAuth, merchantAuth } from '../helpers.js'
import { httpRequest } from '../faults/helpers.js'
import { callbackParams, outboxRows, sendCallback, startOutboundApp } from './harness.js'

interface FeedEvent { id: number, event: string, data: string }

/** A reader of GET /admin/feed over a real socket: parses server-sent events as they arrive. */
class FeedClient {
  readonly events: FeedEvent[] = []
  readonly #waiters: Array<() => void> = []
  #request: ClientRequest | undefined
  status = 0
  headers: IncomingHttpHeaders = {}

  /** Resolves once the answer's headers arrived. */
  async open (url: string, headers: Record<string, string>): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.#request = request(url, { headers }, response => {
        this.status = response.statusCode ?? 0
        this.headers = response.headers
        let buffered = ''
        response.setEncoding('utf8').on('data', (chunk: string) => {
          buffered += chunk
          const blocks = buffered.split('\n\n')
          buffered = blocks.pop()!
          for (const block of blocks) this.#parse(block)
          for (const wake of this.#waiters.splice(0)) wake()
        })
        response.on('error', () => {})
        resolve()
      })
      this.#request.on('error', reject).end()
    })
    return this
  }

  #parse (block: string): void {
    const fields = new Map<string, string>()
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue
      const colon = line.indexOf(': ')
      fields.set(line.slice(0, colon), line.slice(colon + 2))
    }
    if (fields.has('id')) this.events.push({ id: Number(fields.get('id')), event: fields.get('event') ?? '', data: fields.get('data') ?? '' })
  }

  async until (count: number): Promise<void> {
    while (this.events.length < count) await new Promise<void>(resolve => { this.#waiters.push(resolve) })
  }

  close (): void {
    this.#request?.destroy()
  }
}

t.test('the pull feed: server-sent events for the admin or the feed token, resumed after Last-Event-ID or ?after= without repeats, live as callbacks arrive', async t => {
  const feedToken = randomBytes(24).toString('base64url')
  const setup = await startOutboundApp(t, { env: { PAYNOTIFY_FEED_TOKEN: feedToken } })
  const { app } = setup
  const clients: FeedClient[] = []
  t.teardown(() => { for (const client of clients) client.close() })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const feed = `${base}/admin/feed`
  const connect = async (headers: Record<string, string>, url = feed): Promise<FeedClient> => {
    const client = await new FeedClient().open(url, headers)
    clients.push(client)
    return client
  }

  for (const [headers, who] of [[{}, 'no token'], [{ authorization: 'Bearer not-the-feed-token-0123456789' }, 'a wrong token'], [merchantAuth, 'the merchant token']] as const) {
    const res = await httpRequest(feed, { headers })
    t.match(res, { ok: true, status: 401 }, `${who}: 401`)
  }
  t.match(await httpRequest(feed, { headers: { ...adminAuth, 'last-event-id': 'abc' } }), { ok: true, status: 400 }, 'a Last-Event-ID that is no id: 400')

  await sendCallback(app, callbackParams('feed-1', 'paid', 8_888))
  await sendCallback(app, callbackParams('feed-2', 'pending', 1_000))
  const written = outboxRows(setup)
  t.equal(written.length, 3)

  const admin = await connect(adminAuth)
  t.equal(admin.status, 200)
  t.match(admin.headers['content-type'], /^text\/event-stream/)
  await admin.until(3)
  t.same(admin.events, written.map(row => ({ id: row.seq, event: row.type, data: row.payload })), 'every message: id its position, event its type, data the body endpoints get')

  const resumed = await connect({ authorization: `Bearer ${feedToken}`, 'last-event-id': String(written[0]!.seq) })
  t.equal(resumed.status, 200, 'the feed token reads the feed')
  for (const url of ['/admin/endpoints', '/admin/orders/feed-1', `/admin/messages/${written[0]!.message_id}`]) {
    t.equal((await app.inject({ url, headers: { authorization: `Bearer ${feedToken}` } })).statusCode, 401, `and nothing else: ${url}`)
  }
  await resumed.until(2)
  t.same(resumed.events.map(event => event.id), [written[1]!.seq, written[2]!.seq], 'resumed after Last-Event-ID')

  await sendCallback(app, callbackParams('feed-2', 'paid', 1_000))
  const live = outboxRows(setup).slice(3)
  t.same(live.map(row => row.type), ['order.updated', 'order.paid'])
  await resumed.until(4)
  await admin.until(5)
  t.same(resumed.events.map(event => event.id), [written[1]!.seq, written[2]!.seq, live[0]!.seq, live[1]!.seq], 'live messages follow, none repeated')
  t.same(admin.events.slice(3), live.map(row => ({ id: row.seq, event: row.type, data: row.payload })))
  t.match(JSON.parse(admin.events[4]!.data), { type: 'order.paid', data: { order_id: 'feed-2', status: 'paid', previous_status: 'pending', paid_amount: 1_000 } })

  const after = await connect({ authorization: `Bearer ${feedToken}` }, `${feed}?after=${live[0]!.seq}`)
  await after.until(1)
  t.same(after.events.map(event => event.id), [live[1]!.seq], '?after= resumes too')

  // The answers only end when the clients go; close them before the app closes.
  for (const client of clients) client.close()
})
