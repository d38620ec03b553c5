import { join } from 'node:path'
import t from 'tap'
import { buildTestApp, tempDir, testSecrets } from '../helpers.js'
import { isolatedEnv, runCli, seedScenarios } from './toolkit-helpers.js'

// Issue 10 §5: a secret given as an option is readable by every user of the machine (ps, /proc)
// and stays in shell history. The commands that take one say so and name the variable instead.

const warning = (option: string, variable: string): RegExp =>
  new RegExp(`paynotify: warning: ${option} puts a secret on the command line, where other users of this machine can read it .*; set ${variable} instead`)

t.test('replay --to and simulate warn about secrets given as options, and not about the same secrets in the environment', async t => {
  const source = await buildTestApp(t)
  await seedScenarios(source)
  const env = isolatedEnv(t)
  const file = join(tempDir(t), 'incident.ndjson')
  t.equal((await runCli(['export', '--db', source.dbPath, '--out', file], env)).code, 0)
  const target = await buildTestApp(t, { env: { PAYNOTIFY_ACCEPT_REPLAYS: '1' } })
  const url = await target.app.listen({ host: '127.0.0.1', port: 0 })
  // Its own service: replay registers orders, after which simulate's unregistered ones are unknown_order.
  const gateway = await buildTestApp(t)
  const gatewayUrl = await gateway.app.listen({ host: '127.0.0.1', port: 0 })

  const [replayed, simulated] = await Promise.all([
    runCli(['replay', file, '--to', url, '--secret', testSecrets.genericSecret, '--merchant-token', testSecrets.merchantToken], env),
    runCli(['simulate', '--to', gatewayUrl, '--orders', '2', '--prefix', 'warn', '--secret', testSecrets.genericSecret, '--verify', '--admin-token', testSecrets.adminToken], env)
  ])
  t.equal(replayed.code, 0, replayed.stdout + replayed.stderr)
  t.match(replayed.stderr, warning('--secret', 'PAYNOTIFY_GENERIC_SECRET'))
  t.match(replayed.stderr, warning('--merchant-token', 'PAYNOTIFY_MERCHANT_TOKEN'))
  t.equal(simulated.code, 0, simulated.stdout + simulated.stderr)
  t.match(simulated.stderr, warning('--secret', 'PAYNOTIFY_GENERIC_SECRET'))
  t.match(simulated.stderr, warning('--admin-token', 'PAYNOTIFY_ADMIN_TOKEN'))
  t.notOk(simulated.stderr.includes(testSecrets.genericSecret) || replayed.stderr.includes(testSecrets.merchantToken), 'the warning does not repeat the secret')

  const fromEnv = {
    ...env,
    PAYNOTIFY_GENERIC_SECRET: testSecrets.genericSecret,
    PAYNOTIFY_MERCHANT_TOKEN: testSecrets.merchantToken,
    PAYNOTIFY_ADMIN_TOKEN: testSecrets.adminToken
  }
  const [quietReplay, quietSimulate] = await Promise.all([
    runCli(['replay', file, '--to', url], fromEnv),
    runCli(['simulate', '--to', gatewayUrl, '--orders', '2', '--prefix', 'quiet', '--verify'], fromEnv)
  ])
  t.equal(quietReplay.code, 0, quietReplay.stdout + quietReplay.stderr)
  t.equal(quietSimulate.code, 0, quietSimulate.stdout + quietSimulate.stderr)
  t.notMatch(quietReplay.stderr + quietSimulate.stderr, /warning/, 'the same secrets from the environment: no warning')
})
