import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { safeEqual } from '../../src/gateways/signing.js'
import { createGatewayRegistry } from '../../src/gateways/registry.js'
import { adminAuth, buildTestApp, merchantAuth, testSecrets } from '../helpers.js'
import {
  alipayKeys, allGatewaysEnv, genuineCallback, impostor, standardSecret, stripeSecret, wechatpayKeys, type SignedRequest, type SignOptions
} from './gateway-keys.js'
import { repoRoot, type TapTest } from './helpers.js'

// Issue 5 §5: forged and replayed callbacks are refused with 401 and leave no trace; admin and
// merchant routes refuse missing, wrong and swapped tokens; secrets are compared in constant time.

async function setup (t: TapTest): Promise<{ app: FastifyInstance, gateways: string[], rows: () => number }> {
  const { app, store, config } = await buildTestApp(t, { env: allGatewaysEnv })
  const maxPosition = store.sqlite.prepare('SELECT coalesce(max(position), 0) FROM events').pluck()
  return { app, gateways: [...createGatewayRegistry(config, testSecrets).keys()], rows: () => maxPosition.get() as number }
}

async function post (app: FastifyInstance, gateway: string, request: SignedRequest): Promise<{ statusCode: number, body: string }> {
  const response = await app.inject({ method: 'POST', url: `/notify/${gateway}`, headers: request.headers, payload: request.body })
  return { statusCode: response.statusCode, body: response.body }
}

/** Posts a forgery and checks it is refused with `status` and appends nothing. */
async function refused (t: TapTest, app: FastifyInstance, rows: () => number, gateway: string, request: SignedRequest, what: string, status: number | 'any4xx' = 401): Promise<void> {
  const before = rows()
  const response = await post(app, gateway, request)
  if (status === 'any4xx') t.ok(response.statusCode >= 400 && response.statusCode < 500, `${gateway}: ${what} is refused (${response.statusCode})`, { body: response.body })
  else t.equal(response.statusCode, status, `${gateway}: ${what} is ${status}`, { body: response.body })
  t.equal(rows(), before, `${gateway}: ${what} appends nothing`)
}

/** Another gateway's key of the same kind (HMAC secret or RSA key), the one a confused or malicious sender might use. */
const otherGatewayKey: Record<string, SignOptions> = {
  generic: { secret: stripeSecret },
  stripe: { secret: standardSecret },
  standard: { secret: stripeSecret },
  alipay: { key: wechatpayKeys.privateKey },
  wechatpay: { key: alipayKeys.privateKey }
}
const foreignKey: Record<string, SignOptions> = {
  generic: { secret: 'another-generic-secret-0123456789' },
  stripe: { secret: impostor.hmacSecret },
  standard: { secret: impostor.hmacSecret },
  alipay: { key: impostor.rsa },
  wechatpay: { key: impostor.rsa }
}
// Gateways whose scheme carries a signed timestamp with a ±300 s window (Alipay's has none).
const timestamped = new Set(['generic', 'stripe', 'standard', 'wechatpay'])

/** Changes the amount inside a signed request's body without re-signing it. */
function withChangedAmount (gateway: string, request: SignedRequest): SignedRequest {
  const body = gateway === 'generic'
    ? request.body.replace('amount=10.00', 'amount=0.01')
    : gateway === 'alipay'
      ? request.body.replace('total_amount=10.00', 'total_amount=0.01')
      : gateway === 'wechatpay'
        // The amount is inside the encrypted resource: any change to the ciphertext is a changed amount.
        ? request.body.replace(/"ciphertext":"(.)/, (_m, c: string) => `"ciphertext":"${c === 'A' ? 'B' : 'A'}`)
        : request.body.replace(/"amount(_received)?":1000/, '"amount$1":1')
  if (body === request.body) throw new Error(`could not change the amount of a ${gateway} body`)
  return { ...request, body }
}

t.test('forged, tampered, stale and replayed callbacks: 401 and nothing appended', async t => {
  const { app, gateways, rows } = await setup(t)
  t.same(gateways.filter(g => otherGatewayKey[g] === undefined), [], 'every registered gateway has forgeries here (add them for a new gateway)')
  for (const gateway of gateways) {
    const genuine = genuineCallback(gateway)!
    const before = rows()
    const accepted = await post(app, gateway, genuine)
    t.ok(accepted.statusCode >= 200 && accepted.statusCode < 300 && rows() === before + 1, `${gateway}: precondition, the genuine callback is accepted`)

    await refused(t, app, rows, gateway, withChangedAmount(gateway, genuine), 'the same delivery re-posted with a changed amount')
    const flipped = Buffer.from(genuine.body)
    const middle = Math.floor(flipped.length / 2)
    flipped.writeUInt8(flipped.readUInt8(middle) ^ 0x01, middle)
    await refused(t, app, rows, gateway, { ...genuine, body: flipped.toString('latin1') }, 'a body with one bit flipped', 'any4xx')
    await refused(t, app, rows, gateway, genuineCallback(gateway, { sign: foreignKey[gateway] })!, 'a signature from a key it does not hold')
    await refused(t, app, rows, gateway, genuineCallback(gateway, { sign: otherGatewayKey[gateway] })!, 'a signature made with another gateway\'s key')
    if (timestamped.has(gateway)) {
      // Offsets from the clock at signing time, a few seconds past the window so the test's own run time cannot matter.
      for (const [what, offset] of [['stale (305 s old)', -305], ['future (305 s ahead)', 305], ['a day old', -86_400]] as const) {
        const timestamp = Math.floor(Date.now() / 1000) + offset
        await refused(t, app, rows, gateway, genuineCallback(gateway, { sign: { timestamp } })!, `a ${what} timestamp`)
      }
    }
    // A request genuinely signed for one gateway, posted to another: never accepted there.
    for (const other of gateways.filter(g => g !== gateway)) {
      await refused(t, app, rows, other, genuineCallback(gateway)!, `a genuine ${gateway} callback`, 'any4xx')
    }
  }
})

t.test('a signed JSON body with a repeated key is refused by every JSON gateway and by POST /orders (issue 10 §2)', async t => {
  const { app, gateways, rows } = await setup(t)
  // The first value is the one a reader of the raw body sees, the last the one JSON.parse keeps.
  const repeats: Record<string, { field: string, value: string, named: RegExp }> = {
    stripe: { field: 'amount_received', value: '1000,"amount_received":99999', named: /data\.object\.amount_received: is repeated/ },
    standard: { field: 'amount', value: '1000,"amount":99999', named: /data\.amount: is repeated/ },
    wechatpay: { field: 'amount.total', value: '1000,"total":99999', named: /resource\.amount\.total: is repeated/ }
  }
  t.same(gateways.filter(g => g !== 'generic' && g !== 'alipay' && repeats[g] === undefined), [], 'every JSON gateway is tried (add a new one here)')
  for (const [gateway, repeat] of Object.entries(repeats)) {
    const signed = genuineCallback(gateway, { field: repeat.field, value: repeat.value })!
    // WeChat Pay's repeat is inside the encrypted resource.
    if (gateway !== 'wechatpay') t.match(signed.body, repeat.value, `${gateway}: the signed body holds the repeat`)
    const before = rows()
    const response = await post(app, gateway, signed)
    t.equal(response.statusCode, 400, `${gateway}: 400`, { body: response.body })
    t.match(response.body, repeat.named, `${gateway}: the answer names the field`)
    t.equal(rows(), before, `${gateway}: nothing appended`)
  }
  const order = await app.inject({ method: 'POST', url: '/orders', headers: { ...merchantAuth, 'content-type': 'application/json' }, payload: '{"order_id":"DUP-O","amount":"1.00","amount":"999.00"}' })
  t.equal(order.statusCode, 400, 'POST /orders: 400')
  t.match(order.json(), { error: { code: 'malformed', message: 'amount: is repeated' } })
  t.equal(rows(), 0, 'POST /orders: nothing appended')
  const fine = await app.inject({ method: 'POST', url: '/orders', headers: { ...merchantAuth, 'content-type': 'application/json' }, payload: '{"order_id":"DUP-O","amount":"1.00"}' })
  t.equal(fine.statusCode, 201, 'POST /orders without the repeat: 201')
  const poisoned = await app.inject({ method: 'POST', url: '/orders', headers: { ...merchantAuth, 'content-type': 'application/json' }, payload: '{"order_id":"P-1","amount":"1.00","__proto__":{"x":1}}' })
  t.equal(poisoned.statusCode, 400, 'POST /orders keeps Fastify\'s prototype-poisoning refusal')
})

t.test('every gateway refuses a body over its own limit (413) before reading it, under PAYNOTIFY_BODY_LIMIT (issue 10 §1)', async t => {
  const { app, store, config } = await buildTestApp(t, { env: allGatewaysEnv })
  const rows = (): number => store.sqlite.prepare('SELECT count(*) FROM events').pluck().get() as number
  const registry = createGatewayRegistry(config, testSecrets)
  const limits = Object.fromEntries([...registry].map(([name, adapter]) => [name, adapter.bodyLimit]))
  t.same(limits, { generic: 8192, stripe: 65536, standard: 16384, alipay: 16384, wechatpay: 32768 }, 'each gateway\'s realistic maximum')
  for (const [gateway, limit] of Object.entries(limits)) {
    const over = genuineCallback(gateway, { value: 'x'.repeat(limit) })!
    t.ok(Buffer.byteLength(over.body) > limit, `${gateway}: the padded body is over ${limit} bytes`)
    const before = rows()
    t.equal((await post(app, gateway, over)).statusCode, 413, `${gateway}: 413 over its limit`)
    t.equal(rows(), before, `${gateway}: nothing appended`)
    const under = genuineCallback(gateway, { value: 'x'.repeat(limit / 2) })!
    const accepted = await post(app, gateway, under)
    t.ok(accepted.statusCode >= 200 && accepted.statusCode < 300, `${gateway}: accepted at half its limit (${accepted.statusCode})`, { body: accepted.body })
  }
  // PAYNOTIFY_BODY_LIMIT is the ceiling: a lower one wins over every gateway's own.
  const tight = await buildTestApp(t, { env: { ...allGatewaysEnv, PAYNOTIFY_BODY_LIMIT: '2048' } })
  for (const gateway of Object.keys(limits)) {
    t.equal((await post(tight.app, gateway, genuineCallback(gateway, { value: 'x'.repeat(2048) })!)).statusCode, 413, `${gateway}: 413 over PAYNOTIFY_BODY_LIMIT=2048`)
  }
})

t.test('admin and merchant routes refuse missing, wrong and swapped tokens', async t => {
  const { app } = await setup(t)
  const openapi = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, Record<string, { security?: Array<Record<string, unknown>> }>> }
  const routes: Array<{ method: string, url: string, realm: 'admin' | 'merchant' }> = []
  for (const [path, methods] of Object.entries(openapi.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      const schemes = (operation.security ?? []).flatMap(s => Object.keys(s))
      const realm = schemes.includes('adminToken') ? 'admin' : schemes.includes('merchantToken') ? 'merchant' : undefined
      if (realm !== undefined) routes.push({ method: method.toUpperCase(), url: path.replaceAll(/\{[^}]+\}/g, 'x'), realm })
    }
  }
  t.ok(routes.some(r => r.realm === 'admin') && routes.some(r => r.realm === 'merchant'), 'the OpenAPI document lists admin and merchant routes', { routes })

  const bad = (realm: 'admin' | 'merchant'): Array<[string, Record<string, string>]> => {
    const own = realm === 'admin' ? testSecrets.adminToken : testSecrets.merchantToken
    const other = realm === 'admin' ? testSecrets.merchantToken : testSecrets.adminToken
    return [
      ['no Authorization header', {}],
      ['an empty bearer', { authorization: 'Bearer ' }],
      ['a wrong token', { authorization: 'Bearer wrong-token-0123456789abcdef' }],
      [`the ${realm === 'admin' ? 'merchant' : 'admin'} token (swapped)`, { authorization: `Bearer ${other}` }],
      ['the generic gateway secret', { authorization: `Bearer ${testSecrets.genericSecret}` }],
      ['its own token minus the last character', { authorization: `Bearer ${own.slice(0, -1)}` }],
      ['its own token with a suffix', { authorization: `Bearer ${own}x` }],
      ['its own token as Basic auth', { authorization: `Basic ${Buffer.from(`x:${own}`).toString('base64')}` }],
      ['its own token without the scheme', { authorization: own }],
      ['its own token in a query string header', { 'x-api-key': own }]
    ]
  }
  for (const route of routes) {
    for (const [what, headers] of bad(route.realm)) {
      const response = await app.inject({ method: route.method as 'GET', url: route.url, headers: { ...headers, 'content-type': 'application/json' }, payload: route.method === 'GET' ? undefined : '{}' })
      t.equal(response.statusCode, 401, `${route.method} ${route.url}: ${what} is 401`)
    }
    const good = route.realm === 'admin' ? adminAuth : merchantAuth
    const response = await app.inject({ method: route.method as 'GET', url: route.url, headers: { ...good, 'content-type': 'application/json' }, payload: route.method === 'GET' ? undefined : '{}' })
    t.not(response.statusCode, 401, `${route.method} ${route.url}: the right token gets past authentication`)
  }
})

t.test('secrets and tokens are compared in constant time', async t => {
  t.equal(safeEqual('same-secret', 'same-secret'), true)
  t.equal(safeEqual('same-secret', 'same-secreT'), false)
  t.equal(safeEqual('short', 'a much longer value than the other one'), false, 'different lengths compare without throwing')
  t.equal(safeEqual(Buffer.from('abc'), 'abc'), true)

  // Code-level audit: the token check goes through safeEqual, and no adapter compares computed
  // signatures, digests, secrets or tokens with === or !== (which stop at the first differing byte).
  const auth = readFileSync(join(repoRoot, 'src/http/auth.ts'), 'utf8')
  t.match(auth, /safeEqual\(match\[1\]!?, token\)/, 'auth.ts compares the bearer token with safeEqual')
  const signing = readFileSync(join(repoRoot, 'src/gateways/signing.ts'), 'utf8')
  t.match(signing, /timingSafeEqual\(/, 'safeEqual is built on crypto.timingSafeEqual')
  const secretish = '(?:expected|digest|mac|hmac|signature|sign|token|secret|appId|sellerId)'
  const plainCompare = new RegExp(`\\b${secretish}\\s*[!=]==\\s*(?!\\s|undefined\\b|null\\b|''|"")|[!=]==\\s*(?:options\\.)?${secretish}\\b`)
  const files = ['src/http/auth.ts', ...readdirSync(join(repoRoot, 'src/gateways')).filter(f => f.endsWith('.ts')).map(f => `src/gateways/${f}`)]
  for (const file of files) {
    const offending = readFileSync(join(repoRoot, file), 'utf8').split('\n')
      .map((line, i) => ({ line: line.trim(), n: i + 1 }))
      .filter(({ line }) => !line.startsWith('//') && !line.startsWith('*') && plainCompare.test(line))
    t.same(offending, [], `${file}: no secret compared with === or !==`)
  }
  const adapters = files.filter(f => /src\/gateways\/(generic|alipay|stripe|standard-webhooks|wechatpay)\.ts$/.test(f))
  for (const file of adapters) {
    t.match(readFileSync(join(repoRoot, file), 'utf8'), /safeEqual\(|timingSafeEqual\(|verify as verifySignature|createVerify\(/, `${file}: verifies with a constant-time compare or crypto.verify`)
  }
})
