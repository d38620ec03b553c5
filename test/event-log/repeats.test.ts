import { createHash } from 'node:crypto'
import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import { Kysely, Migrator, SqliteDialect } from 'kysely'
import t from 'tap'
import { checkChainSinceCheckpoint, describeChainBreak } from '../../src/event-log/chain-checkpoint.js'
import { maxStoredDeliveries } from '../../src/event-log/deliveries.js'
import { minBodyStoredApart } from '../../src/event-log/raw-bodies.js'
import type { NewEvent } from '../../src/event-log/event-log.js'
import { exportLines, resolveExportRange } from '../../src/event-log/export.js'
import { chainHash, genesisHash } from '../../src/event-log/hash.js'
import { importRows, planImport } from '../../src/event-log/import.js'
import { ChainChecker, parseExportLine, type ImportedRow } from '../../src/event-log/ndjson.js'
import { iterateRows, rowToEvent } from '../../src/event-log/read.js'
import { verifyChain } from '../../src/event-log/verify-chain.js'
import * as eventLog from '../../src/db/migrations/2026-11-27-01-event-log.js'
import * as orders from '../../src/db/migrations/2026-11-27-02-orders.js'
import * as chainCheckpoints from '../../src/db/migrations/2026-11-27-03-chain-checkpoints.js'
import * as eventsNoReplace from '../../src/db/migrations/2026-11-27-04-events-no-replace.js'
import { openStore, openThreadedStore, type ServiceStore, type StoreOptions } from '../../src/store.js'
import { tempDir } from '../helpers.js'
import { paid } from './fixtures.js'

interface Teardown { teardown: (fn: () => unknown) => void }

// Issue 10 §1: the storage a delivery's repeats cost is bounded. Each raw body is stored once
// by its hash, and a delivery id keeps at most maxStoredDeliveries events; a repeat beyond them
// is acked (once what it repeats is committed) and counted, not stored. Both writers.
const entry = new URL('../../dist/event-log/writer-worker.js', import.meta.url)
const modes = {
  inline: async (path: string, options: StoreOptions) => await openStore(path, options),
  thread: async (path: string, options: StoreOptions) => await openThreadedStore(path, { ...options, entry })
} as const

async function open (t: Teardown, mode: keyof typeof modes): Promise<ServiceStore & { path: string }> {
  const path = join(tempDir(t), 'log.db')
  const store = await modes[mode](path, {})
  t.teardown(async () => { await store.close() })
  return { ...store, path }
}

/** A payment carrying its raw request, as the notify route appends it. */
function delivered (orderId: string, deliveryId: string, body: string, encoding: 'utf8' | 'base64' = 'utf8'): NewEvent {
  const event = paid(orderId, deliveryId)
  return { ...event, metadata: { ...event.metadata, raw: { body, encoding, contentType: 'application/x-www-form-urlencoded', headers: {} } } } as NewEvent
}

/** Checks export lines as import does and imports them. */
async function importLines (sqlite: SQLite.Database, lines: string[]): Promise<{ mode: string }> {
  const checker = new ChainChecker()
  const rows = lines.map((line, i) => {
    const row = parseExportLine(line, i + 1)
    checker.add(row)
    return row
  })
  async function * each (): AsyncGenerator<ImportedRow> { yield * rows }
  return await importRows(sqlite, each(), { mode: planImport(sqlite, checker.summary()) })
}

const large = `order_id=A&amount=100.00&status=1&subject=${'x'.repeat(minBodyStoredApart)}&sign=00`

const scalar = (db: SQLite.Database, query: string, ...params: unknown[]): unknown => db.prepare(query).pluck().get(...params)
const sha256 = (bytes: string | Buffer): string => createHash('sha256').update(bytes).digest('hex')

for (const mode of Object.keys(modes) as Array<keyof typeof modes>) {
  t.test(`${mode}: a delivery id keeps ${maxStoredDeliveries} events; later repeats are acked, counted and not stored`, async t => {
    const s = await open(t, mode)
    const body = `order_id=A&amount=100.00&status=1&notify_id=d1&subject=${'x'.repeat(60_000)}&sign=00`
    // One turn of the event loop: every append joins one transaction, the first copy included.
    const results = await Promise.all([
      ...Array.from({ length: maxStoredDeliveries + 8 }, async () => await s.eventLog.append([delivered('A', 'd1', body)])),
      s.eventLog.append([delivered('A', 'd2', body)])
    ])
    t.same(results.map(events => events.length), [...Array(maxStoredDeliveries).fill(1), ...Array(8).fill(0), 1],
      'every append resolved; the repeats beyond the cap with no event')
    t.same(results.flat().map(event => event.position), Array.from({ length: maxStoredDeliveries + 1 }, (_, i) => i + 1), 'stored events take gap-free positions')
    t.equal(scalar(s.sqlite, "SELECT count(*) FROM events WHERE json_extract(metadata, '$.deliveryId') = 'd1'"), maxStoredDeliveries)
    t.same(s.sqlite.prepare('SELECT stream_id, gateway, delivery_id, stored, unstored FROM deliveries ORDER BY delivery_id').all(), [
      { stream_id: 'A', gateway: 'generic', delivery_id: 'd1', stored: maxStoredDeliveries, unstored: 8 },
      { stream_id: 'A', gateway: 'generic', delivery_id: 'd2', stored: 1, unstored: 0 }
    ])
    t.same(s.sqlite.prepare('SELECT sha256, encoding, length(body) AS size FROM raw_bodies').all(), [{ sha256: sha256(body), encoding: 'utf8', size: body.length }],
      'the body of every copy is stored once')
    const bytesPerEvent = (scalar(s.sqlite, 'SELECT sum(length(metadata)) FROM events') as number) / (maxStoredDeliveries + 1)
    t.ok(bytesPerEvent < 400, `an event's metadata is ${Math.round(bytesPerEvent)} bytes, not the 60 kB body`)

    // Later, alone in its transaction, another repeat is still acked and counted.
    t.same(await s.eventLog.append([delivered('A', 'd1', body)]), [])
    t.equal(scalar(s.sqlite, "SELECT unstored FROM deliveries WHERE delivery_id = 'd1'"), 9)
    t.same(s.eventLog.tail.position, maxStoredDeliveries + 1)
    t.match(verifyChain(s.sqlite), { ok: true, checked: maxStoredDeliveries + 1 })
  })

  t.test(`${mode}: a repeat is never acked when what it repeats did not commit`, async t => {
    const s = await open(t, mode)
    s.sqlite.exec(`CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.stream_id = 'POISON'
      BEGIN SELECT RAISE(ABORT, 'poisoned'); END`)
    const outcomes = await Promise.allSettled([
      ...Array.from({ length: maxStoredDeliveries + 3 }, async () => await s.eventLog.append([delivered('A', 'd1', large)])),
      s.eventLog.append([paid('POISON', 'p')])
    ])
    t.ok(outcomes.every(outcome => outcome.status === 'rejected'), 'the copies and the repeats beyond the cap all failed with their transaction')
    t.equal(scalar(s.sqlite, 'SELECT count(*) FROM deliveries'), 0, 'nothing was counted')
    t.equal(scalar(s.sqlite, 'SELECT count(*) FROM raw_bodies'), 0, 'no body was kept')
    s.sqlite.exec('DROP TRIGGER poison')
    const [again] = await s.eventLog.append([delivered('A', 'd1', large)])
    t.equal(again?.position, 1, 'the gateway\'s retry is stored as the first copy')
  })
}

t.test(`bodies of ${minBodyStoredApart} bytes or more are stored once by the hash of their bytes, and verify checks each against it`, async t => {
  const path = join(tempDir(t), 'log.db')
  const store = await openStore(path)
  const gbk = Buffer.alloc(minBodyStoredApart, Buffer.from([0x6f, 0x3d, 0xc4, 0xe3, 0xba, 0xc3])).toString('base64')
  const small = 'a'.repeat(minBodyStoredApart - 1)
  await store.eventLog.append([delivered('A', 'a', large), delivered('B', 'b', large), delivered('C', 'c', gbk, 'base64'), delivered('D', 'd', small)])
  t.same(store.sqlite.prepare('SELECT sha256, encoding, body FROM raw_bodies ORDER BY encoding').all(), [
    { sha256: sha256(Buffer.from(gbk, 'base64')), encoding: 'base64', body: gbk },
    { sha256: sha256(large), encoding: 'utf8', body: large }
  ], 'keyed by the sha256 of the bytes, base64 decoded; one row for two events')
  const metadataAt = (position: number): { raw: Record<string, unknown> } => JSON.parse(scalar(store.sqlite, 'SELECT metadata FROM events WHERE position = ?', position) as string)
  t.same(metadataAt(3).raw, { encoding: 'base64', contentType: 'application/x-www-form-urlencoded', headers: {}, bodySha256: sha256(Buffer.from(gbk, 'base64')), bodySize: minBodyStoredApart })
  t.same(metadataAt(4).raw, { body: small, encoding: 'utf8', contentType: 'application/x-www-form-urlencoded', headers: {} }, 'a smaller body stays inline')
  t.same([...iterateRows(store.sqlite)].map(row => rowToEvent(row).metadata.raw?.body), [large, large, gbk, small], 'read with its body back in place')
  t.match(verifyChain(store.sqlite), { ok: true, checked: 4 })
  t.throws(() => store.sqlite.exec("UPDATE raw_bodies SET body = 'other'"), /immutable/)
  t.throws(() => store.sqlite.exec('DELETE FROM raw_bodies'), /immutable/)
  store.sqlite.prepare('INSERT OR REPLACE INTO raw_bodies (sha256, encoding, body) VALUES (?, ?, ?)').run(sha256(large), 'utf8', 'other')
  t.equal(scalar(store.sqlite, 'SELECT body FROM raw_bodies WHERE sha256 = ?', sha256(large)), large, 'a stored body is never replaced')
  await store.close()

  // Whoever writes the file behind the triggers' back: an edited or deleted body is found at the first position using it.
  const tampered = (name: string, sql: string): SQLite.Database => {
    const copyPath = join(tempDir(t), `${name}.db`)
    const source = new SQLite(path, { readonly: true })
    source.prepare('VACUUM INTO ?').run(copyPath)
    source.close()
    const copy = new SQLite(copyPath)
    t.teardown(() => { copy.close() })
    copy.exec('DROP TRIGGER raw_bodies_no_update; DROP TRIGGER raw_bodies_no_delete')
    copy.exec(sql)
    return copy
  }
  const tamperings: Array<[string, string]> = [
    ['edited', `UPDATE raw_bodies SET body = upper(body) WHERE sha256 = '${sha256(large)}'`],
    ['deleted', `DELETE FROM raw_bodies WHERE sha256 = '${sha256(large)}'`]
  ]
  for (const [name, sql] of tamperings) {
    const copy = tampered(name, sql)
    t.match(verifyChain(copy), { ok: false, checked: 0, firstBreak: { kind: 'body', position: 1, sha256: sha256(large) } }, `${name} body`)
    const start = checkChainSinceCheckpoint(copy, new Date())
    t.equal(start.ok, false, `${name} body: the start-time check refuses it`)
    t.match(describeChainBreak(start), /raw body of position 1/)
  }
})

t.test('export, import and export again: positions, hashes, stored rows and bodies identical; an edited body is refused', async t => {
  const source = await openStore(join(tempDir(t), 'source.db'))
  t.teardown(async () => { await source.close() })
  const binary = Buffer.alloc(minBodyStoredApart, Buffer.from([0xff, 0x00, 0x80])).toString('base64')
  await source.eventLog.append([delivered('A', 'a', large), delivered('A', 'a', large), delivered('B', 'b', binary, 'base64'), delivered('B', 'b2', 'small=1'), paid('C', 'c')])
  const lines = [...exportLines(source.sqlite, resolveExportRange(source.sqlite, {}))]
  t.match(JSON.parse(lines[0]!), { metadata: { raw: { body: large, encoding: 'utf8', bodySha256: sha256(large), bodySize: large.length } } },
    'a line carries its raw body, for replay --to')

  const target = await openStore(join(tempDir(t), 'target.db'))
  t.teardown(async () => { await target.close() })
  const imported = await importLines(target.sqlite, lines)
  t.equal(imported.mode, 'verbatim')
  const table = (db: SQLite.Database, name: string, order: string): unknown[] => db.prepare(`SELECT * FROM ${name} ORDER BY ${order}`).all()
  t.same(table(target.sqlite, 'events', 'position'), table(source.sqlite, 'events', 'position'), 'the same stored rows: positions, hashes, metadata')
  t.same(table(target.sqlite, 'raw_bodies', 'sha256'), table(source.sqlite, 'raw_bodies', 'sha256'), 'the same bodies')
  t.same(table(target.sqlite, 'deliveries', 'delivery_id'), table(source.sqlite, 'deliveries', 'delivery_id'), 'the same delivery counts')
  t.same([...exportLines(target.sqlite, resolveExportRange(target.sqlite, {}))], lines, 'exported again byte for byte')
  t.match(verifyChain(target.sqlite), { ok: true, checked: 5 })

  const edited = lines[0]!.replace('amount=100.00&', 'amount=900.00&')
  t.throws(() => parseExportLine(edited, 1), /line 1: metadata.raw.body does not match metadata.raw.bodySha256/, 'an edited body is refused, though the chain hash still matches')
  const withoutBody = JSON.parse(lines[0]!) as { metadata: { raw: Record<string, unknown> } }
  delete withoutBody.metadata.raw.body
  t.throws(() => parseExportLine(JSON.stringify(withoutBody), 1), /line 1: (position 1 \(PaymentSucceeded\): metadata.raw lacks "body"|metadata.raw.body must be the raw body)/, 'a line without the body it names is refused (by the catalogue\'s schema first)')
})

t.test('events stored before bodies were stored by hash still read, count, export, import and verify', async t => {
  // The database as the previous release left it: every migration before this one, bodies inline.
  const path = join(tempDir(t), 'old.db')
  const sqlite = new SQLite(path)
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: sqlite }) })
  const previous = { '2026-11-27-01-event-log': eventLog, '2026-11-27-02-orders': orders, '2026-11-27-03-chain-checkpoints': chainCheckpoints, '2026-11-27-04-events-no-replace': eventsNoReplace }
  t.equal((await new Migrator({ db, provider: { getMigrations: async () => previous } }).migrateToLatest()).error, undefined)
  let prev = genesisHash
  const insert = sqlite.prepare('INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
  const oldRows = Array.from({ length: maxStoredDeliveries }, (_, i) => {
    const event = delivered('OLD', 'old-1', `old body ${'é'.repeat(3)}`)
    const row = { position: i + 1, stream_id: 'OLD', stream_version: i + 1, type: event.type, schema_version: 1, data: JSON.stringify(event.data), metadata: JSON.stringify(event.metadata), recorded_at: '2026-11-01T00:00:00.000Z' }
    prev = chainHash(prev, row)
    insert.run(row.position, row.stream_id, row.stream_version, row.type, row.schema_version, row.data, row.metadata, row.recorded_at, prev)
    return row
  })
  await db.destroy()
  // verify and export open a database read-only, before any newer release has migrated it.
  const unmigrated = new SQLite(path, { readonly: true })
  t.match(verifyChain(unmigrated), { ok: true, checked: maxStoredDeliveries })
  t.equal([...exportLines(unmigrated, resolveExportRange(unmigrated, {}))].length, maxStoredDeliveries)
  unmigrated.close()

  const store = await openStore(path)
  t.teardown(async () => { await store.close() })
  t.same(store.sqlite.prepare('SELECT stream_id, gateway, delivery_id, stored, unstored FROM deliveries').all(),
    [{ stream_id: 'OLD', gateway: 'generic', delivery_id: 'old-1', stored: maxStoredDeliveries, unstored: 0 }], 'the migration counted the events already stored')
  t.same(await store.eventLog.append([delivered('OLD', 'old-1', 'old body')]), [], 'so a further repeat of an old delivery is counted, not stored')
  const [fresh] = await store.eventLog.append([delivered('OLD', 'new-1', large)])
  t.equal(fresh?.position, maxStoredDeliveries + 1)
  t.match(verifyChain(store.sqlite), { ok: true, checked: maxStoredDeliveries + 1 })
  const events = [...iterateRows(store.sqlite)].map(rowToEvent)
  t.same(events[0]!.metadata.raw, { body: `old body ${'é'.repeat(3)}`, encoding: 'utf8', contentType: 'application/x-www-form-urlencoded', headers: {} }, 'an old event reads as it always did')
  t.match(events.at(-1)!.metadata.raw, { body: large, bodySha256: sha256(large) }, 'a new one, its body stored apart, reads the same way')
  const lines = [...exportLines(store.sqlite, resolveExportRange(store.sqlite, {}))]
  t.ok(lines[0]!.includes(`"metadata":${oldRows[0]!.metadata},`), 'an old line is exported as stored')
  const target = await openStore(join(tempDir(t), 'copy.db'))
  t.teardown(async () => { await target.close() })
  t.equal((await importLines(target.sqlite, lines)).mode, 'verbatim')
  t.same(target.sqlite.prepare('SELECT * FROM events ORDER BY position').all(), store.sqlite.prepare('SELECT * FROM events ORDER BY position').all(), 'old and new rows import byte for byte')
  t.same([...exportLines(target.sqlite, resolveExportRange(target.sqlite, {}))], lines)
})
