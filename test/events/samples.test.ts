import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { chainHash, genesisHash } from '../../src/event-log/hash.js'
import { rowToEvent } from '../../src/event-log/read.js'
import { isOrderStream, type RecordedEvent } from '../../src/orders/events.js'
import { formatMinorUnits } from '../../src/orders/money.js'
import { foldOrder, orderView, reportsJoining, type OrderView } from '../../src/orders/order-fold.js'
import { eventsDir, lineToRow, loadCatalogue, readExpectations, readSample, samplesDir } from './catalogue.js'

const expectations = readExpectations()
const catalogue = loadCatalogue()

/** Folds a log (any subset, any order) into every order's view, with the unattributed reports that join it, as a fresh projection would. */
function views (events: readonly RecordedEvent[]): Map<string, OrderView> {
  const context = { ordersRegistered: events.some(event => event.type === 'OrderPlaced') }
  const streams = new Map<string, RecordedEvent[]>()
  for (const event of events) if (isOrderStream(event.streamId)) streams.set(event.streamId, [...(streams.get(event.streamId) ?? []), event])
  return new Map([...streams].map(([id, stream]) => {
    const state = foldOrder(id, stream)
    return [id, orderView(state, context, reportsJoining(Object.values(state.facts), events))]
  }))
}

function pick (view: OrderView | undefined, keys: string[]): Record<string, unknown> | undefined {
  return view === undefined ? undefined : Object.fromEntries(keys.map(key => [key, view[key as keyof OrderView]]))
}

t.test('the samples required by the catalogue exist, each with its expectations', async t => {
  const files = readdirSync(samplesDir).filter(f => f.endsWith('.ndjson')).sort()
  t.same(files, Object.values(expectations.samples).map(s => s.file).sort(), 'every sample has expectations and every expectation a sample')
  for (const name of ['happy-path', 'gateway-retries', 'out-of-order', 'partial-then-full-refund', 'amount-tampering', 'double-payment', 'unknown-order', 'refund-checks', 'stripe-unattributed']) {
    t.ok(expectations.samples[name], name)
  }
})

for (const [name, sample] of Object.entries(expectations.samples)) {
  t.test(`${name}: valid lines, intact chain, and it folds to the promised states`, async t => {
    const lines = readSample(sample.file)
    t.equal(lines.length, sample.events)
    let prevHash = genesisHash
    lines.forEach((line, i) => {
      t.equal(catalogue.checkLine(line), null, `line ${i + 1} matches ExportedEvent.v1.json`)
      t.equal(line.position, i + 1, `line ${i + 1} is position ${i + 1}`)
      t.equal(line.prevHash, prevHash, `line ${i + 1} links to the line before`)
      t.equal(chainHash(prevHash, lineToRow(line)), line.hash, `line ${i + 1} hash matches its content`)
      prevHash = line.hash as string
    })

    const events = lines.map(line => rowToEvent(lineToRow(line)))
    const final = views(events)
    t.same([...final.keys()].sort(), Object.keys(sample.orders).sort(), 'exactly the promised orders')
    for (const [orderId, promised] of Object.entries(sample.orders)) {
      t.same(pick(final.get(orderId), Object.keys(promised)), promised, `${orderId} at the end`)
      t.equal(final.get(orderId)!.needsReview, (promised.anomalies as string[]).length > 0, `${orderId} needs review only with anomalies`)
    }
    for (const checkpoint of sample.checkpoints ?? []) {
      const partial = views(events.filter(event => event.position <= checkpoint.afterPosition))
      for (const [orderId, promised] of Object.entries(checkpoint.orders)) {
        t.same(pick(partial.get(orderId), Object.keys(promised)), promised, `${orderId} after position ${checkpoint.afterPosition}`)
      }
    }
    // Order does not matter (DESIGN rule 5): the same events backwards give the same states.
    const reversed = views([...events].reverse())
    for (const [orderId, promised] of Object.entries(sample.orders)) {
      t.same(pick(reversed.get(orderId), Object.keys(promised)), promised, `${orderId} folded in reverse`)
    }
  })
}

t.test('the README table says what expected.json says', async t => {
  const readme = readFileSync(join(eventsDir, 'README.md'), 'utf8')
  const money = (minor: unknown, currency: unknown): string =>
    minor === null ? '—' : `${formatMinorUnits(minor as number, currency as string)} ${currency as string}`
  let rows = 0
  for (const [name, sample] of Object.entries(expectations.samples)) {
    for (const [orderId, o] of Object.entries(sample.orders)) {
      const row = `| [${name}](samples/${name}.ndjson) | ${orderId} | ${o.status as string} | ${money(o.expectedAmount, o.expectedCurrency)} | ` +
        `${money(o.paidAmount, o.currency)} | ${money(o.refundedAmount, o.currency)} | ${o.duplicateCount as number} | ${(o.anomalies as string[]).join(', ') || '—'} |`
      t.ok(readme.includes(`\n${row}\n`), `README row for ${orderId}`)
      rows++
    }
  }
  t.equal(readme.split('\n').filter(line => line.startsWith('| [')).length, rows, 'and no other sample rows')
})
