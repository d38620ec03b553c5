import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { chainHash, genesisHash } from '../../src/event-log/hash.js'
import { tempDir } from '../helpers.js'
import { lineToRow, readExpectations, readSample, samplesDir } from './catalogue.js'

const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url))

async function replay (file: string, env: Record<string, string>): Promise<{ code: number, stdout: string, stderr: string }> {
  return await new Promise(resolve => {
    execFile(process.execPath, [cli, 'replay', file, '--json'], { env: { PATH: process.env.PATH ?? '', ...env } }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr })
    })
  })
}

t.test('paynotify replay <sample> --json prints the states each sample promises', async t => {
  const env = { PAYNOTIFY_DB: join(tempDir(t), 'unused.db') }
  for (const [name, sample] of Object.entries(readExpectations().samples)) {
    const run = await replay(join(samplesDir, sample.file), env)
    t.equal(run.code, 0, `${name}: ${run.stderr}`)
    const orders = JSON.parse(run.stdout) as Array<Record<string, unknown>>
    t.same(orders.map(o => o.orderId).sort(), Object.keys(sample.orders).sort(), `${name}: exactly the promised orders`)
    for (const [orderId, promised] of Object.entries(sample.orders)) {
      const order = orders.find(o => o.orderId === orderId)!
      t.same(Object.fromEntries(Object.keys(promised).map(key => [key, order[key]])), promised, `${name}: ${orderId}`)
    }
  }
})

t.test('a log holding a schema version this code does not know is refused, not misread', async t => {
  const dir = tempDir(t)
  // happy-path with its third event claiming version 2, re-chained so only the version is wrong.
  let prevHash = genesisHash
  const lines = readSample('happy-path.ndjson').map(line => {
    const next: Record<string, unknown> = { ...line, schemaVersion: line.position === 3 ? 2 : line.schemaVersion, prevHash }
    next.hash = chainHash(prevHash, lineToRow(next))
    prevHash = next.hash as string
    return JSON.stringify(next)
  })
  const file = join(dir, 'future.ndjson')
  writeFileSync(file, lines.join('\n') + '\n')
  const run = await replay(file, { PAYNOTIFY_DB: join(dir, 'unused.db') })
  t.equal(run.code, 1)
  t.match(run.stderr, /unknown schema version 2 of PaymentPending/)
  t.equal(run.stdout, '', 'no states printed')
})
