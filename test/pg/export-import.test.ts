import t from 'tap'
import { createCheckpointSigner, generateSigningKey } from '../../src/event-log/checkpoint-signature.js'
import type { NewEvent } from '../../src/event-log/event-log.js'
import { exportLines, resolveExportRange } from '../../src/event-log/export.js'
import { importRows, planImport } from '../../src/event-log/import.js'
import { ChainChecker, parseExportLine, type ImportedRow } from '../../src/event-log/ndjson.js'
import { pgEventRows, pgExportLines, pgExportRange } from '../../src/event-log/pg-read.js'
import { minBodyStoredApart } from '../../src/event-log/raw-bodies.js'
import { verifyChain, verifyChainRows } from '../../src/event-log/verify-chain.js'
import { PgProjection } from '../../src/projection/pg-projection.js'
import { OrderProjector } from '../../src/projection/projector.js'
import { SqliteProjectionStore } from '../../src/projection/projection-store.js'
import { openStore } from '../../src/store.js'
import { paid, placed } from '../event-log/fixtures.js'
import { startPgCluster } from '../pg-cluster.js'
import { migratedDatabase } from './pg-log.js'

// Issue 14: a log written on PostgreSQL by several instances exports lines that import into SQLite
// byte for byte (same positions, hashes, bodies and signatures), and the chain check reads it on
// PostgreSQL as it does on SQLite.

const cluster = await startPgCluster(t)

function delivered (orderId: string, deliveryId: string, body: string, encoding: 'utf8' | 'base64' = 'utf8'): NewEvent {
  const event = paid(orderId, deliveryId)
  return { ...event, metadata: { ...event.metadata, raw: { body, encoding, contentType: 'application/x-www-form-urlencoded', headers: { 'content-type': 'application/x-www-form-urlencoded' } } } } as NewEvent
}

async function collect (lines: AsyncIterable<string> | Iterable<string>): Promise<string> {
  let text = ''
  for await (const line of lines) text += line
  return text
}

t.test('a log three instances wrote on PostgreSQL verifies, exports, and imports into SQLite byte for byte', async t => {
  const db = await migratedDatabase(t, cluster)
  const signingKey = generateSigningKey()
  const instances = await Promise.all([1, 2, 3].map(async () => {
    const projection = await PgProjection.open(db.pool({ max: 1 }))
    return await db.log({ signer: createCheckpointSigner(signingKey), projection })
  }))
  const large = (n: number): string => `order_id=L${n}&subject=${'y'.repeat(minBodyStoredApart)}&nul=\u0000&sign=${n}`
  const appends: NewEvent[][] = Array.from({ length: 150 }, (_, i) => {
    if (i % 10 === 0) return [placed(`O${i % 7}`)]
    if (i % 10 === 3) return [delivered(`O${i % 7}`, `big-${i % 4}`, large(i % 4))]
    if (i % 10 === 6) return [delivered(`O${i % 7}`, `bin-${i}`, Buffer.from([0, 1, 254, 255, i]).toString('base64').repeat(1500), 'base64')]
    return [paid(`O${i % 7}`, `d-${i % 40}`, 100 * (i % 3 + 1))]
  })
  await Promise.all(appends.map(async (events, i) => await instances[i % 3]!.append(events)))

  const verified = await verifyChainRows(pgEventRows(db.pool()))
  t.match(verified, { ok: true, lastPosition: (await pgExportRange(db.pool())).last })
  t.ok(verified.checked > 100, `${verified.checked} events checked`)

  const pool = db.pool()
  const exported = await collect(pgExportLines(pool, await pgExportRange(pool)))
  const sqlite = await openStore(':memory:')
  t.teardown(async () => { await sqlite.close() })
  const checker = new ChainChecker()
  const rows = exported.trimEnd().split('\n').map((line, i) => {
    const row = parseExportLine(line, i + 1)
    checker.add(row)
    return row
  })
  async function * each (): AsyncGenerator<ImportedRow> { yield * rows }
  const projector = new OrderProjector(new SqliteProjectionStore(sqlite.sqlite))
  // The service's key, as a database that shares it imports (the CLI's import reads it from the secrets): its signatures stay.
  await importRows(sqlite.sqlite, each(), { mode: planImport(sqlite.sqlite, checker.summary()), onAppend: events => { projector.apply(events) }, signer: createCheckpointSigner(signingKey) })
  const reexported = await collect(exportLines(sqlite.sqlite, resolveExportRange(sqlite.sqlite, {})))
  t.equal(reexported, exported, 'the SQLite export of the import is the PostgreSQL export, byte for byte')
  t.ok(exported.includes('"checkpoint":{"publicKey":"ed25519:'), 'signed checkpoints travel with the lines')
  t.match(verifyChain(sqlite.sqlite), { ok: true, checked: verified.checked })
  t.same(sqlite.sqlite.prepare('SELECT * FROM orders ORDER BY order_id').all(), await db.query('SELECT * FROM orders ORDER BY order_id'),
    'the orders projected on import equal those projected live on PostgreSQL')
})

t.test('the chain check on PostgreSQL finds a row edited behind the log\'s back', async t => {
  const db = await migratedDatabase(t, cluster)
  const log = await db.log()
  for (let i = 0; i < 5; i++) await log.append([paid(`T${i}`, `d-${i}`)])
  await db.query('ALTER TABLE events DISABLE TRIGGER events_immutable')
  await db.query("UPDATE events SET data = replace(data, '10000', '99999') WHERE position = 3")
  const report = await verifyChainRows(pgEventRows(db.pool()))
  t.match(report, { ok: false, checked: 2, firstBreak: { kind: 'hash', position: 3 } })
})
