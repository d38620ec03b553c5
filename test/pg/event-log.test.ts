import t from 'tap'
import { createCheckpointSigner, generateSigningKey } from '../../src/event-log/checkpoint-signature.js'
import { maxStoredDeliveries } from '../../src/event-log/deliveries.js'
import type { NewEvent } from '../../src/event-log/event-log.js'
import { chainHash, genesisHash } from '../../src/event-log/hash.js'
import { minBodyStoredApart } from '../../src/event-log/raw-bodies.js'
import { openStore } from '../../src/store.js'
import { paid, placed } from '../event-log/fixtures.js'
import { startPgCluster } from '../pg-cluster.js'
import { migratedDatabase, type PgTestDatabase } from './pg-log.js'

// Issue 14: the event log on PostgreSQL writes what the SQLite log writes, and keeps its promises
// across instances (each instance a PgEventLog on its own pool, one database).

const cluster = await startPgCluster(t)

function delivered (orderId: string, deliveryId: string, body: string, encoding: 'utf8' | 'base64' = 'utf8'): NewEvent {
  const event = paid(orderId, deliveryId)
  return { ...event, metadata: { ...event.metadata, raw: { body, encoding, contentType: 'application/x-www-form-urlencoded', headers: { 'content-type': 'application/x-www-form-urlencoded' } } } } as NewEvent
}

/** Recomputes the chain over the whole log: dense positions from 1, every hash from its predecessor. */
async function chainOf (db: PgTestDatabase): Promise<{ positions: number[], intact: boolean }> {
  const rows = await db.query<{ position: number, stream_id: string, stream_version: number, type: string, schema_version: number, data: string, metadata: string, recorded_at: string, hash: string }>('SELECT * FROM events ORDER BY position')
  let hash = genesisHash
  let intact = true
  rows.forEach((row, i) => {
    hash = chainHash(hash, row)
    if (row.position !== i + 1 || row.hash !== hash) intact = false
  })
  const [head] = await db.query<{ position: number, hash: string }>('SELECT position, hash FROM log_head')
  return { positions: rows.map(row => row.position), intact: intact && head!.position === rows.length && head!.hash === hash }
}

t.test('the same appends write the same rows on SQLite and on PostgreSQL: events, hashes, deliveries, raw bodies, signatures', async t => {
  const clock = (): Date => new Date('2026-12-08T10:00:00.000Z')
  const signingKey = generateSigningKey()
  const sqlite = await openStore(':memory:', { clock, signingKey })
  t.teardown(async () => { await sqlite.close() })
  const db = await migratedDatabase(t, cluster)
  const pgLog = await db.log({ clock, signer: createCheckpointSigner(signingKey) })
  const large = `order_id=A&amount=100.00&subject=${'x'.repeat(minBodyStoredApart)}&note=${'\u0000'}€&sign=00`
  const appends: NewEvent[][] = [
    [placed('A')],
    [delivered('A', 'd1', large)],
    ...Array.from({ length: maxStoredDeliveries + 3 }, () => [delivered('A', 'd1', large)]),
    [delivered('B', 'd2', Buffer.from([0, 255, 1, 2]).toString('base64').repeat(2000), 'base64'), paid('B', 'd3')],
    [paid('C', 'd4'), paid('C', 'd4'), placed('C')]
  ]
  for (const events of appends) {
    const [onSqlite, onPg] = [await sqlite.eventLog.appendWithRepeats(events), await pgLog.appendWithRepeats(events)]
    t.same(onPg, onSqlite, 'the append answers the same')
  }
  const columns = 'position, stream_id, stream_version, type, schema_version, data, metadata, recorded_at, hash'
  t.same(await db.query(`SELECT ${columns} FROM events ORDER BY position`), sqlite.sqlite.prepare(`SELECT ${columns} FROM events ORDER BY position`).all(), 'events, byte for byte')
  t.same(await db.query('SELECT * FROM deliveries ORDER BY stream_id, gateway, delivery_id'),
    sqlite.sqlite.prepare('SELECT * FROM deliveries ORDER BY stream_id, gateway, delivery_id').all(), 'delivery counts')
  const bodies = sqlite.sqlite.prepare('SELECT sha256, encoding, body FROM raw_bodies ORDER BY sha256').all() as Array<{ sha256: string, encoding: string, body: string }>
  t.equal(bodies.length, 2)
  t.same(await db.query('SELECT sha256, encoding, body FROM raw_bodies ORDER BY sha256'),
    bodies.map(row => ({ ...row, body: Buffer.from(row.body, 'utf8') })), 'raw bodies as their bytes, a NUL included')
  t.same(await db.query('SELECT * FROM signed_checkpoints ORDER BY block'), sqlite.sqlite.prepare('SELECT * FROM signed_checkpoints ORDER BY block').all(), 'signed checkpoints')
  t.same(pgLog.tail, sqlite.eventLog.tail)
  t.ok((await chainOf(db)).intact)
})

t.test('three instances: 300 identical deliveries give 300 acks, one fact stored first and 299 repeats; 300 distinct orders take 1..300', async t => {
  const db = await migratedDatabase(t, cluster)
  const instances = [await db.log(), await db.log(), await db.log()]
  const results = await Promise.all(Array.from({ length: 300 }, async (_, i) => await instances[i % 3]!.appendWithRepeats([paid('same', 'd-same')])))
  t.equal(results.length, 300, 'every append acked')
  t.equal(results.filter(result => result.repeats === 0).length, 1, 'exactly one is the first delivery')
  t.equal(results.reduce((sum, result) => sum + result.repeats, 0), 299, '299 repeats')
  t.equal(results.reduce((sum, result) => sum + result.recorded.length, 0), maxStoredDeliveries, 'the first and 31 repeats stored')
  t.same(await db.query('SELECT stored, unstored FROM deliveries'), [{ stored: maxStoredDeliveries, unstored: 300 - maxStoredDeliveries }])
  t.ok(instances.every(log => log.batches > 0), 'every instance committed batches of its own')

  const distinct = await Promise.all(Array.from({ length: 300 }, async (_, i) => await instances[i % 3]!.append([paid(`order-${i}`, `d-${i}`)])))
  const positions = distinct.map(events => events[0]!.position).sort((a, b) => a - b)
  t.same(positions, Array.from({ length: 300 }, (_, i) => maxStoredDeliveries + i + 1), 'positions dense after the repeats')
  const chain = await chainOf(db)
  t.ok(chain.intact, 'one hash chain across the instances')
  t.equal(chain.positions.length, maxStoredDeliveries + 300)
})
