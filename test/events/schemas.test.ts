import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { eventTypes } from '../../src/orders/events.js'
import { loadCatalogue, readSample, schemasDir } from './catalogue.js'

// The schemas are a contract only if they refuse what the code would never write.
const catalogue = loadCatalogue()
const find = (file: string, type: string): Record<string, unknown> => readSample(file).find(line => line.type === type)!
const paid = find('happy-path.ndjson', 'PaymentSucceeded')
const refunded = find('partial-then-full-refund.ndjson', 'PaymentRefunded')
const placed = find('happy-path.ndjson', 'OrderPlaced')
type Line = Record<string, unknown>
// A Stripe refund that named no order, as the log keeps it.
const { orderId: _orderId, ...refundData } = refunded.data as Record<string, unknown>
const report: Line = {
  ...refunded,
  streamId: '~unattributed:stripe',
  type: 'UnattributedReportReceived',
  data: { reportedType: 'PaymentRefunded', ...refundData, gateway: 'stripe', gatewayStatus: 'refund.updated', reason: 'no metadata.order_id' }
}
// An admin's review note on an order, as the log keeps it.
const reviewNote: Line = {
  ...placed,
  type: 'ReviewNoteRecorded',
  data: { orderId: placed.streamId, note: 'refunded by hand', resolves: ['amount_mismatch', 'duplicate_payment'], actor: { requestId: '5b0c3f0e-3c43-4a8e-9a53-2f7d7c1e0a11', address: '127.0.0.1' } },
  metadata: { gateway: 'admin', deliveryId: 'review:5b0c3f0e-3c43-4a8e-9a53-2f7d7c1e0a11', receivedAt: '2026-03-02T10:00:00.000Z', requestId: '5b0c3f0e-3c43-4a8e-9a53-2f7d7c1e0a11' }
}
const withData = (line: Line, change: Record<string, unknown>): Line => ({ ...line, data: { ...(line.data as object), ...change } })
const withMetadata = (line: Line, change: Record<string, unknown>): Line => ({ ...line, metadata: { ...(line.metadata as object), ...change } })

t.test('the export-line schema names exactly the event types of the code', async t => {
  const schema = JSON.parse(readFileSync(join(schemasDir, 'ExportedEvent.v1.json'), 'utf8')) as { properties: { type: { enum: string[] } }, allOf: unknown[] }
  t.same(schema.properties.type.enum, [...eventTypes])
  t.equal(schema.allOf.length, eventTypes.length, 'one data branch per type')
})

t.test('valid lines of every shape pass', async t => {
  for (const line of [paid, refunded, placed]) t.equal(catalogue.checkLine(line), null, line.type as string)
  t.equal(catalogue.checkLine(withData(refunded, { cumulative: true, refundId: null })), null, 'a cumulative refund without a refund id (Alipay, Stripe charge.refunded)')
  t.equal(catalogue.checkLine({ ...refunded, type: 'RefundFailed' }), null, 'RefundFailed has the refund shape')
  t.equal(catalogue.checkLine(withMetadata(paid, { replayOf: 3 })), null, 'a replayed delivery')
  t.equal(catalogue.checkLine({ ...paid, prevHash: undefined }), null, 'a line of the admin stream, which has no prevHash')
  t.equal(catalogue.checkLine(report), null, 'an unattributed report in its gateway\'s stream')
  t.equal(catalogue.checkLine(withData(report, { reportedType: 'PaymentSucceeded', refundId: null, cumulative: false, transactionId: null })), null, 'an unattributed payment without a transaction id')
  t.equal(catalogue.checkLine(reviewNote), null, 'a review note in its order\'s stream')
  t.equal(catalogue.checkLine(withData(reviewNote, { note: '客户已联系, refund 💳 <b>by hand</b>', actor: { requestId: 'r', address: '::ffff:10.0.0.1' } })), null, 'a note in any script, with markup as text')
})

t.test('what the log never holds is refused, naming the field', async t => {
  const cases: Array<[string, Line, RegExp]> = [
    ['an unknown data field', withData(paid, { tip: 1 }), /must NOT have additional properties/],
    ['a fractional amount', withData(paid, { amount: 88.5 }), /data\/data\/amount must be integer/],
    ['an amount as a string', withData(paid, { amount: '88.88' }), /data\/data\/amount must be integer/],
    ['a negative amount', withData(paid, { amount: -1 }), /data\/data\/amount must be >= 0/],
    ['a lower-case currency', withData(paid, { currency: 'cny' }), /data\/data\/currency must match pattern/],
    ['a refund id on a payment', withData(paid, { refundId: 'R-1' }), /data\/data\/refundId must be null/],
    ['a running total on a payment', withData(paid, { cumulative: true }), /data\/data\/cumulative must be equal to constant/],
    ['a missing transaction id field', withData(paid, { transactionId: undefined }), /must have required property 'transactionId'/],
    ['payment fields on OrderPlaced', withData(placed, { gateway: 'generic' }), /must NOT have additional properties/],
    ['an order id with a space', { ...paid, streamId: 'A 1' }, /streamId must match pattern/],
    ['metadata without a delivery id', withMetadata(paid, { deliveryId: undefined }), /must have required property 'deliveryId'/],
    ['a raw body in an unknown encoding', withMetadata(paid, { raw: { ...(paid.metadata as { raw: object }).raw, encoding: 'latin1' } }), /encoding must be equal to one of the allowed values/],
    ['a local time', { ...paid, recordedAt: '2026-03-02 09:00:00' }, /recordedAt must match pattern/],
    ['an upper-case hash', { ...paid, hash: (paid.hash as string).toUpperCase() }, /hash must match pattern/],
    ['a truncated prevHash', { ...paid, prevHash: (paid.prevHash as string).slice(1) }, /prevHash must match pattern/],
    ['position 0', { ...paid, position: 0 }, /position must be >= 1/],
    ['a payment in the unattributed stream', { ...paid, streamId: '~unattributed:stripe' }, /streamId must match pattern/],
    ['an unattributed report in an order\'s stream', { ...report, streamId: 'PR-4002' }, /streamId must match pattern/],
    ['an unattributed report with an order id', withData(report, { orderId: 'PR-4002' }), /must NOT have additional properties/],
    ['an unattributed report without its reason', withData(report, { reason: undefined }), /must have required property 'reason'/],
    ['an unattributed payment with a refund id', withData(report, { reportedType: 'PaymentSucceeded' }), /data\/data\/refundId must be null/],
    ['an unattributed report of an unknown type', withData(report, { reportedType: 'OrderPlaced' }), /reportedType must be equal to one of the allowed values/],
    ['a review note in the endpoints\' stream', { ...reviewNote, streamId: '~endpoints' }, /streamId must match pattern/],
    ['an empty review note', withData(reviewNote, { note: '' }), /note must NOT have fewer than 1 characters/],
    ['a review note over 500 characters', withData(reviewNote, { note: 'x'.repeat(501) }), /note must NOT have more than 500 characters/],
    ['an untrimmed review note', withData(reviewNote, { note: ' refunded' }), /note must match pattern/],
    ['a review note with a newline', withData(reviewNote, { note: 'refunded\nby hand' }), /note must match pattern/],
    ['a review note with a bidi override', withData(reviewNote, { note: 'refunded \u202eby hand' }), /note must match pattern/],
    ['a review note that resolves nothing', withData(reviewNote, { resolves: [] }), /resolves must NOT have fewer than 1 items/],
    ['a review note resolving an unknown anomaly', withData(reviewNote, { resolves: ['looks_odd'] }), /resolves\/0 must be equal to one of the allowed values/],
    ['a review note resolving one anomaly twice', withData(reviewNote, { resolves: ['amount_mismatch', 'amount_mismatch'] }), /must NOT have duplicate items/],
    ['a review note with an amount', withData(reviewNote, { amount: 0 }), /must NOT have additional properties/],
    ['a review note without its actor\'s address', withData(reviewNote, { actor: { requestId: 'r' } }), /must have required property 'address'/]
  ]
  for (const [what, line, message] of cases) {
    const value = JSON.parse(JSON.stringify(line)) as Line
    t.match(catalogue.checkLine(value), message, what)
  }
})
