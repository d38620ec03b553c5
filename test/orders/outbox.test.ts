import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { NewEvent } from '../../src/event-log/event-log.js'
import type { EndpointChangedData, PaymentEventType } from '../../src/orders/events.js'
import { messageTypesOf, webhookIdPattern, type OrderSummary } from '../../src/projection/outbox.js'
import { openStore, type Store } from '../../src/store.js'
import { tempDir } from '../helpers.js'

const summary = (fields: Partial<OrderSummary> = {}): OrderSummary => ({ status: 'awaiting_payment', paidAmount: 0, refundedAmount: 0, currency: 'CNY', anomalies: [], needsReview: false, ...fields })

t.test('a change sends order.updated, the status it entered and order.needs_review for a new anomaly; no change sends nothing', async t => {
  t.same(messageTypesOf(null, summary()), ['order.updated'], 'the first change, into a status without a type of its own')
  t.same(messageTypesOf(null, summary({ status: 'paid', paidAmount: 8888 })), ['order.updated', 'order.paid'], 'the first change can enter paid')
  t.same(messageTypesOf(summary(), summary()), [], 'nothing changed')
  t.same(messageTypesOf(summary({ status: 'paid', paidAmount: 100 }), summary({ status: 'partially_refunded', paidAmount: 100, refundedAmount: 10 })), ['order.updated', 'order.partially_refunded'])
  t.same(messageTypesOf(summary({ status: 'partially_refunded', paidAmount: 100, refundedAmount: 10 }), summary({ status: 'partially_refunded', paidAmount: 100, refundedAmount: 20 })), ['order.updated'], 'another partial refund: amounts changed, status did not')
  t.same(messageTypesOf(summary({ status: 'paid', paidAmount: 100 }), summary({ status: 'paid', paidAmount: 100, anomalies: ['amount_mismatch'], needsReview: true })), ['order.updated', 'order.needs_review'])
  t.same(messageTypesOf(summary({ anomalies: ['amount_mismatch'], needsReview: true }), summary({ anomalies: [], needsReview: false })), ['order.updated'], 'an anomaly gone is a change, not a new review')
  t.same(messageTypesOf(summary({ anomalies: ['amount_mismatch'], needsReview: true }), summary({ anomalies: ['amount_mismatch', 'duplicate_payment'], needsReview: true })), ['order.updated', 'order.needs_review'], 'a second anomaly is a new one')
  t.same(messageTypesOf(summary({ currency: 'CNY' }), summary({ currency: 'USD' })), ['order.updated'])
})

async function outboxStore (t: Test, outbox = true): Promise<Store> {
  const store = await openStore(join(tempDir(t), 'outbox.db'), { outbox: outbox ? { firstDelayMs: 0 } : undefined })
  t.teardown(async () => { await store.close() })
  return store
}

let deliverySeq = 0
function payment (orderId: string, type: PaymentEventType, amount: number, deliveryId = `d${++deliverySeq}`): NewEvent {
  return {
    streamId: orderId,
    type,
    data: { orderId, amount, currency: 'CNY', gateway: 'generic', transactionId: `T-${orderId}`, refundId: type === 'PaymentRefunded' ? `R-${deliveryId}` : null, cumulative: false, gatewayStatus: type, gatewayTime: null },
    metadata: { gateway: 'generic', deliveryId, receivedAt: '2026-12-07T12:00:00.000Z', requestId: deliveryId }
  }
}

function endpointEvent (endpointId: string, change: EndpointChangedData['change'], events: string[] | null = null, enabled = true): NewEvent {
  return {
    streamId: '~endpoints',
    type: 'EndpointChanged',
    data: { endpointId, change, endpoint: change === 'deleted' ? null : { url: 'https://93.184.216.34/hook', events, description: null, enabled }, reason: null, actor: { kind: 'admin', requestId: `r-${endpointId}-${change}`, address: '127.0.0.1' } },
    metadata: { gateway: 'admin', deliveryId: `endpoint:${endpointId}:${change}:${++deliverySeq}`, receivedAt: '2026-12-07T12:00:00.000Z', requestId: `r${deliverySeq}` }
  }
}

interface OutboxRow { seq: number, message_id: string, type: string, order_id: string, position: number, version: number, payload: string }
const outbox = (store: Store): OutboxRow[] => store.sqlite.prepare('SELECT seq, message_id, type, order_id, position, version, payload FROM outbox ORDER BY seq').all() as OutboxRow[]
const deliveries = (store: Store): Array<{ message_seq: number, endpoint_id: string, state: string }> =>
  store.sqlite.prepare('SELECT message_seq, endpoint_id, state FROM outbound_deliveries ORDER BY message_seq, endpoint_id').all() as Array<{ message_seq: number, endpoint_id: string, state: string }>

t.test('the projector writes each change\'s messages in the append\'s own transaction, and nothing for a repeat', async t => {
  const store = await outboxStore(t)
  const [paid] = await store.eventLog.append([payment('A-1', 'PaymentSucceeded', 8888, 'n-1')])
  await store.eventLog.append([payment('A-1', 'PaymentSucceeded', 8888, 'n-1')])
  await store.eventLog.append([payment('A-1', 'PaymentRefunded', 888)])
  const rows = outbox(store)
  t.same(rows.map(row => [row.type, row.order_id, row.version]), [['order.updated', 'A-1', 1], ['order.paid', 'A-1', 1], ['order.updated', 'A-1', 2], ['order.partially_refunded', 'A-1', 2]], 'the repeat sent nothing; the messages of one change share a version')
  t.equal(rows[0]!.position, paid!.position)
  t.equal(rows[0]!.message_id, `msg_${paid!.position.toString(36).padStart(9, '0')}00${paid!.hash.slice(0, 12)}`, 'position, index and the event\'s hash')
  t.equal(rows[1]!.message_id, `msg_${paid!.position.toString(36).padStart(9, '0')}01${paid!.hash.slice(0, 12)}`, 'the second message of the same event')
  t.ok(rows.every(row => webhookIdPattern.test(row.message_id)))
  t.equal(new Set(rows.map(row => row.message_id)).size, rows.length, 'one webhook-id per message')
  t.same(JSON.parse(rows[2]!.payload), {
    type: 'order.updated',
    timestamp: rows[2] === undefined ? '' : JSON.parse(rows[2].payload).timestamp,
    data: { order_id: 'A-1', status: 'partially_refunded', previous_status: 'paid', paid_amount: 8888, refunded_amount: 888, currency: 'CNY', anomalies: [], needs_review: false, position: rows[2]!.position, version: 2 }
  })
  t.same(JSON.parse(rows[0]!.payload).data.previous_status, null, 'the first change has no previous status')
})

t.test('two events of one order in one transaction are two changes, each with its own position', async t => {
  const store = await outboxStore(t)
  await store.eventLog.append([payment('B-1', 'PaymentPending', 100), payment('B-1', 'PaymentSucceeded', 100)])
  t.same(outbox(store).map(row => [row.type, JSON.parse(row.payload).data.previous_status, row.position]), [['order.updated', null, 1], ['order.updated', 'pending', 2], ['order.paid', 'pending', 2]])
})

t.test('a change another event makes (the first registered order flags unknown orders) gets the next version of that order', async t => {
  const store = await outboxStore(t)
  await store.eventLog.append([payment('E-1', 'PaymentSucceeded', 100)])
  await store.eventLog.append([payment('E-1', 'PaymentRefunded', 10)])
  const [placed] = await store.eventLog.append([{ streamId: 'E-2', type: 'OrderPlaced', data: { orderId: 'E-2', amount: 100, currency: 'CNY' }, metadata: { gateway: 'merchant', deliveryId: 'order:E-2', receivedAt: '2026-12-07T12:00:00.000Z', requestId: 'r-e2' } }])
  const e1 = outbox(store).filter(row => row.order_id === 'E-1' && row.type === 'order.updated')
  t.same(e1.map(row => row.version), [1, 2, 3], 'versions grow though E-1\'s stream did not change')
  t.same(JSON.parse(e1[2]!.payload).data.anomalies, ['unknown_order'])
  t.equal(e1[2]!.position, placed!.position, 'caused by E-2\'s registration')
  t.ok(outbox(store).some(row => row.order_id === 'E-1' && row.type === 'order.needs_review' && row.version === 3))
})

t.test('a store without the outbox (the CLI\'s) writes none', async t => {
  const store = await outboxStore(t, false)
  await store.eventLog.append([payment('C-1', 'PaymentSucceeded', 100)])
  t.same(outbox(store), [])
})

t.test('messages fan out to the enabled endpoints created before them, by their filters; a deleted endpoint\'s pending ones are dead', async t => {
  const store = await outboxStore(t)
  await store.eventLog.append([payment('D-0', 'PaymentSucceeded', 100)])
  await store.eventLog.append([endpointEvent('ep_all', 'created'), endpointEvent('ep_paid', 'created', ['order.paid']), endpointEvent('ep_off', 'created', null, false)])
  await store.eventLog.append([payment('D-1', 'PaymentSucceeded', 100)])
  const rows = outbox(store)
  const seqOf = (order: string, type: string): number => rows.find(row => row.order_id === order && row.type === type)!.seq
  t.same(deliveries(store), [
    { message_seq: seqOf('D-1', 'order.updated'), endpoint_id: 'ep_all', state: 'pending' },
    { message_seq: seqOf('D-1', 'order.paid'), endpoint_id: 'ep_all', state: 'pending' },
    { message_seq: seqOf('D-1', 'order.paid'), endpoint_id: 'ep_paid', state: 'pending' }
  ], 'D-0\'s messages predate the endpoints; ep_off is disabled; ep_paid takes order.paid only')
  await store.eventLog.append([endpointEvent('ep_all', 'deleted')])
  t.same(deliveries(store).filter(d => d.endpoint_id === 'ep_all').map(d => d.state), ['dead', 'dead'])
  t.same(store.sqlite.prepare('SELECT id FROM endpoints ORDER BY id').pluck().all(), ['ep_off', 'ep_paid'])
})
