import { execFile } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { checkExportFile } from '../../src/cli/export-file.js'
import { chainHash } from '../../src/event-log/hash.js'
import { adminAuth, buildTestApp, tempDir } from '../helpers.js'
import { cli, copyDatabase, isolatedEnv, runCli, seedScenarios, tableRows } from './toolkit-helpers.js'

interface Line { position: number, streamId: string, streamVersion: number, prevHash: string, hash: string, type: string }

function lines (file: string): Line[] {
  return readFileSync(file, 'utf8').trimEnd().split('\n').map(line => JSON.parse(line) as Line)
}

t.test('export → import round trip: same positions, hashes and order rows', async t => {
  const source = await buildTestApp(t)
  await seedScenarios(source)
  const dir = tempDir(t)
  const env = isolatedEnv(t)
  const file = join(dir, 'full.ndjson')

  const exported = await runCli(['export', '--db', source.dbPath, '--out', file], env)
  t.equal(exported.code, 0, exported.stderr)
  t.match(exported.stderr, /export: 16 events, positions 1-16 → .*full\.ndjson in [\d.]+ s \(\d+ events\/s\)/)
  const events = tableRows(source.dbPath, 'events', 'position') as Array<{ position: number, hash: string }>
  const exportedLines = lines(file)
  t.same(exportedLines.map(l => [l.position, l.hash]), events.map(e => [e.position, e.hash]), 'one line per event, hashes as stored')
  t.equal(exportedLines[0]!.prevHash, '0'.repeat(64))
  for (let i = 1; i < exportedLines.length; i++) t.equal(exportedLines[i]!.prevHash, exportedLines[i - 1]!.hash)

  const toStdout = await runCli(['export', '--db', source.dbPath], env)
  t.equal(toStdout.code, 0)
  t.equal(toStdout.stdout, readFileSync(file, 'utf8'), 'stdout carries the same bytes')

  const target = join(dir, 'target.db')
  const imported = await runCli(['import', file, '--db', target], env)
  t.equal(imported.code, 0, imported.stderr)
  t.match(imported.stdout, /imported 16 events as recorded \(positions 1-16, same positions and hashes/)
  t.same(tableRows(target, 'events', 'position'), events, 'every column of every event is identical')
  t.same(tableRows(target, 'orders', 'order_id'), tableRows(source.dbPath, 'orders', 'order_id'), 'order rows are identical')
  t.same(tableRows(target, 'projections', 'name'), tableRows(source.dbPath, 'projections', 'name'))

  const again = await runCli(['import', file, '--db', target], env)
  t.equal(again.code, 0, again.stderr)
  t.match(again.stdout, /imported 0 events as recorded \(nothing new.*16 already present/, 'importing twice adds nothing')
  t.equal(tableRows(target, 'events', 'position').length, 16)

  const verified = await runCli(['verify', '--db', target], env)
  t.equal(verified.code, 0, verified.stdout + verified.stderr)
})

t.test('export --after continues a copy byte for byte', async t => {
  const source = await buildTestApp(t)
  await seedScenarios(source, 'A')
  const dir = tempDir(t)
  const env = isolatedEnv(t)
  const copy = copyDatabase(source, join(dir, 'copy.db'))
  await seedScenarios(source, 'B')
  const tail = (tableRows(copy, 'events', 'position') as unknown[]).length
  const file = join(dir, 'after.ndjson')
  const exported = await runCli(['export', '--db', source.dbPath, '--after', String(tail), '--out', file], env)
  t.equal(exported.code, 0, exported.stderr)
  t.equal(lines(file)[0]!.position, tail + 1)

  const imported = await runCli(['import', file, '--db', copy], env)
  t.equal(imported.code, 0, imported.stderr)
  t.match(imported.stdout, new RegExp(`imported 16 events as recorded \\(positions ${tail + 1}-${tail + 16}`))
  t.same(tableRows(copy, 'events', 'position'), tableRows(source.dbPath, 'events', 'position'))
  t.same(tableRows(copy, 'orders', 'order_id'), tableRows(source.dbPath, 'orders', 'order_id'))
})

t.test('one order imports as its own valid history, into a fresh database and after a tail', async t => {
  const source = await buildTestApp(t)
  await seedScenarios(source)
  const dir = tempDir(t)
  const env = isolatedEnv(t)
  const file = join(dir, 'S1.ndjson')
  const exported = await runCli(['export', '--db', source.dbPath, '--order', 'S1', '--out', file], env)
  t.equal(exported.code, 0, exported.stderr)
  const orderLines = lines(file)
  t.same(orderLines.map(l => l.streamId), ['S1', 'S1', 'S1', 'S1', 'S1'])
  t.same(orderLines.map(l => l.streamVersion), [1, 2, 3, 4, 5])
  const stored = tableRows(source.dbPath, 'events', 'position') as Array<{ position: number, hash: string }>
  for (const line of orderLines) {
    t.equal(line.prevHash, line.position === 1 ? '0'.repeat(64) : stored[line.position - 2]!.hash, `line for position ${line.position} carries the hash before it`)
  }

  const fresh = join(dir, 'fresh.db')
  const imported = await runCli(['import', file, '--db', fresh], env)
  t.equal(imported.code, 0, imported.stderr)
  t.match(imported.stdout, /re-appended 5 events as positions 1-5 with a new hash chain/)
  const [sourceRow] = tableRows(source.dbPath, 'orders', 'order_id').filter(row => (row as { order_id: string }).order_id === 'S1') as Array<Record<string, unknown>>
  const [freshRow] = tableRows(fresh, 'orders', 'order_id') as Array<Record<string, unknown>>
  for (const column of ['status', 'paid_amount', 'refunded_amount', 'expected_amount', 'anomalies', 'duplicate_count', 'version', 'first_seen_at', 'updated_at']) {
    t.equal(freshRow![column], sourceRow![column], `${column} is the same`)
  }
  const freshEvents = tableRows(fresh, 'events', 'position') as Array<{ position: number, hash: string, recorded_at: string, data: string }>
  let prev = '0'.repeat(64)
  for (const event of freshEvents) {
    t.equal(event.hash, chainHash(prev, event as never), `position ${event.position} chains in the new database`)
    prev = event.hash
  }
  t.equal((await runCli(['verify', '--db', fresh], env)).code, 0, 'the re-appended history verifies')

  const full = join(dir, 'full.db')
  t.equal((await runCli(['import', join(dir, 'S1.ndjson'), '--db', copyDatabase(source, full)], env)).code, 0)
  const appended = tableRows(full, 'events', 'position') as Array<{ position: number, stream_id: string, stream_version: number }>
  t.same(appended.slice(-5).map(e => [e.position, e.stream_id, e.stream_version]),
    [[17, 'S1', 6], [18, 'S1', 7], [19, 'S1', 8], [20, 'S1', 9], [21, 'S1', 10]], 'appended after the tail, stream versions continue')
  const verified = await runCli(['verify', '--db', full], env)
  t.equal(verified.code, 0, verified.stdout)
})

t.test('import refuses a broken file naming the line, and writes nothing', async t => {
  const source = await buildTestApp(t)
  await seedScenarios(source)
  const dir = tempDir(t)
  const env = isolatedEnv(t)
  const file = join(dir, 'full.ndjson')
  t.equal((await runCli(['export', '--db', source.dbPath, '--out', file], env)).code, 0)
  const text = readFileSync(file, 'utf8').trimEnd().split('\n')
  const orderFile = join(dir, 'S1.ndjson')
  t.equal((await runCli(['export', '--db', source.dbPath, '--order', 'S1', '--out', orderFile], env)).code, 0)
  const orderText = readFileSync(orderFile, 'utf8').trimEnd().split('\n')

  const swap = [...text]
  ;[swap[5], swap[6]] = [swap[6]!, swap[5]!]
  const edited = [...text]
  edited[8] = edited[8]!.replace('"amount":500', '"amount":50000')
  const forgedPrev = [...text]
  forgedPrev[3] = forgedPrev[3]!.replace(/"prevHash":"[0-9a-f]{64}"/, `"prevHash":"${'a'.repeat(64)}"`)
  // [name, content, message, through the CLI (else the same check in-process, to keep the suite fast)]
  const cases: Array<[string, string[], RegExp, boolean]> = [
    ['reordered', swap, /line 6: position 7 follows position 5: position 6 is missing or out of order/, true],
    ['edited', edited, /line 9: hash does not match the content of position 9/, true],
    ['line deleted from a file of several orders', text.filter((_, i) => i !== 10), /line 11: position 12 follows position 10: position 11 is missing or out of order/, true],
    ['line deleted from one order', orderText.filter((_, i) => i !== 2), /line 3: order S1 version 4 follows version 2: a line is missing or out of order/, false],
    ['not JSON', [...text.slice(0, 4), '{"position":', ...text.slice(4)], /line 5: is not valid JSON/, false],
    ['prevHash replaced', forgedPrev, /line 4: hash does not match/, false],
    ['lines swapped back to front', [...text].reverse(), /line 2: position 15 after position 16: lines are out of order/, false]
  ]
  t.not(edited[8], text[8], 'the edit changed the line')
  const target = join(dir, 'target.db')
  for (const [name, content, message, viaCli] of cases) {
    const broken = join(dir, `${name}.ndjson`)
    writeFileSync(broken, content.join('\n') + '\n')
    if (!viaCli) {
      await t.rejects(checkExportFile(broken), { message }, name)
      continue
    }
    const run = await runCli(['import', broken, '--db', target], env)
    t.equal(run.code, 1, `${name}: exit 1`)
    t.match(run.stderr, message, name)
    t.match(run.stderr, /nothing was imported/)
    t.notOk(existsSync(target), `${name}: nothing written`)
  }

  // Into a database that already holds events: still nothing written.
  const existing = copyDatabase(source, join(dir, 'existing.db'))
  const before = tableRows(existing, 'events', 'position')
  const swapped = join(dir, 'reordered.ndjson')
  const run = await runCli(['import', swapped, '--db', existing], env)
  t.equal(run.code, 1)
  t.same(tableRows(existing, 'events', 'position'), before)
})

t.test('the admin NDJSON stream (no prevHash) imports too, each line proven by the one before', async t => {
  const source = await buildTestApp(t)
  await seedScenarios(source)
  const dir = tempDir(t)
  const env = isolatedEnv(t)
  const stream = async (query: string): Promise<string> => {
    const file = join(dir, `admin-${query.replace(/\W/g, '_')}.ndjson`)
    const response = await source.app.inject({ url: `/admin/events?${query}`, headers: { ...adminAuth, accept: 'application/x-ndjson' } })
    t.equal(response.statusCode, 200)
    writeFileSync(file, response.body)
    return file
  }

  const whole = join(dir, 'whole.db')
  const full = await runCli(['import', await stream('after=0'), '--db', whole], env)
  t.equal(full.code, 0, full.stderr)
  t.match(full.stdout, /imported 16 events as recorded/)
  t.same(tableRows(whole, 'events', 'position'), tableRows(source.dbPath, 'events', 'position'))

  const tailOnly = await runCli(['import', await stream('after=10'), '--db', join(dir, 'tail.db')], env)
  t.equal(tailOnly.code, 0, tailOnly.stderr)
  t.match(tailOnly.stdout, /re-appended 6 events as positions 1-6 .*the first line has no prevHash: its link to the log before position 11 is unproven/)

  const edited = readFileSync(await stream('after=0'), 'utf8').replace('"amount":2000', '"amount":200')
  writeFileSync(join(dir, 'edited.ndjson'), edited)
  await t.rejects(checkExportFile(join(dir, 'edited.ndjson')), { message: /^line 6: hash does not match the content of position 6/ })
  await t.rejects(checkExportFile(await stream('type=PaymentSucceeded')), { message: /^line 4: has no prevHash and the line before is not position 8, so it cannot be checked/ })
})

/** Runs a bash command line (pipes, process substitution) with only PATH in its environment. */
async function runShell (script: string, args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  return await new Promise(resolve => {
    execFile('bash', ['--norc', '--noprofile', '-c', script, 'bash', ...args], { env: { PATH: process.env.PATH ?? '' }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr })
    })
  })
}

t.test('import and replay read stdin (-), /dev/stdin and <(…) once: every event is written', async t => {
  const source = await buildTestApp(t)
  await seedScenarios(source)
  const dir = tempDir(t)
  const file = join(dir, 'full.ndjson')
  t.equal((await runCli(['export', '--db', source.dbPath, '--out', file], isolatedEnv(t))).code, 0)
  const expected = tableRows(source.dbPath, 'events', 'position') as Array<{ hash: string }>
  const node = process.execPath
  const imports: Array<[string, string]> = [
    ['import - < file', '"$1" "$2" import - --db "$4" < "$3"'],
    ['cat file | import /dev/stdin', 'cat "$3" | "$1" "$2" import /dev/stdin --db "$4"'],
    ['import <(cat file)', '"$1" "$2" import <(cat "$3") --db "$4"']
  ]
  for (const [i, [name, script]] of imports.entries()) {
    const dbPath = join(dir, `import-${i}.db`)
    const run = await runShell(script, [node, cli, file, dbPath])
    t.equal(run.code, 0, `${name}: ${run.stderr}`)
    t.match(run.stdout, /^imported 16 events as recorded/, name)
    const written = existsSync(dbPath) ? tableRows(dbPath, 'events', 'position') as Array<{ hash: string }> : []
    t.same(written.map(e => e.hash), expected.map(e => e.hash), `${name}: every event, as exported`)
  }

  const replays: Array<[string, string]> = [
    ['cat file | replay -', 'cat "$3" | "$1" "$2" replay - --json'],
    ['cat file | replay /dev/stdin', 'cat "$3" | "$1" "$2" replay /dev/stdin --json'],
    ['replay <(cat file)', '"$1" "$2" replay <(cat "$3") --json']
  ]
  const fromFile = await runCli(['replay', file, '--json'], isolatedEnv(t))
  t.equal(fromFile.code, 0, fromFile.stderr)
  t.equal((JSON.parse(fromFile.stdout) as unknown[]).length, 7)
  for (const [name, script] of replays) {
    const run = await runShell(script, [node, cli, file])
    t.equal(run.code, 0, `${name}: ${run.stderr}`)
    t.same(run.code === 0 ? JSON.parse(run.stdout) : undefined, JSON.parse(fromFile.stdout), `${name}: the same orders as from the file`)
    t.match(run.stderr, /replay: 16 events → 7 orders/, name)
  }

  const broken = await runShell('printf "{}\\n" | "$1" "$2" import - --db "$3"', [node, cli, join(dir, 'broken.db')])
  t.equal(broken.code, 1)
  t.match(broken.stderr, /^paynotify import: stdin line 1: position must be a positive integer; nothing was imported$/m, 'stdin is named as such')
  const directory = await runCli(['import', dir, '--db', join(dir, 'dir.db')], isolatedEnv(t))
  t.equal(directory.code, 2)
  t.match(directory.stderr, /is a directory/)
})

t.test('an empty file imports nothing, and says so', async t => {
  const dir = tempDir(t)
  const file = join(dir, 'empty.ndjson')
  writeFileSync(file, '\n')
  const run = await runCli(['import', file, '--db', join(dir, 'x.db')], isolatedEnv(t))
  t.equal(run.code, 0, run.stderr)
  t.equal(run.stdout, 'the file holds no events: nothing imported\n')
})
