import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { tempDir } from '../helpers.js'
import { isolatedEnv, runCli, type Run } from './toolkit-helpers.js'

t.test('bad usage exits 2 with a message; --help exits 0 on every command', async t => {
  const env = isolatedEnv(t)
  const dir = tempDir(t)
  const file = join(dir, 'empty.ndjson')
  writeFileSync(file, '')
  const missing = join(dir, 'missing', 'x.db')
  const bad: Array<[string[], RegExp]> = [
    [['export', '--after', '-1'], /--after.*must be a log position/],
    [['export', '--after', 'abc'], /must be a log position/],
    [['export', '--order', 'bad id!'], /must be an order id/],
    [['export', '--from', 'yesterday'], /must be an ISO-8601 time/],
    [['export', '--bogus'], /unknown option '--bogus'/],
    [['export', '--db', missing], /no database at .*x\.db/],
    [['import'], /missing required argument 'file'/],
    [['import', join(dir, 'nope.ndjson')], /no file .*nope\.ndjson/],
    [['replay', file, '--speed', '0'], /must be a number > 0/],
    [['replay', file, '--to', 'ftp://example'], /must be an http or https URL/],
    [['replay', file, '--speed', '2'], /--speed, --secret and --merchant-token need --to/],
    [['rebuild', '--db', missing], /no database at/],
    [['verify', '--db', missing], /no database at/],
    [['verify', '--public-key', 'ed25519:short'], /--public-key.*must be a public key such as ed25519:/],
    [['replay', file, '--public-key', 'AAAA'], /must be a public key/],
    [['verify', file, '--db', missing], /give a file or --db, not both/],
    [['verify', join(dir, 'nope.ndjson')], /no file .*nope\.ndjson/]
  ]
  const commands = ['export', 'import', 'replay', 'rebuild', 'verify', 'public-key']
  // Four at a time: quicker than one by one, gentle on a 2-core CI runner.
  const all = [...bad.map(([args]) => args), ...commands.map(command => [command, '--help'])]
  const runs: Run[] = []
  for (let i = 0; i < all.length; i += 4) runs.push(...await Promise.all(all.slice(i, i + 4).map(async args => await runCli(args, env))))
  const badRuns = runs.slice(0, bad.length)
  const helpRuns = runs.slice(bad.length)
  bad.forEach(([args, message], i) => {
    t.equal(badRuns[i]!.code, 2, `${args.join(' ')}: exit 2 ${badRuns[i]!.stderr.slice(0, 300)}`)
    t.match(badRuns[i]!.stderr, message, args.join(' '))
  })
  commands.forEach((command, i) => {
    t.equal(helpRuns[i]!.code, 0, `${command} --help ${helpRuns[i]!.stderr.slice(0, 300)}`)
    t.match(helpRuns[i]!.stdout, new RegExp(`^Usage: paynotify ${command} `))
    t.match(helpRuns[i]!.stdout, /Exit codes: 0 /)
  })
})

t.test('an empty export file imports nothing and replays to no orders', async t => {
  const env = isolatedEnv(t)
  const dir = tempDir(t)
  const file = join(dir, 'empty.ndjson')
  writeFileSync(file, '\n')
  const run = await runCli(['replay', file, '--json'], env)
  t.equal(run.code, 0, run.stderr)
  t.same(JSON.parse(run.stdout), [])
})

t.test('a command that reads PAYNOTIFY_DB validates the whole environment first: exit 2 naming the bad variable', async t => {
  // The configuration loads only when a command needs it; it must still be validated in full then.
  const env = { ...isolatedEnv(t), PAYNOTIFY_PORT: 'abc' }
  const runs = await Promise.all([['export'], ['verify'], ['migrate']].map(async args => await runCli(args, env)))
  for (const [i, command] of ['export', 'verify', 'migrate'].entries()) {
    t.equal(runs[i]!.code, 2, `${command}: exit 2 ${runs[i]!.stderr.slice(0, 300)}`)
    t.match(runs[i]!.stderr, /^paynotify: invalid configuration: PAYNOTIFY_PORT must be integer/, command)
  }
})
