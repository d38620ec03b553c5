// Issue 12: the console's overview and event log pages must stay cheap on a big log. Writes a
// log of N events through paynotify's own EventLog (two callbacks per order, so N/2 orders),
// stamped one every `spacing` ms so that the last hour holds HOUR_EVENTS of them, then answers
// GET /console/ and a few GET /console/events pages through the real app (inject: server time
// only) and prints the median and worst of ROUNDS answers of each.
// Usage: node bench/console-overview.js <db path> (BENCH_EVENTS, BENCH_HOUR_EVENTS, BENCH_ROUNDS);
// an existing file at <db path> is reused as it is.
// Last run (2026-12-07, 2 shared cores under load, 1M events, 500k orders, 100k events in the last
// hour, medians of 10): overview 44 ms (its first look 234 ms: the hour's first 20k-event read);
// nearly all of a later look is orders by status over orders_status. Fragments under 1 ms; event
// log pages 1.2-1.8 ms (first, middle, by type, by time, type and time). Before the per-minute
// counts were kept between looks, every overview read the hour with json_extract: 586 ms.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { root } from './lib/machine.js'

const [dbPath] = process.argv.slice(2)
if (dbPath === undefined) throw new Error('usage: node bench/console-overview.js <db path>')
const events = Number(process.env.BENCH_EVENTS ?? 1_000_000)
const hourEvents = Number(process.env.BENCH_HOUR_EVENTS ?? 100_000)
const rounds = Number(process.env.BENCH_ROUNDS ?? 20)
const { openStore } = await import(join(root, 'dist', 'store.js'))
const { buildApp } = await import(join(root, 'dist', 'app.js'))
const { loadConfig } = await import(join(root, 'dist', 'config.js'))

const spacingMs = 3_600_000 / hourEvents
const end = Date.UTC(2026, 11, 1, 12, 0, 0)
const timeOf = i => new Date(end - (events - i) * spacingMs)
const body = 'order_id=OV&amount=1.00&status=1&notify_id=N&sign=00&subject=' + 's'.repeat(140)
const gateways = ['generic', 'alipay', 'stripe', 'wechatpay']

function event (i) {
  const orderId = `OV${String(Math.floor(i / 2)).padStart(8, '0')}`
  const gateway = gateways[Math.floor(i / 2) % gateways.length]
  return {
    streamId: orderId,
    type: i % 2 === 0 ? 'PaymentPending' : 'PaymentSucceeded',
    data: { orderId, amount: 100, currency: 'CNY', gateway, transactionId: `T${i >> 1}`, refundId: null, cumulative: false, gatewayStatus: '1', gatewayTime: null },
    metadata: { gateway, deliveryId: `ov-${i}`, receivedAt: timeOf(i).toISOString(), requestId: `ov-${i}`, raw: { body, encoding: 'utf8', contentType: 'application/x-www-form-urlencoded', headers: {} } }
  }
}

if (!existsSync(dbPath)) {
  let next = 0
  const store = await openStore(dbPath, { synchronous: 'NORMAL', clock: () => timeOf(next) })
  const started = performance.now()
  for (; next < events; next += 1000) {
    await store.eventLog.append(Array.from({ length: Math.min(1000, events - next) }, (_, k) => event(next + k)))
  }
  await store.close()
  process.stderr.write(`wrote ${events} events in ${Math.round((performance.now() - started) / 1000)} s\n`)
}

const store = await openStore(dbPath, { synchronous: 'NORMAL' })
const secrets = { genericSecret: 'bench-generic-secret-0123456789', adminToken: 'bench-admin-token-0123456789', merchantToken: 'bench-merchant-token-0123456789' }
const app = await buildApp({ config: loadConfig({ PAYNOTIFY_DB: dbPath, PAYNOTIFY_LOG_LEVEL: 'silent' }), secrets, store, now: () => new Date(end) })
const signIn = await app.inject({ method: 'POST', url: '/console/sign-in', payload: { token: secrets.adminToken } })
const cookie = signIn.cookies.find(c => c.name === 'paynotify_console').value
const counts = store.sqlite.prepare('SELECT (SELECT count(*) FROM events) AS events, (SELECT count(*) FROM orders) AS orders').get()

const pages = {
  overview: '/console/',
  'recent fragment': '/console/fragments/recent',
  'summary fragment': '/console/fragments/summary',
  'events, first page': '/console/events',
  'events, middle': `/console/events?after=${Math.floor(counts.events / 2)}`,
  'events, type PaymentSucceeded, late': `/console/events?type=PaymentSucceeded&after=${counts.events - 1000}`,
  'events, time range (an hour ago)': `/console/events?from=${new Date(end - 3_600_000).toISOString().slice(0, 19)}`,
  'events, type + time range': `/console/events?type=PaymentPending&from=${new Date(end - 1_800_000).toISOString().slice(0, 19)}`
}
const results = {}
for (const [name, url] of Object.entries(pages)) {
  const times = []
  for (let r = 0; r < rounds; r++) {
    const started = performance.now()
    const res = await app.inject({ url, cookies: { paynotify_console: cookie } })
    times.push(performance.now() - started)
    if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode}`)
  }
  times.sort((a, b) => a - b)
  results[name] = { medianMs: Number(times[Math.floor(times.length / 2)].toFixed(2)), maxMs: Number(times[times.length - 1].toFixed(2)) }
}
await app.close()
await store.close()
process.stdout.write(JSON.stringify({ ...counts, hourEvents, rounds, results }, null, 2) + '\n')
