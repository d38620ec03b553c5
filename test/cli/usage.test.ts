import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { tempDir } from '../helpers.js'
import { cli, isolatedEnv, runCli, type Run } from './toolkit-helpers.js'

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

/**
 * Runs the CLI in `cwd` until it exits. A command that starts serving instead
 * (the old bare `paynotify`) is stopped as soon as it says so, and reported
 * as code 'served'.
 */
async function runIn (cwd: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | string, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, [cli, ...args], { cwd, env: { PATH: process.env.PATH ?? '', PAYNOTIFY_PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  let served = false
  const onData = (): void => {
    if (!served && /listening on/.test(stdout + stderr)) {
      served = true
      child.kill('SIGKILL')
    }
  }
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; onData() })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; onData() })
  const [code] = await once(child, 'exit') as [number | null]
  return { code: served ? 'served' : code ?? 'signal', stdout, stderr }
}

t.test('a bare paynotify prints help and starts nothing; --version; a mistyped command is an unknown command', async t => {
  const dir = tempDir(t)
  const bare = await runIn(dir, [])
  t.equal(bare.code, 2, `bare: exit 2 ${bare.stderr.slice(0, 300)}`)
  t.match(bare.stderr, /^Usage: paynotify \[options\] \[command\]/m)
  t.match(bare.stderr, /serve +start the HTTP service/)
  t.same(readdirSync(dir), [], 'no database, data directory or secrets file appeared in the current directory')

  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  for (const flag of ['--version', '-V']) {
    const run = await runIn(dir, [flag])
    t.equal(run.code, 0, flag)
    t.equal(run.stdout, `${version}\n`, `${flag} prints the package version`)
  }

  // The bin runs by itself (npx links to it): the build leaves it executable, whatever made dist/.
  const direct = await new Promise<{ code: number | string | null, stdout: string }>(resolve => {
    execFile(cli, ['--version'], { env: { PATH: process.env.PATH ?? '' } }, (error, stdout) => { resolve({ code: error === null ? 0 : error.code ?? null, stdout }) })
  })
  t.same(direct, { code: 0, stdout: `${version}\n` }, 'dist/cli/main.js --version, run as a program')

  const typo = await runIn(dir, ['srve'])
  t.equal(typo.code, 2)
  t.match(typo.stderr, /^error: unknown command 'srve'/m)
  t.match(typo.stderr, /Did you mean serve\?/)
  t.notMatch(typo.stderr, /too many arguments/, 'serve is not blamed')
  t.same(readdirSync(dir), [])
})

t.test('a database in a missing directory is refused (exit 2); only the default ./data is created', async t => {
  const dir = tempDir(t)
  const missing = join(dir, 'no-such-dir', 'x.db')
  const expected = new RegExp(`^paynotify: the directory of the database ${missing.replaceAll('.', '\\.')} does not exist: create ${join(dir, 'no-such-dir').replaceAll('.', '\\.')} first \\(only the default \\./data is created for you\\)`, 'm')
  const runs: Array<[string, string[], Record<string, string>]> = [
    ['serve', ['serve'], { PAYNOTIFY_DB: missing }],
    ['migrate', ['migrate'], { PAYNOTIFY_DB: missing }],
    ['migrate --db', ['migrate', '--db', missing], {}]
  ]
  for (const [name, args, env] of runs) {
    const run = await runIn(dir, args, env)
    t.equal(run.code, 2, `${name}: exit 2 ${run.stderr.slice(0, 300)}`)
    t.match(run.stderr, expected, name)
  }
  t.same(readdirSync(dir), [], 'the missing directory was not created')

  const fresh = await runIn(dir, ['migrate'])
  t.equal(fresh.code, 0, fresh.stderr)
  t.ok(statSync(join(dir, 'data', 'paynotify.db')).isFile(), 'the default ./data/paynotify.db is created in the current directory')
  t.equal(statSync(join(dir, 'data')).mode & 0o777, 0o700, 'the data directory is private')
})
