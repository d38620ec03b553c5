import t from 'tap'
import { rowToEvent } from '../../src/event-log/read.js'
import { currentSchemaVersion, eventTypes, upcastEvent } from '../../src/orders/events.js'
import { loadCatalogue, readExpectations, readSample } from '../events/catalogue.js'

// How versions evolve (events/README.md): old events are never rewritten, they are upcast on
// read. Every type is at version 1 so far, so there is no real v0→v1 conversion to test; these
// tests pin the mechanism: v1 reads as itself, a version the code does not know is refused.
const catalogue = loadCatalogue()
const lines = Object.values(readExpectations().samples).flatMap(sample => readSample(sample.file))

t.test('every type has a schema at the current version, and only those', async t => {
  t.equal(currentSchemaVersion, 1)
  const expected = [...eventTypes.map(type => `${type}.v${currentSchemaVersion}.json`), 'EventMetadata.v1.json', 'ExportedEvent.v1.json'].sort()
  t.same(catalogue.files, expected)
})

t.test('v1 sample events upcast to themselves', async t => {
  t.ok(lines.length > 30)
  for (const line of lines) {
    t.same(upcastEvent(line.type as string, line.schemaVersion as number, line.data), { type: line.type, data: line.data })
  }
})

t.test('a version the code does not know is refused with a clear error, in code and in the schemas', async t => {
  const paid = lines.find(line => line.type === 'PaymentSucceeded')!
  for (const version of [0, 2, 99]) {
    t.throws(() => upcastEvent('PaymentSucceeded', version, paid.data), { message: `unknown schema version ${version} of PaymentSucceeded` })
    t.throws(() => rowToEvent({
      position: 1,
      stream_id: paid.streamId as string,
      stream_version: 1,
      type: 'PaymentSucceeded',
      schema_version: version,
      data: JSON.stringify(paid.data),
      metadata: JSON.stringify(paid.metadata),
      recorded_at: paid.recordedAt as string,
      hash: paid.hash as string
    }), { message: `unknown schema version ${version} of PaymentSucceeded` }, `a stored row at version ${version}`)
    t.match(catalogue.checkLine({ ...paid, schemaVersion: version }), /schemaVersion/, `no schema for version ${version}`)
  }
  t.throws(() => upcastEvent('PaymentExploded', 1, paid.data), { message: 'unknown event type PaymentExploded' })
  t.match(catalogue.checkLine({ ...paid, type: 'PaymentExploded' }), /type must be equal to one of the allowed values/)
})
