// Writes a log of N events through paynotify's own EventLog whose first K events carry a
// callback padded to 64 KiB (as a log holding the replays of issue 10 does), the rest a usual
// 200-byte one: every event a delivery of its own, twenty events per order. Used by
// bench/stream-backpressure.js: a reader that reads ahead of its client holds these first.
// Usage: node bench/generate-large-log.js <db path> [events] [large events]
import { join } from 'node:path'
import { root } from './lib/machine.js'

const [dbPath, eventsArg, largeArg] = process.argv.slice(2)
const target = Number(eventsArg ?? 1_000_000)
const large = Number(largeArg ?? 2_000)
const { openStore } = await import(join(root, 'dist', 'store.js'))

const head = 'order_id=LG&amount=1.00&status=0&notify_id=N&sign=00'
const largeBody = `${head}&subject=${'s'.repeat(65_536 - head.length - 9)}`
const smallBody = `${head}&subject=${'s'.repeat(200 - head.length - 9)}`

function event (i) {
  const orderId = `LG${String(Math.floor(i / 20)).padStart(8, '0')}`
  return {
    streamId: orderId,
    type: 'PaymentPending',
    data: { orderId, amount: 100, currency: 'CNY', gateway: 'generic', transactionId: `T${i}`, refundId: null, cumulative: false, gatewayStatus: '0', gatewayTime: null },
    metadata: {
      gateway: 'generic',
      deliveryId: `lg-${i}`,
      receivedAt: new Date(Date.UTC(2026, 10, 1) + i * 10).toISOString(),
      requestId: `lg-${i}`,
      raw: { body: i < large ? largeBody : smallBody, encoding: 'utf8', contentType: 'application/x-www-form-urlencoded', headers: {} }
    }
  }
}

const store = await openStore(dbPath, { synchronous: 'NORMAL' })
const started = performance.now()
for (let i = 0; i < target; i += 1000) {
  await store.eventLog.append(Array.from({ length: Math.min(1000, target - i) }, (_, k) => event(i + k)))
}
const orders = store.sqlite.prepare('SELECT count(*) AS n FROM orders').get().n
await store.close()
process.stdout.write(JSON.stringify({ events: target, large, largeBytes: largeBody.length, orders, seconds: (performance.now() - started) / 1000 }) + '\n')
