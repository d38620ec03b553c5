import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import t, { type Test } from 'tap'
import { checkChainSinceCheckpoint } from '../../src/event-log/chain-checkpoint.js'
import { createCheckpointSigner, generateSigningKey, verifyCheckpointSignature } from '../../src/event-log/checkpoint-signature.js'
import { exportLines, resolveExportRange } from '../../src/event-log/export.js'
import { chainHash, genesisHash } from '../../src/event-log/hash.js'
import { ChainChecker, parseExportLine } from '../../src/event-log/ndjson.js'
import { importRows, planImport } from '../../src/event-log/import.js'
import type { EventRow } from '../../src/event-log/read.js'
import { checkpointBlockSize, checkpointRecorder, verifySignedCheckpoints, type SignedCheckpoint } from '../../src/event-log/signed-checkpoints.js'
import { openStore, openThreadedStore, type ServiceStore } from '../../src/store.js'
import { tempDir } from '../helpers.js'
import { paid } from './fixtures.js'

// Issue 10 §4: the chain alone proves nothing to whoever can write the database. The writer signs
// its tail with a key kept outside it, in the transaction of every commit, in both writer modes.

const now = new Date('2026-12-07T00:00:00Z')

async function appendInBatches (store: ServiceStore, total: number, batch: number, prefix = 'o'): Promise<void> {
  for (let from = 0; from < total; from += batch) {
    await store.eventLog.append(Array.from({ length: Math.min(batch, total - from) }, (_, i) => paid(`${prefix}${(from + i) % 37}`, `${prefix}-d${from + i}`, 100 + from + i)))
  }
}

function checkpoints (db: SQLite.Database): SignedCheckpoint[] {
  return db.prepare('SELECT * FROM signed_checkpoints ORDER BY position').all() as SignedCheckpoint[]
}

function tail (db: SQLite.Database): { position: number, hash: string } {
  return db.prepare('SELECT position, hash FROM events ORDER BY position DESC LIMIT 1').get() as { position: number, hash: string }
}

for (const mode of ['inline', 'thread'] as const) {
  t.test(`${mode}: every commit signs its tail; one row per block of ${checkpointBlockSize} positions is kept`, async t => {
    const dbPath = join(tempDir(t), 'signed.db')
    const signingKey = generateSigningKey()
    const signer = createCheckpointSigner(signingKey)
    const store = mode === 'inline' ? await openStore(dbPath, { signingKey }) : await openThreadedStore(dbPath, { signingKey })
    await appendInBatches(store, 1, 1)
    t.match(checkpoints(store.sqlite), [{ block: 0, position: 1, public_key: signer.publicKey }], 'the first commit is signed')
    await appendInBatches(store, 2999, 100)
    await store.close()

    const db = new SQLite(dbPath, { readonly: true })
    t.teardown(() => { db.close() })
    // Batches end at 1, 101, 201 … 3000: the last tail of each block stays.
    t.same(checkpoints(db).map(row => [row.block, row.position]), [[0, 1001], [1, 2001], [2, 3000]])
    for (const row of checkpoints(db)) {
      t.ok(verifyCheckpointSignature(signer.publicKey, row.position, row.hash, row.signature), `position ${row.position} verifies`)
      t.equal(row.hash, db.prepare('SELECT hash FROM events WHERE position = ?').pluck().get(row.position), 'over the stored hash')
    }
    t.match(verifySignedCheckpoints(db, tail(db), signer.publicKey), { valid: 3, coveredThrough: 3000, keys: [signer.publicKey] })
    t.equal(verifySignedCheckpoints(db, tail(db), signer.publicKey).unsigned, undefined)
  })
}

/** A signed log of 40 events with a start-time checkpoint at its end, and a fresh copy of it for each case. */
async function signedLog (t: Test): Promise<{ signer: ReturnType<typeof createCheckpointSigner>, copy: (change: (db: SQLite.Database) => void) => SQLite.Database }> {
  const dir = tempDir(t)
  const dbPath = join(dir, 'base.db')
  const signingKey = generateSigningKey()
  const signer = createCheckpointSigner(signingKey)
  const store = await openStore(dbPath, { signingKey })
  await appendInBatches(store, 40, 8)
  t.match(checkChainSinceCheckpoint(store.sqlite, now, { signer, firstUse: false }), { ok: true, report: { checked: 40 } }, 'the untouched log passes')
  await store.close()
  let copies = 0
  return {
    signer,
    copy: change => {
      const path = join(dir, `copy-${++copies}.db`)
      const source = new SQLite(dbPath, { readonly: true })
      source.prepare('VACUUM INTO ?').run(path)
      source.close()
      const db = new SQLite(path)
      t.teardown(() => { db.close() })
      db.exec('DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete; DROP TRIGGER events_no_replace')
      change(db)
      return db
    }
  }
}

/** Edits one event and recomputes every hash after it, the chain checkpoint included. */
function rewrite (db: SQLite.Database, position: number): void {
  let prev = position === 1 ? genesisHash : (db.prepare('SELECT hash FROM events WHERE position = ?').pluck().get(position - 1) as string)
  for (const row of db.prepare('SELECT * FROM events WHERE position >= ? ORDER BY position').all(position) as EventRow[]) {
    const data = row.position === position ? row.data.replace(/"amount":\d+/, '"amount":999999') : row.data
    prev = chainHash(prev, { ...row, data })
    db.prepare('UPDATE events SET data = ?, hash = ? WHERE position = ?').run(data, prev, row.position)
  }
  db.prepare('UPDATE chain_checkpoints SET hash = (SELECT hash FROM events WHERE position = chain_checkpoints.position)').run()
}

t.test('the start-time check: every way to rewrite history behind the service is refused, by kind and position', async t => {
  const { signer, copy } = await signedLog(t)
  const attacker = createCheckpointSigner(generateSigningKey())
  const cases: Array<[string, (db: SQLite.Database) => void, object]> = [
    ['rewritten, signatures kept', db => { rewrite(db, 7) }, { kind: 'rewritten', position: 40 }],
    ['rewritten, signatures deleted', db => { rewrite(db, 7); db.exec('DELETE FROM signed_checkpoints') }, { kind: 'unsigned', first: 1, last: 40 }],
    ['rewritten, re-signed with another key', db => {
      rewrite(db, 7)
      db.exec('DELETE FROM signed_checkpoints')
      checkpointRecorder(db, attacker)(tail(db), now.toISOString())
    }, { kind: 'other-key', position: 40, publicKey: attacker.publicKey, trusted: signer.publicKey }],
    ['rewritten, signed hash replaced by the new one', db => {
      rewrite(db, 7)
      db.prepare('UPDATE signed_checkpoints SET hash = (SELECT hash FROM events WHERE position = signed_checkpoints.position)').run()
    }, { kind: 'forged', position: 40 }],
    ['events appended behind its back with valid hashes', db => {
      const last = db.prepare('SELECT * FROM events WHERE position = 40').get() as EventRow
      const forged = { ...last, position: 41, stream_version: last.stream_version + 100 }
      db.prepare('INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(41, forged.stream_id, forged.stream_version, forged.type, forged.schema_version, forged.data, forged.metadata, forged.recorded_at, chainHash(last.hash, forged))
    }, { kind: 'unsigned', first: 41, last: 41 }],
    ['cut short below the signed tail, chain checkpoint moved back', db => {
      db.exec('DELETE FROM events WHERE position > 30')
      db.prepare("UPDATE chain_checkpoints SET position = 30, hash = (SELECT hash FROM events WHERE position = 30) WHERE name = 'events'").run()
    }, { kind: 'rewritten', position: 40, actual: null }]
  ]
  for (const [name, change, problem] of cases) {
    const check = checkChainSinceCheckpoint(copy(change), now, { signer, firstUse: false })
    t.equal(check.report.ok, true, `${name}: the hash chain alone is fooled`)
    t.equal(check.ok, false, `${name}: refused`)
    t.match(check.signatureProblem, problem, name)
  }
})

t.test('a log written without a key is signed on the key\'s first use only', async t => {
  const dir = tempDir(t)
  const dbPath = join(dir, 'legacy.db')
  const store = await openStore(dbPath)
  await appendInBatches(store, 12, 5)
  await store.close()
  const signer = createCheckpointSigner(generateSigningKey())
  const again = new SQLite(join(dir, 'again.db'))
  const legacy = new SQLite(dbPath)
  legacy.prepare('VACUUM INTO ?').run(join(dir, 'again.db'))
  t.teardown(() => { legacy.close(); again.close() })

  t.match(checkChainSinceCheckpoint(again, now, { signer, firstUse: false }), { ok: false, signatureProblem: { kind: 'unsigned', first: 1, last: 12 } },
    'a key that already existed finds nothing it signed: refused')
  t.match(checkChainSinceCheckpoint(legacy, now, { signer, firstUse: true }), { ok: true, signedOnFirstUse: 12 }, 'a new key signs the log as it stands')
  t.match(checkpoints(legacy), [{ position: 12, public_key: signer.publicKey }])
  t.match(checkChainSinceCheckpoint(legacy, now, { signer, firstUse: false }), { ok: true }, 'and the next start finds it signed')
  const empty = new SQLite(':memory:')
  empty.exec('CREATE TABLE events (position INTEGER PRIMARY KEY, hash TEXT); CREATE TABLE chain_checkpoints (name TEXT PRIMARY KEY, position INTEGER, hash TEXT, verified_at TEXT); CREATE TABLE signed_checkpoints (block INTEGER PRIMARY KEY, position INTEGER, hash TEXT, public_key TEXT, signature TEXT, signed_at TEXT)')
  t.match(checkChainSinceCheckpoint(empty, now, { signer, firstUse: false }), { ok: true }, 'an empty log needs no signature')
})

t.test('verify: a rotated key\'s old checkpoints are ignored once the trusted key signs a later tail', async t => {
  const dir = tempDir(t)
  const dbPath = join(dir, 'rotated.db')
  const oldKey = generateSigningKey()
  const newKey = generateSigningKey()
  const first = await openStore(dbPath, { signingKey: oldKey })
  await appendInBatches(first, 1500, 500)
  await first.close()
  const second = await openStore(dbPath, { signingKey: newKey })
  await appendInBatches(second, 10, 10, 'n')
  await second.close()
  const db = new SQLite(dbPath, { readonly: true })
  t.teardown(() => { db.close() })
  const trusted = createCheckpointSigner(newKey).publicKey
  t.match(verifySignedCheckpoints(db, tail(db), trusted), { valid: 1, ignored: 1, coveredThrough: 1510, unsigned: undefined })
  t.match(verifySignedCheckpoints(db, tail(db), createCheckpointSigner(oldKey).publicKey), { valid: 1, ignored: 1, coveredThrough: 1000, unsigned: { first: 1001, last: 1510 } },
    'pinned to the old key, what the new one signed is not proof')
  t.match(verifySignedCheckpoints(db, tail(db), undefined), { valid: 2, coveredThrough: 1510, keys: [createCheckpointSigner(oldKey).publicKey, trusted] }, 'unpinned: each checked against the key it names')
})

t.test('exports carry the signatures; import re-signs with its own key, keeping the same key\'s checkpoints of a verbatim file', async t => {
  const dir = tempDir(t)
  const signingKey = generateSigningKey()
  const signer = createCheckpointSigner(signingKey)
  const source = await openStore(join(dir, 'source.db'), { signingKey })
  await appendInBatches(source, 2500, 250)
  const lines = [...exportLines(source.sqlite, resolveExportRange(source.sqlite, {}))]
  await source.close()
  const signed = lines.map(line => JSON.parse(line) as { position: number, checkpoint?: { publicKey: string } }).filter(line => line.checkpoint !== undefined)
  t.same(signed.map(line => line.position), [1000, 2000, 2500], 'a checkpoint on the last signed line of each block and on the tail')
  t.ok(signed.every(line => line.checkpoint!.publicKey === signer.publicKey))

  const checker = new ChainChecker({ publicKey: signer.publicKey })
  const rows = lines.map((line, i) => parseExportLine(line.trimEnd(), i + 1))
  for (const row of rows) checker.add(row)
  t.match(checker.summary().signatures, { covered: 2500, uncovered: 0, keys: [signer.publicKey] })
  const cut = new ChainChecker({ publicKey: signer.publicKey })
  for (const row of rows.slice(0, 1500)) cut.add(row)
  t.match(cut.summary().signatures, { covered: 1000, uncovered: 500, firstUncovered: { line: 1001, position: 1001 } }, 'a file cut after a signed line leaves the rest uncovered')

  async function * replayRows (): AsyncGenerator<typeof rows[number]> { yield * rows }
  const same = await openStore(join(dir, 'restored.db'))
  const restored = await importRows(same.sqlite, replayRows(), { mode: planImport(same.sqlite, checker.summary()), signer, now })
  t.equal(restored.mode, 'verbatim')
  t.same(checkpoints(same.sqlite).map(row => row.position), [1000, 2000, 2500], 'a restore with the same key keeps every checkpoint')
  await same.close()

  const otherSigner = createCheckpointSigner(generateSigningKey())
  const other = await openStore(join(dir, 'other.db'))
  await importRows(other.sqlite, replayRows(), { mode: 'verbatim', signer: otherSigner, now })
  t.match(checkpoints(other.sqlite), [{ position: 2500, public_key: otherSigner.publicKey }], 'another key signs the imported tail only')
  t.match(verifySignedCheckpoints(other.sqlite, tail(other.sqlite), otherSigner.publicKey), { coveredThrough: 2500 })
  await other.close()
})
