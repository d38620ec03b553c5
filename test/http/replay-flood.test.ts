import { join } from 'node:path'
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { maxStoredDeliveries } from '../../src/event-log/deliveries.js'
import { openStore, openThreadedStore, type ServiceStore } from '../../src/store.js'
import { adminAuth, formHeaders, signedForm, tempDir, testSecrets } from '../helpers.js'

// Issue 10 §1: one captured callback replayed without end must not fill the disk. Measured on
// the old code: 1,500 replays of one signed 65,520-byte body were all acked and added 105 MB.
// Here: the same, scaled to 300 replays of the largest body the generic route now takes
// (8 KiB: its own body limit), through the real route, with either writer.
const entry = new URL('../../dist/event-log/writer-worker.js', import.meta.url)
const replays = 300

for (const mode of ['inline', 'thread'] as const) {
  t.test(`${mode}: ${replays} replays of one signed 8 kB callback are all acked and cost one body and ${maxStoredDeliveries} small events`, async t => {
    const dbPath = join(tempDir(t), 'flood.db')
    const store: ServiceStore = mode === 'inline' ? await openStore(dbPath) : await openThreadedStore(dbPath, { entry })
    const app = await buildApp({ config: loadConfig({ PAYNOTIFY_DB: dbPath, PAYNOTIFY_LOG_LEVEL: 'silent' }), secrets: testSecrets, store })
    t.teardown(async () => {
      await app.close()
      await store.close()
    })
    const payload = signedForm({ order_id: 'FLOOD-1', amount: '10.00', status: '1', notify_id: 'captured-1', subject: 's'.repeat(8_000) })
    t.ok(payload.length > 8_000 && payload.length <= 8_192, `a ${payload.length}-byte body, within the generic route's body limit`)
    const size = (): number => (store.sqlite.pragma('page_count', { simple: true }) as number) * (store.sqlite.pragma('page_size', { simple: true }) as number)
    const before = size()

    const answers: string[] = []
    for (let i = 0; i < replays; i++) {
      const res = await app.inject({ method: 'POST', url: '/notify/generic', headers: formHeaders, payload })
      answers.push(`${res.statusCode} ${res.body}`)
    }
    t.same(answers, Array(replays).fill('200 success'), 'every replay is acked, as the gateway expects')
    const grown = size() - before
    t.ok(grown < 512 * 1024, `the database grew by ${Math.round(grown / 1024)} kB (each copy stored in full: ${Math.round(replays * payload.length / 1024)} kB)`)
    t.equal(store.sqlite.prepare('SELECT count(*) FROM events').pluck().get(), maxStoredDeliveries)
    t.equal(store.sqlite.prepare('SELECT count(*) FROM raw_bodies').pluck().get(), 1)

    const order = (await app.inject({ url: '/admin/orders/FLOOD-1', headers: adminAuth })).json() as Record<string, unknown>
    t.match(order, { status: 'paid', paidAmount: 1000, duplicateCount: maxStoredDeliveries - 1, version: maxStoredDeliveries })
    const timeline = (await app.inject({ url: '/admin/orders/FLOOD-1/events', headers: adminAuth })).json() as { events: Array<{ metadata: { raw: { body: string } } }>, unstoredRepeats: number }
    t.equal(timeline.events.length, maxStoredDeliveries)
    t.equal(timeline.unstoredRepeats, replays - maxStoredDeliveries, 'admins see how many repeats were acked but not stored')
    t.ok(timeline.events.every(event => event.metadata.raw.body === payload), 'every stored copy shows its raw body')
  })
}
