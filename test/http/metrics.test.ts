import { randomBytes, randomUUID } from 'node:crypto'
import SQLite from 'better-sqlite3'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { adminAuth, buildTestApp, formHeaders, merchantAuth, signedForm, testEachWriter } from '../helpers.js'

// GET /metrics (issue 12): who may read it, and that each figure follows what the service did.

/** The samples of a Prometheus text exposition, by series (`name{labels}` as written). */
function samples (text: string): Map<string, number> {
  const series = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const space = line.lastIndexOf(' ')
    series.set(line.slice(0, space), Number(line.slice(space + 1)))
  }
  return series
}

async function scrape (app: FastifyInstance): Promise<{ text: string, series: Map<string, number> }> {
  const res = await app.inject({ url: '/metrics', headers: adminAuth })
  if (res.statusCode !== 200) throw new Error(`GET /metrics answered ${res.statusCode}: ${res.body}`)
  return { text: res.body, series: samples(res.body) }
}

const callbacks = (outcome: string, gateway = 'generic'): string => `paynotify_callbacks_total{gateway="${gateway}",outcome="${outcome}"}`

async function post (app: FastifyInstance, payload: string, headers: Record<string, string> = formHeaders): Promise<number> {
  return (await app.inject({ method: 'POST', url: '/notify/generic', headers, payload })).statusCode
}

t.test('GET /metrics takes the admin token or PAYNOTIFY_METRICS_TOKEN, never the merchant token or none', async t => {
  const metricsToken = randomBytes(24).toString('base64url')
  const { app } = await buildTestApp(t, { env: { PAYNOTIFY_METRICS_TOKEN: metricsToken } })
  const admin = await app.inject({ url: '/metrics', headers: adminAuth })
  t.equal(admin.statusCode, 200, 'admin token: 200')
  t.match(admin.headers['content-type'], /^text\/plain; version=0\.0\.4/, 'Prometheus text format')
  t.match(admin.body, /^# HELP paynotify_callbacks_total /m)
  t.match(admin.body, /^process_cpu_seconds_total \d/m, 'the default process metrics')
  t.match(admin.body, /^nodejs_eventloop_lag_seconds \d/m, 'and the runtime ones')
  t.equal((await app.inject({ url: '/metrics', headers: { authorization: `Bearer ${metricsToken}` } })).statusCode, 200, 'metrics token: 200')
  for (const [name, headers] of [['merchant token', merchantAuth], ['no token', {}], ['a wrong token', { authorization: `Bearer ${metricsToken}x` }]] as const) {
    const res = await app.inject({ url: '/metrics', headers })
    t.equal(res.statusCode, 401, `${name}: 401`)
    t.equal(res.headers['www-authenticate'], 'Bearer realm="metrics"')
    t.notMatch(res.body, /paynotify_/, `${name}: no figure in the answer`)
  }
  t.equal((await app.inject({ url: '/admin/orders', headers: { authorization: `Bearer ${metricsToken}` } })).statusCode, 401, 'the metrics token opens nothing else')

  const without = await buildTestApp(t)
  t.equal((await without.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${metricsToken}` } })).statusCode, 401, 'without PAYNOTIFY_METRICS_TOKEN only the admin token opens it')
})

t.test('/openapi.json documents GET /metrics and the tokens it takes', async t => {
  const { app } = await buildTestApp(t)
  const doc = (await app.inject({ url: '/openapi.json' })).json() as { paths: Record<string, Record<string, { security?: unknown[] }>>, components: { securitySchemes: Record<string, unknown> } }
  t.same(doc.paths['/metrics']?.get?.security, [{ adminToken: [] }, { metricsToken: [] }])
  t.match(doc.components.securitySchemes.metricsToken, { type: 'http', scheme: 'bearer' })
})

t.test('PAYNOTIFY_METRICS=0: no /metrics route, callbacks are served as before', async t => {
  const { app } = await buildTestApp(t, { env: { PAYNOTIFY_METRICS: '0' } })
  t.equal(await post(app, signedForm({ order_id: 'OFF-1', amount: '1.00', status: '1' })), 200)
  t.equal((await app.inject({ url: '/metrics', headers: adminAuth })).statusCode, 404)
})

testEachWriter(t, 'paynotify_callbacks_total counts each callback by gateway and outcome', async (t, writer) => {
  const { app, dbPath } = await buildTestApp(t, { writer, store: { busyTimeoutMs: 10 } })
  const zero = (await scrape(app)).series
  for (const outcome of ['accepted', 'duplicate', 'refused_signature', 'refused_malformed', 'store_unavailable', 'internal_error']) {
    t.equal(zero.get(callbacks(outcome)), 0, `${outcome} starts at 0`)
  }

  const paid = signedForm({ order_id: 'M-1', amount: '10.00', status: '1', notify_id: 'n-1' })
  t.equal(await post(app, paid), 200)
  t.equal(await post(app, paid), 200, 'a retry is acked like the original')
  // Ten copies of one new delivery at once: one is the delivery, nine repeat it (in one batch or several).
  const burst = signedForm({ order_id: 'M-2', amount: '10.00', status: '1', notify_id: 'n-2' })
  t.same(await Promise.all(Array.from({ length: 10 }, async () => await post(app, burst))), Array(10).fill(200))
  t.equal(await post(app, signedForm({ order_id: 'M-3', amount: '10.00', status: '1' }, 'not-the-secret-0123456789')), 401)
  t.equal(await post(app, signedForm({ order_id: 'M-4', amount: 'ten', status: '1' })), 400)
  t.equal(await post(app, 'order_id=M-5', { 'content-type': 'text/plain' }), 415)
  // An unknown gateway's name is the URL's: it is not a label.
  t.equal((await app.inject({ method: 'POST', url: '/notify/nope', headers: formHeaders, payload: paid })).statusCode, 404)

  // Another connection holds the write lock past the store's busy timeout: the commit fails, 503.
  const other = new SQLite(dbPath)
  t.teardown(() => { if (other.open) other.close() })
  other.exec('BEGIN IMMEDIATE')
  t.equal(await post(app, signedForm({ order_id: 'M-6', amount: '10.00', status: '1' })), 503)
  other.exec('ROLLBACK')

  const { text, series } = await scrape(app)
  t.equal(series.get(callbacks('accepted')), 2, 'accepted: the first delivery of M-1 and of M-2')
  t.equal(series.get(callbacks('duplicate')), 10, 'duplicate: the retry of M-1 and nine copies of M-2')
  t.equal(series.get(callbacks('refused_signature')), 1)
  t.equal(series.get(callbacks('refused_malformed')), 2, 'a malformed amount and a wrong content type')
  t.equal(series.get(callbacks('store_unavailable')), 1)
  t.equal(series.get(callbacks('internal_error')), 0)
  t.notMatch(text, /nope/, 'no series names the unknown gateway')
  t.same([...series.keys()].filter(key => key.startsWith('paynotify_callbacks_total')).length, 6, 'one gateway configured: six series')
})

t.test('request durations are labelled with the route template; an unknown URL adds no label', async t => {
  const { app } = await buildTestApp(t)
  const order = `ORD-${randomUUID()}`
  t.equal((await app.inject({ url: `/admin/orders/${order}`, headers: adminAuth })).statusCode, 404)
  t.equal((await app.inject({ url: `/admin/orders/${order}`, headers: adminAuth })).statusCode, 404)
  t.equal((await app.inject({ url: '/healthz' })).statusCode, 200)
  const first = await scrape(app)
  t.equal(first.series.get('paynotify_http_request_duration_seconds_count{route="/admin/orders/:id",method="GET",status_class="4xx"}'), 2)
  t.equal(first.series.get('paynotify_http_request_duration_seconds_count{route="/healthz",method="GET",status_class="2xx"}'), 1)
  t.notOk(first.text.includes(order), 'the order id in the URL is not a label')

  const unknown = Array.from({ length: 5 }, () => `/no-such-${randomUUID()}`)
  for (const url of unknown) t.equal((await app.inject({ url, headers: adminAuth })).statusCode, 404)
  t.equal((await app.inject({ method: 'POST', url: `/notify/${randomUUID()}`, headers: formHeaders, payload: 'a=1' })).statusCode, 404)
  const second = await scrape(app)
  t.equal(second.series.get('paynotify_http_request_duration_seconds_count{route="unmatched",method="GET",status_class="4xx"}'), 5, 'unknown URLs: one series, route="unmatched"')
  t.equal(second.series.get('paynotify_http_request_duration_seconds_count{route="/notify/:gateway",method="POST",status_class="4xx"}'), 1, 'an unknown gateway: the catch-all route\'s template')
  for (const url of unknown) t.notOk(second.text.includes(url.slice(1)), 'no URL in the scrape')
  const routes = new Set([...second.text.matchAll(/route="([^"]*)"/g)].map(match => match[1]))
  t.same([...routes].sort(), ['/admin/orders/:id', '/healthz', '/metrics', '/notify/:gateway', 'unmatched'], 'only templates, and unmatched')

  await app.inject({ url: `/no-such-${randomUUID()}` })
  const third = await scrape(app)
  const histogramSeries = (series: Map<string, number>): number => [...series.keys()].filter(key => key.startsWith('paynotify_http_request_duration_seconds')).length
  t.equal(histogramSeries(third.series), histogramSeries(second.series), 'another unknown URL: no new series')
})

testEachWriter(t, 'batch sizes, commit times and the log position follow the writer', async (t, writer) => {
  const { app, store } = await buildTestApp(t, { writer })
  const before = await scrape(app)
  t.equal(before.series.get('paynotify_append_batch_events_count'), 0)
  t.equal(before.series.get('paynotify_event_log_position'), 0)

  t.equal((await app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload: { order_id: 'B-0', amount: '10.00' } })).statusCode, 201)
  const bodies = Array.from({ length: 20 }, (_, i) => signedForm({ order_id: `B-${i % 5}`, amount: '10.00', status: '1', notify_id: `b-${i}` }))
  t.same(await Promise.all(bodies.map(async body => await post(app, body))), Array(20).fill(200))
  t.equal(await post(app, bodies[0]!), 200, 'a repeat is in a batch too')

  const { series } = await scrape(app)
  const batches = store.eventLog.batches
  t.equal(series.get('paynotify_append_batch_events_count'), batches, `one observation per transaction (${batches})`)
  t.equal(series.get('paynotify_append_batch_events_sum'), 22, 'every event appended: the order, 20 callbacks and the repeat')
  t.ok(batches < 22, `the concurrent callbacks shared transactions (${batches} for 22 appends)`)
  t.equal(series.get('paynotify_commit_duration_seconds_count'), batches, 'one commit time per transaction')
  t.ok(series.get('paynotify_commit_duration_seconds_sum')! > 0, 'commits take time')
  t.equal(series.get('paynotify_commit_duration_seconds_bucket{le="+Inf"}'), batches)
  const lastPosition = store.sqlite.prepare('SELECT max(position) FROM events').pluck().get() as number
  t.equal(lastPosition, 22)
  t.equal(series.get('paynotify_event_log_position'), lastPosition, 'the position gauge is the log\'s tail')
  t.equal(store.eventLog.tail.position, lastPosition)
})

t.test('paynotify_orders_needing_review counts the orders flagged for review', async t => {
  const { app, store } = await buildTestApp(t)
  t.equal((await scrape(app)).series.get('paynotify_orders_needing_review'), 0)
  for (const id of ['R-1', 'R-2', 'R-3']) {
    t.equal((await app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload: { order_id: id, amount: '10.00' } })).statusCode, 201)
  }
  // Two paid less than they owe (amount_mismatch), one paid in full.
  t.equal(await post(app, signedForm({ order_id: 'R-1', amount: '9.00', status: '1' })), 200)
  t.equal(await post(app, signedForm({ order_id: 'R-2', amount: '1.00', status: '1' })), 200)
  t.equal(await post(app, signedForm({ order_id: 'R-3', amount: '10.00', status: '1' })), 200)
  const flagged = store.sqlite.prepare('SELECT count(*) FROM orders WHERE needs_review = 1').pluck().get()
  t.equal(flagged, 2)
  t.equal((await scrape(app)).series.get('paynotify_orders_needing_review'), 2)
})
