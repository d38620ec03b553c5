import { readFileSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { createGatewayRegistry } from '../../src/gateways/registry.js'
import { localGatewayEnv, shellExports, type LocalGatewayKeys } from '../../src/local-gateway-keys.js'
import { testSecrets } from '../helpers.js'
import { isolatedEnv, parseShellExports, runCli } from './toolkit-helpers.js'

t.test('keys creates a local identity for every gateway once, 0600, and names the files rather than print secrets into a pipe', async t => {
  const env = isolatedEnv(t)
  const dir = dirname(env.PAYNOTIFY_DB!)
  const first = await runCli(['keys'], env)
  t.equal(first.code, 0, first.stderr)
  const file = join(dir, 'paynotify.local-gateways.json')
  const envFile = join(dir, 'paynotify.local-gateways.env')
  t.match(first.stdout, `local test keys for alipay, wechatpay, stripe, standard (created now) in ${file} (0600)`)
  t.match(first.stdout, `are in ${envFile} (0600; printed on a terminal only): . ${envFile} && npm start`)
  for (const path of [file, envFile]) t.equal(statSync(path).mode & 0o777, 0o600, `${path} is 0600`)

  const keys = JSON.parse(readFileSync(file, 'utf8')) as LocalGatewayKeys
  const variables = parseShellExports(readFileSync(envFile, 'utf8'))
  for (const secret of [keys.stripe.webhookSecret, keys.standard.secret, keys.wechatpay.apiV3Key, keys.alipay.privateKey.split('\n')[1]!, keys.wechatpay.privateKey.split('\n')[1]!]) {
    t.notOk(first.stdout.includes(secret) || first.stderr.includes(secret), 'no secret in the output')
  }
  t.equal(variables.PAYNOTIFY_ACCEPT_REPLAYS, '1', 'replays are accepted')
  t.equal(variables.PAYNOTIFY_STRIPE_WEBHOOK_SECRET, keys.stripe.webhookSecret)
  t.match(keys.stripe.webhookSecret, /^whsec_/)
  t.match(keys.standard.secret, /^whsec_[A-Za-z0-9+/]{43}=$/)
  t.equal(Buffer.byteLength(keys.wechatpay.apiV3Key), 32)

  // The variables configure all five gateways, with nothing else set.
  const config = loadConfig({ PAYNOTIFY_DB: env.PAYNOTIFY_DB, ...variables })
  t.same([...createGatewayRegistry(config, testSecrets).keys()].sort(), ['alipay', 'generic', 'standard', 'stripe', 'wechatpay'])

  const again = await runCli(['keys'], env)
  t.equal(again.code, 0)
  t.match(again.stdout, '(kept from before)')
  t.same(JSON.parse(readFileSync(file, 'utf8')), keys, 'a second run keeps the same keys, as stripe listen keeps its whsec_')
  t.same(parseShellExports(readFileSync(envFile, 'utf8')), variables)
})

t.test('the variables are one shell line each, safe to source whatever a value holds', async t => {
  const text = shellExports([['PAYNOTIFY_A', "it's"], ['PAYNOTIFY_B', '{"k":"-----BEGIN\\nX"}']])
  t.equal(text, "export PAYNOTIFY_A='it'\\''s'\nexport PAYNOTIFY_B='{\"k\":\"-----BEGIN\\nX\"}'\n")
  t.same(parseShellExports(text), { PAYNOTIFY_A: "it's", PAYNOTIFY_B: '{"k":"-----BEGIN\\nX"}' })
  const pem = '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'
  const variables = Object.fromEntries(localGatewayEnv({
    alipay: { appId: '9021000000000001', sellerId: '2088000000000001', privateKey: pem, publicKey: pem },
    wechatpay: { serial: 'PUB_KEY_ID_1', privateKey: pem, publicKey: pem, apiV3Key: 'k'.repeat(32) },
    stripe: { webhookSecret: 'whsec_a' },
    standard: { secret: 'whsec_b' }
  }))
  t.equal(variables.PAYNOTIFY_ALIPAY_PUBLIC_KEY, '-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----', 'a PEM on one line')
  t.same(JSON.parse(variables.PAYNOTIFY_WECHATPAY_PLATFORM_KEYS!), { PUB_KEY_ID_1: pem })
})
