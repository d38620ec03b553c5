import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { chainHash, genesisHash } from '../../src/event-log/hash.js'
import { tempDir } from '../helpers.js'
import { isolatedEnv, runCli } from './toolkit-helpers.js'

// Issue 10 §4: a hand-made file whose hashes were recomputed replayed a payment of −5000, a string
// amount and 1e300 of currency "zz" as "chain verified". Every event is now checked against
// events/schemas before anything is written.

interface Line { position: number, streamId: string, streamVersion: number, type: string, schemaVersion: number, data: Record<string, unknown>, metadata: Record<string, unknown>, recordedAt: string, prevHash: string, hash: string }

const sample = join(process.cwd(), 'events', 'samples', 'happy-path.ndjson')

/** The happy-path sample with one event's data changed, and every hash recomputed as a forger would. */
function forged (dir: string, name: string, position: number, change: (data: Record<string, unknown>) => void, raw?: (json: string) => string): string {
  const lines = readFileSync(sample, 'utf8').trimEnd().split('\n').map(text => JSON.parse(text) as Line)
  change(lines[position - 1]!.data)
  let prev = genesisHash
  const out: string[] = []
  for (const line of lines) {
    // Hashed as the log stores data (JSON.stringify of the parsed line): the forged file is a consistent chain.
    const data = JSON.stringify(JSON.parse(raw !== undefined && line.position === position ? raw(JSON.stringify(line.data)) : JSON.stringify(line.data)))
    const hash = chainHash(prev, { position: line.position, stream_id: line.streamId, stream_version: line.streamVersion, type: line.type, schema_version: line.schemaVersion, data, metadata: JSON.stringify(line.metadata), recorded_at: line.recordedAt })
    out.push(JSON.stringify({ ...line, data: JSON.parse(data), prevHash: prev, hash }))
    prev = hash
  }
  const file = join(dir, `${name}.ndjson`)
  writeFileSync(file, out.join('\n') + '\n')
  return file
}

t.test('replay and import refuse an event its schema does not allow, naming the line, position and field', async t => {
  const dir = tempDir(t)
  const env = isolatedEnv(t)
  const lines = readFileSync(sample, 'utf8').trimEnd().split('\n').map(text => JSON.parse(text) as Line)
  const payment = lines.findIndex(line => line.type === 'PaymentSucceeded') + 1
  t.ok(payment > 0, 'the sample has a payment')

  const cases: Array<[string, string, RegExp]> = [
    ['negative', forged(dir, 'negative', payment, data => { data.amount = -5000 }), new RegExp(`line ${payment}: position ${payment} \\(PaymentSucceeded\\): data\\.amount must be >= 0`)],
    ['string amount', forged(dir, 'string', payment, data => { data.amount = '5000' }), new RegExp(`line ${payment}: position ${payment} \\(PaymentSucceeded\\): data\\.amount must be integer`)],
    // 1e300 cannot come from JSON.stringify of a number a test builds: written as the forger would.
    ['1e300 of "zz"', forged(dir, 'huge', payment, data => { data.currency = 'zz' }, json => json.replace(/"amount":\d+/, '"amount":1e300')),
      new RegExp(`line ${payment}: position ${payment} \\(PaymentSucceeded\\): data\\.amount must be <= 9007199254740991`)],
    ['currency "zz"', forged(dir, 'currency', payment, data => { data.currency = 'zz' }), /data\.currency must match pattern "\^\[A-Z\]\{3\}\$"/],
    ['a field no schema has', forged(dir, 'extra', payment, data => { data.bonus = 1 }), /data has a field the schema does not allow: "bonus"/]
  ]
  // The forged files are consistent chains: only the schema can refuse them.
  t.match(readFileSync(cases[2]![1], 'utf8'), /"amount":1e\+300/)
  for (const [name, file, message] of cases) {
    const target = join(dir, `${name.replace(/\W/g, '_')}.db`)
    const [replayed, imported] = await Promise.all([runCli(['replay', file], env), runCli(['import', file, '--db', target], env)])
    t.equal(replayed.code, 1, `${name}: replay exits 1 ${replayed.stderr}`)
    t.match(replayed.stderr, message, `${name}: replay names the field`)
    t.match(replayed.stderr, /nothing was replayed/)
    t.notMatch(replayed.stdout, /PaymentSucceeded|paid/, `${name}: no state printed`)
    t.equal(imported.code, 1, `${name}: import exits 1`)
    t.match(imported.stderr, message, `${name}: import names the field`)
    t.notOk(existsSync(target), `${name}: nothing written`)
  }
  const verified = await runCli(['verify', cases[0]![1]], env)
  t.equal(verified.code, 1, 'verify of the file finds it too')
  t.match(verified.stdout, cases[0]![2])

  const clean = await runCli(['replay', sample], env)
  t.equal(clean.code, 0, 'the untouched sample still replays')
})
