// Writes a realistic event log of N events through paynotify's own EventLog
// (so the hash chain and the live projection are exactly what the service
// would have written): every order registered by the merchant, then
// pending/paid/refund/close/fail callbacks, 10% of deliveries resent byte for
// byte, and arrival shuffled within a window so refunds can come before
// their payment and pending after paid.
// Usage: node bench/generate-log.js <db path> [events] (run by bench/rebuild.js).
import { createHmac } from 'node:crypto'
import { join } from 'node:path'
import { seededRandom, benchSecret } from './lib/bodies.js'
import { root } from './lib/machine.js'

const [dbPath, eventsArg] = process.argv.slice(2)
const target = Number(eventsArg ?? 1_000_000)
const { openStore } = await import(join(root, 'dist', 'store.js'))

const random = seededRandom(20261127)
const minor = value => `${Math.floor(value / 100)}.${String(value % 100).padStart(2, '0')}`

function signed (params) {
  const signing = Object.keys(params).filter(k => params[k] !== '').sort().map(k => `${k}=${params[k]}`).join('&')
  return new URLSearchParams({ ...params, sign: createHmac('sha256', benchSecret).update(signing).digest('hex') }).toString()
}

let requestCounter = 0
function callback (orderId, type, status, amount, extra = {}) {
  const notifyId = `${orderId}-${status}-${extra.refund_no ?? extra.trade_no ?? ''}`
  const timestamp = String(1_790_000_000 + requestCounter)
  const params = { order_id: orderId, amount: minor(amount), currency: 'CNY', status, notify_id: notifyId, timestamp, ...extra }
  const body = signed(params)
  return {
    streamId: orderId,
    type,
    data: {
      orderId,
      amount,
      currency: 'CNY',
      gateway: 'generic',
      transactionId: extra.trade_no ?? null,
      refundId: type === 'PaymentRefunded' ? extra.refund_no ?? null : null,
      cumulative: false,
      gatewayStatus: status,
      gatewayTime: timestamp
    },
    metadata: {
      gateway: 'generic',
      deliveryId: notifyId,
      receivedAt: new Date(Date.UTC(2026, 10, 1) + requestCounter * 10).toISOString(),
      requestId: `gen-${++requestCounter}`,
      raw: { body, encoding: 'utf8', contentType: 'application/x-www-form-urlencoded', headers: {} }
    }
  }
}

/** The deliveries of one order, in the order the gateway would have meant them. */
function orderEvents (k) {
  const orderId = `ORD${String(k).padStart(8, '0')}`
  const amount = 100 + Math.floor(random() * 99_900)
  const tradeNo = `T${k}`
  const events = [{
    streamId: orderId,
    type: 'OrderPlaced',
    data: { orderId, amount, currency: 'CNY' },
    metadata: { gateway: 'merchant', deliveryId: `order:${orderId}:${amount}:CNY`, receivedAt: new Date(Date.UTC(2026, 10, 1) + requestCounter * 10).toISOString(), requestId: `gen-${++requestCounter}` }
  }]
  const roll = random()
  if (random() < 0.5) events.push(callback(orderId, 'PaymentPending', '0', amount, { trade_no: tradeNo }))
  if (roll < 0.05) {
    events.push(callback(orderId, 'PaymentClosed', '4', amount, { trade_no: tradeNo }))
  } else if (roll < 0.1) {
    events.push(callback(orderId, 'PaymentFailed', '2', amount, { trade_no: tradeNo }))
  } else {
    // One in a hundred payments is reported with a different amount (tampering or a bug): an anomaly to flag.
    events.push(callback(orderId, 'PaymentSucceeded', '1', roll > 0.99 ? amount + 1 : amount, { trade_no: tradeNo }))
    if (roll > 0.8) {
      const refunded = roll > 0.9 ? amount : 1 + Math.floor(random() * (amount - 1))
      events.push(callback(orderId, 'PaymentRefunded', '3', refunded, { trade_no: tradeNo, refund_no: `R${k}` }))
    }
  }
  return events
}

const store = await openStore(dbPath, { synchronous: 'NORMAL' })
const started = performance.now()
const window = []
const windowSize = 256
let written = 0
let repeats = 0
let pending = []
const flush = async () => {
  await Promise.all(pending.map(event => store.eventLog.append([event])))
  pending = []
}
for (let k = 0; written < target; k++) {
  for (const event of orderEvents(k)) window.push(event)
  // Arrival order: a random event of the window goes out next, so an order's events arrive shuffled.
  while (window.length > windowSize && written < target) {
    const i = Math.floor(random() * window.length)
    const event = window[i]
    window[i] = window[window.length - 1]
    window.pop()
    pending.push(event)
    written++
    if (pending.length >= 1000) await flush()
    // 10% of callbacks are retried byte for byte: same delivery, a new request.
    if (event.metadata.raw !== undefined && random() < 0.1 / 0.9 && written < target) {
      repeats++
      window.push({ ...event, metadata: { ...event.metadata, requestId: `gen-${++requestCounter}` } })
    }
  }
}
await flush()
const counts = store.sqlite.prepare('SELECT type, count(*) AS n FROM events GROUP BY type ORDER BY type').all()
const orders = store.sqlite.prepare('SELECT count(*) AS n FROM orders').get().n
await store.close()
process.stdout.write(JSON.stringify({ events: written, repeats, orders, counts, seconds: (performance.now() - started) / 1000 }) + '\n')
