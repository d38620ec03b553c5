import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import t from 'tap'
import { exportChunks, exportLines, resolveExportRange } from '../../src/event-log/export.js'
import { genesisHash } from '../../src/event-log/hash.js'
import { formatExportLine } from '../../src/event-log/ndjson.js'
import { rawBodySha256 } from '../../src/event-log/raw-bodies.js'
import { iterateRows, type EventRow } from '../../src/event-log/read.js'
import { buildTestApp, tempDir } from '../helpers.js'
import { copyDatabase, isolatedEnv, runCli, seedScenarios, tableRows } from './toolkit-helpers.js'

// Strings that JSON must escape, or that only look as if it should: export builds its lines in
// SQL (json_quote), and every byte must be what formatExportLine, the reference, makes of the row.
const odd = ['quote " and \\ backslash', 'tab\tnew\nline\r\bell\u0007\f\u0000x\u001f', 'é 漢字 😀 \u2028\u2029 \u007f', '']

t.test('export lines are formatExportLine of each stored row, byte for byte, whatever the strings hold', async t => {
  const source = await buildTestApp(t)
  await seedScenarios(source)
  const dir = tempDir(t)
  const dbPath = copyDatabase(source, join(dir, 'odd.db'))
  const db = new SQLite(dbPath)
  t.teardown(() => { db.close() })
  // Rows the service would refuse, written behind its back: export must still carry them exactly.
  const insert = db.prepare(`INSERT INTO events (position, stream_id, stream_version, type, schema_version, data, metadata, recorded_at, hash)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
  let position = db.prepare('SELECT max(position) FROM events').pluck().get() as number
  for (const [i, text] of odd.entries()) {
    insert.run(++position, `odd ${text}`, i + 1, text, 1, JSON.stringify({ text }), `{"raw":${JSON.stringify(text)}}`, text, `h${i}`)
  }
  // Odd raw bodies stored by hash: each goes back into its line's metadata, escaped as JSON.stringify does.
  const insertBody = db.prepare('INSERT INTO raw_bodies (sha256, encoding, body) VALUES (?, ?, ?)')
  for (const [i, text] of [...odd, '$& $1 $$ "raw":{ x'].entries()) {
    const sha256 = rawBodySha256(text, 'utf8')
    insertBody.run(sha256, 'utf8', text)
    const raw = { encoding: 'utf8', contentType: text, headers: { 'x-odd': text }, bodySha256: sha256, bodySize: Buffer.byteLength(text) }
    insert.run(++position, 'odd-body', i + 1, 'T', 1, '{}', JSON.stringify({ gateway: 'generic', deliveryId: `b${i}`, raw }), 'x', `hb${i}`)
  }
  // A line longer than two chunks.
  insert.run(++position, 'long', 1, 'T', 1, JSON.stringify({ text: 'x'.repeat(5000) }), '{}', 'x', 'hl')
  // Invalid UTF-8 reads back as U+FFFD in every column, in the old way and the new.
  db.prepare('INSERT INTO events VALUES (?, CAST(? AS TEXT), 9, ?, 1, CAST(? AS TEXT), ?, ?, ?)')
    .run(++position, Buffer.from('odd \x80\xff', 'latin1'), 'T', Buffer.from('{"x":"\x80"}', 'latin1'), '{}', 'x', 'h9')
  const rows = db.prepare('SELECT * FROM events ORDER BY position').all() as EventRow[]
  const byPosition = new Map(rows.map(row => [row.position, row]))
  // Each row with the raw body its metadata names by hash, which the line carries.
  const bodies = new Map([...iterateRows(db)].map(row => [row.position, row.raw_body]))
  t.ok([...bodies.values()].some(body => typeof body === 'string'), 'the service stored bodies by hash')
  const expected = (selected: EventRow[], prevOf: (row: EventRow, i: number) => string): string =>
    selected.map((row, i) => formatExportLine({ ...row, raw_body: bodies.get(row.position) }, prevOf(row, i))).join('')

  const whole = expected(rows, (_, i) => i === 0 ? genesisHash : rows[i - 1]!.hash)
  t.equal([...exportLines(db, resolveExportRange(db, {}))].join(''), whole, 'the whole log')
  const after = 10
  const tail = rows.filter(row => row.position > after)
  t.equal([...exportLines(db, resolveExportRange(db, { after }))].join(''), expected(tail, (_, i) => i === 0 ? byPosition.get(after)!.hash : tail[i - 1]!.hash), '--after')
  const stream = `odd ${odd[0]!}`
  const ofOrder = rows.filter(row => row.stream_id === stream)
  t.equal([...exportLines(db, resolveExportRange(db, { streamId: stream }), stream)].join(''),
    expected(ofOrder, row => byPosition.get(row.position - 1)?.hash ?? genesisHash), 'one order')

  // Chunks: whole lines, about `size` bytes each, a line longer than a chunk in one of its own.
  const size = 700
  const chunks = [...exportChunks(db, resolveExportRange(db, {}), undefined, size)]
  t.ok(chunks.length > 5, `${chunks.length} chunks`)
  t.equal(Buffer.concat(chunks.map(chunk => chunk.bytes)).toString('utf8'), whole, 'chunks hold the same bytes')
  t.equal(chunks.reduce((n, chunk) => n + chunk.lines, 0), rows.length, 'chunks count every line once')
  for (const chunk of chunks) {
    t.equal(chunk.bytes.toString('utf8').split('\n').length - 1, chunk.lines, 'a chunk ends at the end of a line and counts its lines')
  }
  t.ok(chunks.some(chunk => chunk.lines === 1 && chunk.bytes.length > 5000), 'a line longer than two chunks is written whole, alone')

  const env = isolatedEnv(t)
  const run = await runCli(['export', '--db', dbPath], env)
  t.equal(run.code, 0, run.stderr)
  t.equal(run.stdout, whole, 'the CLI writes the same bytes')
  t.same(tableRows(dbPath, 'events', 'position'), rows, 'export changed nothing')
})
