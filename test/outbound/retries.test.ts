import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { loadCatalogue } from '../events/catalogue.js'
import { adminAuth } from '../helpers.js'
import { adminGet, callbackParams, createEndpoint, eventually, outboxRows, sendCallback, startOutboundApp, type OutboxRow } from './harness.js'
import { startReceiver } from './receiver.js'
import type { Attempt } from '../../src/outbound/messages.js'

/** Every recorded attempt of an endpoint, oldest first, read page by page as a client would. */
async function allAttempts (app: FastifyInstance, endpointId: string, limit = 500): Promise<Attempt[]> {
  const attempts: Attempt[] = []
  let cursor: number | null = null
  do {
    const page: { attempts: Attempt[], nextCursor: number | null } = await adminGet(app, `/admin/endpoints/${endpointId}/attempts?limit=${limit}${cursor === null ? '' : `&cursor=${cursor}`}`)
    attempts.push(...page.attempts)
    cursor = page.nextCursor
  } while (cursor !== null)
  return attempts.reverse()
}

/** The two messages a first callback that pays an order sends: order.updated, then order.paid. */
function paidMessages (rows: OutboxRow[]): { updated: OutboxRow, paid: OutboxRow } {
  const [updated, paid] = rows
  if (updated?.type !== 'order.updated' || paid?.type !== 'order.paid') throw new Error(`unexpected messages ${rows.map(row => row.type).join(', ')}`)
  return { updated, paid }
}

t.test('a receiver that is down, then up: delivered after retries, the same webhook-id on every attempt, each attempt recorded', async t => {
  const receiver = await startReceiver(t)
  // Many short retries: the receiver comes back while some are left, however late the test sees the first failures.
  const setup = await startOutboundApp(t, { env: { PAYNOTIFY_OUTBOUND_RETRY_SCHEDULE: '0,10ms,20ms,40ms,80ms,160ms,320ms,640ms,1s,2s,5s,10s,30s' } })
  const { app } = setup
  const endpoint = await createEndpoint(app, { url: `${receiver.url}/hooks` }, receiver)
  await receiver.down()
  await sendCallback(app, callbackParams('down-1', 'paid', 5_000))
  const { updated, paid } = paidMessages(outboxRows(setup, 'down-1'))
  await eventually(async () => (await allAttempts(app, endpoint.id)).length >= 3)
  t.equal(receiver.requests.length, 0, 'nothing arrived while it was down')
  await receiver.up()
  await receiver.until(r => r.delivered.length === 2)

  t.same(receiver.requests.map(request => request.id), [updated.message_id, paid.message_id], 'each arrived once, in order, once it was up')
  t.same(receiver.refused, [])
  // The receiver has answered; the dispatcher records the answer just after.
  const attempts = await eventually(async () => {
    const recorded = await allAttempts(app, endpoint.id)
    return recorded.some(attempt => attempt.messageId === paid.message_id) ? recorded : undefined
  })
  const ofUpdated = attempts.filter(attempt => attempt.messageId === updated.message_id)
  t.ok(ofUpdated.length >= 4, `order.updated took ${ofUpdated.length} attempts`)
  for (const failed of ofUpdated.slice(0, -1)) {
    t.match(failed, { status: null, error: /ECONNREFUSED/, responseBody: null }, 'a refused connection, recorded')
  }
  t.match(ofUpdated.at(-1), { status: 200, error: null }, 'then delivered')
  t.same(new Set(ofUpdated.map(attempt => attempt.requestHeaders['webhook-id'])), new Set([updated.message_id]), 'the same webhook-id on every attempt')
  for (const attempt of ofUpdated) {
    t.match(attempt.requestHeaders, { 'webhook-timestamp': /^\d+$/, 'webhook-signature': /^v1,/, 'content-type': 'application/json' }, 'the request headers are recorded')
    t.match(attempt.attemptedAt, /Z$/)
  }
  t.ok(ofUpdated.every((attempt, i) => i === 0 || Date.parse(attempt.attemptedAt) >= Date.parse(ofUpdated[i - 1]!.attemptedAt)), 'in time order')
  t.match(attempts.filter(attempt => attempt.messageId === paid.message_id), [{ status: 200 }], 'order.paid: one attempt, after order.updated was delivered')

  const newestFirst = (await adminGet(app, `/admin/endpoints/${endpoint.id}/attempts`)).attempts as Attempt[]
  t.same(newestFirst.map(attempt => attempt.id), attempts.map(attempt => attempt.id).reverse(), 'the list is newest first')
  t.same((await allAttempts(app, endpoint.id, 2)).map(attempt => attempt.id), attempts.map(attempt => attempt.id), 'and pages by cursor without gaps or repeats')

  const message = await adminGet(app, `/admin/messages/${updated.message_id}`)
  t.match(message, { id: updated.message_id, type: 'order.updated', orderId: 'down-1', state: 'delivered' })
  t.match(message.deliveries, [{ endpointId: endpoint.id, state: 'delivered', attempts: ofUpdated.length, lastStatus: 200, nextAttemptAt: null }])
  t.same(message.deliveries[0].attemptLog.map((attempt: Attempt) => attempt.id), ofUpdated.map(attempt => attempt.id).reverse(), 'the message shows its attempts')
})

t.test('a receiver slower than PAYNOTIFY_OUTBOUND_TIMEOUT_MS: the attempt is cut and recorded as a timeout, and the retry delivers', async t => {
  const receiver = await startReceiver(t, (request, r) => r.attemptsOf(request.id).length === 1 ? { hold: true } : { status: 200 })
  // Retries to spare: on a loaded machine an answer that should be quick may miss the timeout too.
  const setup = await startOutboundApp(t, { env: { PAYNOTIFY_OUTBOUND_TIMEOUT_MS: '1000', PAYNOTIFY_OUTBOUND_RETRY_SCHEDULE: '0,20ms,40ms,80ms,160ms,320ms,640ms,1s' } })
  const { app } = setup
  const endpoint = await createEndpoint(app, { url: receiver.url }, receiver)
  await sendCallback(app, callbackParams('slow-1', 'paid', 5_000))
  const { updated } = paidMessages(outboxRows(setup, 'slow-1'))
  await receiver.until(r => r.delivered.length === 2)

  const arrivals = receiver.attemptsOf(updated.message_id)
  t.equal(arrivals[0]!.answer, 'cut', 'the first request was never answered: the dispatcher gave up on it')
  t.equal(arrivals.at(-1)!.answer, 200)
  const first = await eventually(async () => (await allAttempts(app, endpoint.id))[0])
  t.match(first, { messageId: updated.message_id, status: null, error: 'timeout after 1000 ms' })
  t.ok(first.durationMs >= 999, `and it lasted the timeout (${first.durationMs} ms)`)
  t.equal((await adminGet(app, `/admin/messages/${updated.message_id}`)).state, 'delivered')
})

t.test('500s, then 200: retried with the same webhook-id; a Retry-After answer sets the least wait before the next attempt', async t => {
  const answers = [
    { status: 500, body: 'x'.repeat(10_000) },
    { status: 502 },
    { status: 429, headers: { 'retry-after': '1' } }
  ]
  const receiver = await startReceiver(t, (request, r) => request.message?.type === 'order.updated' ? answers[r.attemptsOf(request.id).length - 1] ?? { status: 200 } : { status: 200 })
  const setup = await startOutboundApp(t)
  const { app } = setup
  const endpoint = await createEndpoint(app, { url: receiver.url }, receiver)
  await sendCallback(app, callbackParams('retry-1', 'paid', 5_000))
  const { updated, paid } = paidMessages(outboxRows(setup, 'retry-1'))
  await receiver.until(r => r.delivered.length === 2)

  const arrivals = receiver.attemptsOf(updated.message_id)
  t.same(arrivals.map(request => request.answer), [500, 502, 429, 200], 'retried on 5xx and 429 until a 2xx')
  t.same(receiver.refused, [], 'every attempt signed afresh and verified')
  t.ok(receiver.attemptsOf(paid.message_id)[0]!.index > arrivals.at(-1)!.index, 'order.paid only after order.updated succeeded')
  const recorded = await eventually(async () => {
    const ofUpdated = (await allAttempts(app, endpoint.id)).filter(attempt => attempt.messageId === updated.message_id)
    return ofUpdated.length === 4 ? ofUpdated : undefined
  })
  t.same(recorded.map(attempt => attempt.status), [500, 502, 429, 200])
  t.equal(Buffer.byteLength(recorded[0]!.responseBody!), 4096, 'the first 4 KiB of an answer are kept')
  // The schedule would retry after 80 ms (±10 %); the 429 asked for a second. Both sides measured it.
  const received = arrivals[3]!.at - arrivals[2]!.at
  const attempted = Date.parse(recorded[3]!.attemptedAt) - Date.parse(recorded[2]!.attemptedAt)
  t.ok(received >= 1000, `the receiver saw the retry ${received} ms after the 429`)
  t.ok(attempted >= 1000, `the dispatcher attempted it ${attempted} ms after`)
})

t.test('410 Gone: the endpoint is disabled (an EndpointChanged by the dispatcher), the message is dead, and nothing more goes to it until it is enabled again', async t => {
  const receiver = await startReceiver(t, () => ({ status: 410 }))
  const setup = await startOutboundApp(t)
  const { app, store } = setup
  const endpoint = await createEndpoint(app, { url: receiver.url }, receiver)
  await sendCallback(app, callbackParams('gone-1', 'paid', 5_000))
  const { updated, paid } = paidMessages(outboxRows(setup, 'gone-1'))
  const disabled = await eventually(async () => {
    const shown = await adminGet(app, `/admin/endpoints/${endpoint.id}`)
    return shown.enabled === false ? shown : undefined
  })
  t.match(disabled, { enabled: false, disabledReason: /410/ })
  const change = JSON.parse(store.sqlite.prepare("SELECT data FROM events WHERE stream_id = '~endpoints' ORDER BY position DESC LIMIT 1").pluck().get() as string)
  t.match(change, { endpointId: endpoint.id, change: 'disabled', reason: /410/, actor: { kind: 'dispatcher' }, endpoint: { enabled: false } }, 'logged, by the dispatcher')
  t.equal(loadCatalogue().check('EndpointChanged.v1.json', change), null, 'as its schema describes it')

  const dead = await adminGet(app, `/admin/messages/${updated.message_id}`)
  t.match(dead, { state: 'dead', deliveries: [{ state: 'dead', attempts: 1, lastStatus: 410, lastError: /410/ }] }, 'a 410 is not retried')
  t.match(await adminGet(app, `/admin/messages/${paid.message_id}`), { state: 'pending', deliveries: [{ attempts: 0 }] }, 'the next message waits for the endpoint')
  t.same(receiver.requests.map(request => request.id), [updated.message_id])

  await sendCallback(app, callbackParams('gone-2', 'paid', 7_000))
  t.equal(store.sqlite.prepare("SELECT count(*) FROM outbound_deliveries WHERE order_id = 'gone-2'").pluck().get(), 0, 'a disabled endpoint is not given new messages')

  receiver.script = () => ({ status: 200 })
  const enabled = await app.inject({ method: 'PATCH', url: `/admin/endpoints/${endpoint.id}`, headers: adminAuth, payload: { enabled: true } })
  t.match(enabled.json(), { enabled: true, disabledReason: null })
  await receiver.until(r => r.delivered.length === 1)
  t.equal(receiver.delivered[0]!.id, paid.message_id, 'enabled again, the waiting message goes')
})

t.test('after the last attempt a message is dead-lettered; resend sends it again; a recover job re-sends a range of dead messages with progress', async t => {
  const startedAt = new Date().toISOString()
  const receiver = await startReceiver(t, () => ({ status: 500 }))
  const setup = await startOutboundApp(t)
  const { app } = setup
  const endpoint = await createEndpoint(app, { url: receiver.url }, receiver)
  await sendCallback(app, callbackParams('dead-1', 'paid', 5_000))
  const first = paidMessages(outboxRows(setup, 'dead-1'))
  const isDead = async (id: string): Promise<boolean> => (await adminGet(app, `/admin/messages/${id}`)).state === 'dead'
  await eventually(async () => await isDead(first.paid.message_id))

  const updatedArrivals = receiver.attemptsOf(first.updated.message_id)
  t.equal(updatedArrivals.length, 4, 'four attempts: the schedule 0,20ms,40ms,80ms has four entries')
  t.ok(updatedArrivals.at(-1)!.index < receiver.attemptsOf(first.paid.message_id)[0]!.index, 'the next message of the order went once this one was dead')
  const dead = await adminGet(app, `/admin/messages/${first.updated.message_id}`)
  t.match(dead.deliveries, [{ state: 'dead', attempts: 4, lastStatus: 500, lastError: /dead-lettered after 4 attempts/ }])
  t.equal(dead.deliveries[0].attemptLog.length, 4)

  receiver.script = () => ({ status: 200 })
  // No body, as `curl -X POST` sends it: to every endpoint the message went to.
  const resent = await app.inject({ method: 'POST', url: `/admin/messages/${first.updated.message_id}/resend`, headers: adminAuth })
  // Thrown, not only asserted: what follows waits for the re-sent message.
  if (resent.statusCode !== 202) throw new Error(`resend without a body answered ${resent.statusCode}: ${resent.body}`)
  t.same(resent.json(), { messageId: first.updated.message_id, deliveries: 1 })
  await receiver.until(r => r.delivered.length === 1)
  t.equal(receiver.delivered[0]!.id, first.updated.message_id, 'resent with its webhook-id')
  await eventually(async () => (await adminGet(app, `/admin/messages/${first.updated.message_id}`)).state === 'delivered')

  receiver.script = () => ({ status: 500 })
  await sendCallback(app, callbackParams('dead-2', 'paid', 6_000))
  await sendCallback(app, callbackParams('dead-3', 'pending', 7_000))
  const later = [...outboxRows(setup, 'dead-2'), ...outboxRows(setup, 'dead-3')]
  for (const row of later) await eventually(async () => await isDead(row.message_id))
  const toRecover = [first.paid.message_id, ...later.map(row => row.message_id)]

  receiver.script = () => ({ status: 200 })
  const started = await app.inject({ method: 'POST', url: `/admin/endpoints/${endpoint.id}/recover`, headers: adminAuth, payload: { since: startedAt } })
  t.equal(started.statusCode, 202)
  const job = started.json()
  t.match(job, { id: /^job_[0-9a-f]{24}$/, kind: 'recover', total: toRecover.length, params: { endpointId: endpoint.id } })
  t.equal(started.headers.location, `/admin/jobs/${job.id}`)
  const finished = await eventually(async () => {
    const progress = await adminGet(app, `/admin/jobs/${job.id}`)
    return progress.state === 'running' ? undefined : progress
  })
  t.match(finished, { state: 'done', total: toRecover.length, done: toRecover.length, error: null, finishedAt: String })
  await receiver.until(r => toRecover.every(id => r.delivered.some(request => request.id === id)))
  const order2 = outboxRows(setup, 'dead-2').map(row => receiver.delivered.findIndex(request => request.id === row.message_id))
  t.ok(order2[0]! < order2[1]!, 'recovered messages still go in their order\'s order')
  for (const id of toRecover) await eventually(async () => (await adminGet(app, `/admin/messages/${id}`)).state === 'delivered')
  t.pass('every recovered message is recorded as delivered')

  const empty = await app.inject({ method: 'POST', url: `/admin/endpoints/${endpoint.id}/recover`, headers: adminAuth, payload: { since: startedAt } })
  t.match(empty.json(), { total: 0 }, 'nothing left to recover')
  const backwards = await app.inject({ method: 'POST', url: `/admin/endpoints/${endpoint.id}/recover`, headers: adminAuth, payload: { since: startedAt, until: startedAt } })
  t.equal(backwards.statusCode, 400, 'until must be after since')
  t.equal((await app.inject({ url: '/admin/jobs/job_000000000000000000000000', headers: adminAuth })).statusCode, 404)
})

t.test('resend to one endpoint: a message written before the endpoint existed is sent to it on request, and only to it', async t => {
  const early = await startReceiver(t)
  const late = await startReceiver(t)
  const setup = await startOutboundApp(t)
  const { app } = setup
  await createEndpoint(app, { url: early.url }, early)
  await sendCallback(app, callbackParams('resend-1', 'paid', 5_000))
  await early.until(r => r.delivered.length === 2)
  const endpoint = await createEndpoint(app, { url: late.url }, late)
  const { paid } = paidMessages(outboxRows(setup, 'resend-1'))
  t.equal((await adminGet(app, `/admin/messages/${paid.message_id}`)).deliveries.length, 1, 'the later endpoint was not given the earlier message')
  const res = await app.inject({ method: 'POST', url: `/admin/messages/${paid.message_id}/resend`, headers: adminAuth, payload: { endpointId: endpoint.id } })
  t.equal(res.statusCode, 202)
  t.same(res.json(), { messageId: paid.message_id, deliveries: 1 })
  await late.until(r => r.delivered.length === 1)
  t.equal(late.delivered[0]!.id, paid.message_id)
  t.same(late.refused, [], 'signed with the new endpoint\'s secret')
  const shown = await eventually(async () => {
    const message = await adminGet(app, `/admin/messages/${paid.message_id}`)
    return message.state === 'delivered' && message.deliveries.length === 2 ? message : undefined
  })
  t.match(shown.deliveries.find((d: { endpointId: string }) => d.endpointId === endpoint.id), { state: 'delivered', attempts: 1 })
  t.equal(early.requests.length, 2, 'the first endpoint was not sent it again')
  const unknown = await app.inject({ method: 'POST', url: `/admin/messages/${paid.message_id}/resend`, headers: adminAuth, payload: { endpointId: `ep_${'0'.repeat(32)}` } })
  t.equal(unknown.statusCode, 404)
})
