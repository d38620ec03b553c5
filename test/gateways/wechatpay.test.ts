import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto'
import { join } from 'node:path'
import t from 'tap'
import { Aes, Formatter, Rsa } from 'wechatpay-axios-plugin'
import { loadConfig } from '../../src/config.js'
import { createGatewayRegistry } from '../../src/gateways/registry.js'
import { adminAuth, buildTestApp, eventCount, order, tempDir, testSecrets, type TestApp } from '../helpers.js'

// wechatpay-axios-plugin is the independent client: its Rsa signer, Formatter and AesGcm build every delivery.
const current = generateKeyPairSync('rsa', { modulusLength: 2048 })
const previous = generateKeyPairSync('rsa', { modulusLength: 2048 })
const impostor = generateKeyPairSync('rsa', { modulusLength: 2048 })
const currentSerial = 'PUB_KEY_ID_0114232134912410000000000001'
const previousSerial = '5157F09EFDC096DE15EBE81A47057A7232F1B8E1'
const pem = (key: KeyObject): string => key.export({ type: 'spki', format: 'pem' }).toString()
const apiV3Key = 'Qx7vN2pL9sT4wK8mR3yB6cF1hJ5dG0aZ'
const env = {
  PAYNOTIFY_WECHATPAY_PLATFORM_KEYS: JSON.stringify({ [currentSerial]: pem(current.publicKey), [previousSerial]: pem(previous.publicKey) }),
  PAYNOTIFY_WECHATPAY_APIV3_KEY: apiV3Key
}

// A fixed service clock makes the 300 s window exact at its edges.
const nowSeconds = 1_800_000_000
const now = (): Date => new Date(nowSeconds * 1000)

interface Delivery { body: string, headers: Record<string, string> }

/** An APIv3 envelope with its resource encrypted the way WeChat Pay does it (AEAD_AES_256_GCM, tag appended). */
function envelope (eventType: string, resource: Record<string, unknown>, options: { id?: string, key?: string, associatedData?: string } = {}): string {
  const nonce = Formatter.nonce(12)
  const associatedData = options.associatedData ?? (eventType.startsWith('REFUND') ? 'refund' : 'transaction')
  return JSON.stringify({
    id: options.id ?? randomUUID(),
    create_time: '2026-11-27T14:55:42+08:00',
    resource_type: 'encrypt-resource',
    event_type: eventType,
    summary: eventType.startsWith('REFUND') ? '退款成功' : '支付成功',
    resource: {
      original_type: eventType.startsWith('REFUND') ? 'refund' : 'transaction',
      algorithm: 'AEAD_AES_256_GCM',
      ciphertext: Aes.AesGcm.encrypt(JSON.stringify(resource), options.key ?? apiV3Key, nonce, associatedData),
      associated_data: associatedData,
      nonce
    }
  })
}

/** Signs a body as WeChat Pay signs a callback: SHA256withRSA over `timestamp\nnonce\nbody\n`. */
function sign (body: string, options: { key?: KeyObject, serial?: string, timestamp?: number } = {}): Delivery {
  const timestamp = String(options.timestamp ?? nowSeconds - 2)
  const nonce = Formatter.nonce(32)
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'wechatpay-serial': options.serial ?? currentSerial,
      'wechatpay-timestamp': timestamp,
      'wechatpay-nonce': nonce,
      'wechatpay-signature': Rsa.sign(Formatter.response(timestamp, nonce, body), options.key ?? current.privateKey),
      'wechatpay-signature-type': 'WECHATPAY2-SHA256-RSA2048'
    }
  }
}

function transaction (orderId: string, transactionId: string, total: number, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    mchid: '1900000109',
    appid: 'wxd678efh567hg6787',
    out_trade_no: orderId,
    transaction_id: transactionId,
    trade_type: 'JSAPI',
    trade_state: 'SUCCESS',
    trade_state_desc: '支付成功',
    bank_type: 'CMC',
    success_time: '2026-11-27T14:55:40+08:00',
    payer: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' },
    amount: { total, payer_total: total, currency: 'CNY', payer_currency: 'CNY' },
    ...fields
  }
}

function refund (orderId: string, refundId: string, refunded: number, status: string): Record<string, unknown> {
  return {
    mchid: '1900000109',
    out_trade_no: orderId,
    transaction_id: '4200000991202611275300000001',
    out_refund_no: `out-${refundId}`,
    refund_id: refundId,
    refund_status: status,
    // Only a refund that succeeded has a success_time; the others carry the envelope's create_time.
    ...(status === 'SUCCESS' ? { success_time: '2026-11-28T10:34:56+08:00' } : {}),
    user_received_account: '招商银行信用卡0403',
    amount: { total: 8888, refund: refunded, payer_total: 8888, payer_refund: refunded }
  }
}

async function post (app: TestApp['app'], delivery: Delivery) {
  return await app.inject({ method: 'POST', url: '/notify/wechatpay', headers: delivery.headers, payload: delivery.body })
}

/** The assertions the helpers below use: both the root `t` and a subtest's `t` have them. */
type Assert = Pick<typeof t, 'equal' | 'match' | 'type'>

async function deliver (tt: Assert, test: TestApp, delivery: Delivery): Promise<void> {
  const res = await post(test.app, delivery)
  tt.equal(res.statusCode, 204, res.body)
  tt.equal(res.body, '')
}

async function refused (tt: Assert, test: TestApp, delivery: Delivery, status: number, message?: RegExp): Promise<void> {
  const before = eventCount(test)
  const res = await post(test.app, delivery)
  tt.equal(res.statusCode, status, res.body)
  const answer = res.json()
  tt.equal(answer.code, 'FAIL')
  tt.type(answer.message, 'string')
  if (message !== undefined) tt.match(answer.message, message)
  tt.equal(eventCount(test), before, 'nothing appended')
}

t.test('a paid notification is acked with 204; a retry is acked and deduplicated', async t => {
  const test = await buildTestApp(t, { env, deps: { now } })
  const body = envelope('TRANSACTION.SUCCESS', transaction('W1001', '4200000991202611270000000001', 8888))
  await deliver(t, test, sign(body))
  let view = await order(test.app, 'W1001')
  t.equal(view.status, 'paid')
  t.equal(view.paidAmount, 8888)
  t.equal(view.currency, 'CNY')
  t.equal(view.gateway, 'wechatpay')
  t.equal(view.gatewayTradeNo, '4200000991202611270000000001')

  // WeChat Pay re-signs each retry (new nonce and timestamp); the envelope id stays.
  await deliver(t, test, sign(body, { timestamp: nowSeconds - 60 }))
  view = await order(test.app, 'W1001')
  t.equal(view.duplicateCount, 1)
  t.equal(view.paidAmount, 8888)
  t.equal(eventCount(test), 2)
  const timeline = (await test.app.inject({ url: '/admin/orders/W1001/events', headers: adminAuth })).json()
  t.equal(timeline.events[0].metadata.deliveryId, JSON.parse(body).id)
  t.same(Object.keys(timeline.events[0].metadata.raw.headers).sort(),
    ['wechatpay-nonce', 'wechatpay-serial', 'wechatpay-signature', 'wechatpay-signature-type', 'wechatpay-timestamp'],
    'the signature headers are kept with the raw body for replay')
  t.equal(timeline.events[0].metadata.raw.body, body)
})

t.test('either configured platform key verifies (rotation); the serial picks the key', async t => {
  const test = await buildTestApp(t, { env, deps: { now } })
  await deliver(t, test, sign(envelope('TRANSACTION.SUCCESS', transaction('W2001', '4200000991202611270000000002', 100)), { key: previous.privateKey, serial: previousSerial }))
  await deliver(t, test, sign(envelope('TRANSACTION.SUCCESS', transaction('W2002', '4200000991202611270000000003', 100)), { key: previous.privateKey, serial: previousSerial.toLowerCase() }))
  await refused(t, test, sign(envelope('TRANSACTION.SUCCESS', transaction('W2003', '4200000991202611270000000004', 100)), { key: previous.privateKey, serial: currentSerial }), 401, /does not match/)
  await refused(t, test, sign(envelope('TRANSACTION.SUCCESS', transaction('W2004', '4200000991202611270000000005', 100)), { serial: 'PUB_KEY_ID_0000000000000000000000000009' }), 401, /no configured platform key/)
  t.equal((await order(test.app, 'W2001')).status, 'paid')
  t.equal((await order(test.app, 'W2002')).status, 'paid')
})

t.test('tampered, wrongly signed, stale, future and probe deliveries are refused with nothing appended', async t => {
  const test = await buildTestApp(t, { env, deps: { now } })
  const body = envelope('TRANSACTION.SUCCESS', transaction('W3001', '4200000991202611270000000006', 8888))
  const good = sign(body)
  await refused(t, test, { ...good, body: body.replace('"TRANSACTION.SUCCESS"', '"TRANSACTION.SUCCESS" ') }, 401, /does not match/)
  await refused(t, test, { ...good, body: body.replace(/"id":"[^"]+"/, `"id":"${randomUUID()}"`) }, 401)
  await refused(t, test, { ...good, headers: { ...good.headers, 'wechatpay-nonce': Formatter.nonce(32) } }, 401)
  await refused(t, test, { ...good, headers: { ...good.headers, 'wechatpay-timestamp': String(nowSeconds - 3) } }, 401)
  await refused(t, test, sign(body, { key: impostor.privateKey }), 401, /does not match/)
  await refused(t, test, sign(body, { timestamp: nowSeconds - 301 }), 401, /300 s window/)
  await refused(t, test, sign(body, { timestamp: nowSeconds + 301 }), 401, /300 s window/)
  const probe = sign(body)
  probe.headers['wechatpay-signature'] = `WECHATPAY/SIGNTEST/${probe.headers['wechatpay-signature']}`
  await refused(t, test, probe, 401, /SIGNTEST/)
  await refused(t, test, { ...good, headers: { ...good.headers, 'wechatpay-signature-type': 'WECHATPAY2-SM2-WITH-SM3' } }, 401, /Signature-Type/)
  for (const name of ['wechatpay-signature', 'wechatpay-serial', 'wechatpay-timestamp', 'wechatpay-nonce']) {
    const { [name]: _dropped, ...headers } = good.headers
    await refused(t, test, { body, headers }, 401, /header is missing/)
  }
  // Correctly signed, but the resource was sealed with another APIv3 key: its GCM tag fails.
  await refused(t, test, sign(envelope('TRANSACTION.SUCCESS', transaction('W3001', '4200000991202611270000000006', 8888), { key: 'AnotherApiV3KeyOf32Characters000' })), 401, /APIV3_KEY/)
  // Associated data is authenticated too.
  const sealed = JSON.parse(envelope('TRANSACTION.SUCCESS', transaction('W3001', '4200000991202611270000000006', 8888)))
  sealed.resource.associated_data = 'refund'
  await refused(t, test, sign(JSON.stringify(sealed)), 401, /APIV3_KEY/)
  t.equal(await order(test.app, 'W3001'), null)

  // The window is inclusive at ±300 s.
  await deliver(t, test, sign(body, { timestamp: nowSeconds - 300 }))
  await deliver(t, test, sign(body, { timestamp: nowSeconds + 300 }))
  t.equal((await order(test.app, 'W3001')).duplicateCount, 1)
})

t.test('the real event types map to the order states; amounts are integer fen', async t => {
  const test = await buildTestApp(t, { env, deps: { now } })
  await deliver(t, test, sign(envelope('TRANSACTION.SUCCESS', transaction('W4001', '4200000991202611275300000001', 8888))))
  await deliver(t, test, sign(envelope('REFUND.SUCCESS', refund('W4001', '50300000001', 1000, 'SUCCESS'))))
  let view = await order(test.app, 'W4001')
  t.equal(view.status, 'partially_refunded')
  t.equal(view.refundedAmount, 1000)
  // A second refund is its own refund_id: amounts add up (amount.refund is this refund alone).
  await deliver(t, test, sign(envelope('REFUND.SUCCESS', refund('W4001', '50300000002', 7888, 'SUCCESS'))))
  view = await order(test.app, 'W4001')
  t.equal(view.status, 'refunded')
  t.equal(view.refundedAmount, 8888)
  t.same(view.anomalies, [])

  await deliver(t, test, sign(envelope('TRANSACTION.SUCCESS', transaction('W4002', '4200000991202611275300000002', 5000))))
  await deliver(t, test, sign(envelope('REFUND.ABNORMAL', refund('W4002', '50300000003', 5000, 'ABNORMAL'))))
  view = await order(test.app, 'W4002')
  t.equal(view.status, 'paid', 'a failed refund moves no money')
  t.same(view.anomalies, ['refund_failed'])
  // ABNORMAL is not final: the same refund may still succeed (a later success_time), which clears the anomaly.
  await deliver(t, test, sign(envelope('REFUND.SUCCESS', refund('W4002', '50300000003', 5000, 'SUCCESS'))))
  view = await order(test.app, 'W4002')
  t.equal(view.status, 'refunded')
  t.same(view.anomalies, [])
  // A SUCCESS that WeChat Pay's times put before the failure does not count: the failure is the latest word.
  await deliver(t, test, sign(envelope('TRANSACTION.SUCCESS', transaction('W4007', '4200000991202611275300000007', 5000))))
  await deliver(t, test, sign(envelope('REFUND.SUCCESS', { ...refund('W4007', '50300000007', 5000, 'SUCCESS'), success_time: '2026-11-27T10:00:00+08:00' })))
  await deliver(t, test, sign(envelope('REFUND.CLOSED', refund('W4007', '50300000007', 5000, 'CLOSED'))))
  view = await order(test.app, 'W4007')
  t.equal(view.status, 'paid')
  t.same(view.anomalies, ['refund_failed'])

  await deliver(t, test, sign(envelope('TRANSACTION.SUCCESS', transaction('W4003', '4200000991202611275300000003', 1))))
  await deliver(t, test, sign(envelope('REFUND.CLOSED', refund('W4003', '50300000004', 1, 'CLOSED'))))
  view = await order(test.app, 'W4003')
  t.equal(view.paidAmount, 1, 'one fen is 1')
  t.equal(view.status, 'paid')
  t.same(view.anomalies, ['refund_failed'])

  // JPY is a zero-decimal currency: amounts are never scaled.
  await deliver(t, test, sign(envelope('TRANSACTION.SUCCESS', transaction('W4004', '4200000991202611275300000004', 1234, { amount: { total: 1234, currency: 'JPY' } }))))
  view = await order(test.app, 'W4004')
  t.equal(view.paidAmount, 1234)
  t.equal(view.currency, 'JPY')

  // An event type this service does not record is acked so WeChat Pay stops, and nothing is stored.
  const before = eventCount(test)
  await deliver(t, test, sign(envelope('TRANSACTION.CLOSED', { out_trade_no: 'W4005' })))
  t.equal(eventCount(test), before)

  for (const total of [88.5, '8888', -1, null]) {
    await refused(t, test, sign(envelope('TRANSACTION.SUCCESS', transaction('W4006', '4200000991202611275300000006', 0, { amount: { total, currency: 'CNY' } }))), 400, /resource\.amount\.total/)
  }
  await refused(t, test, sign(envelope('TRANSACTION.SUCCESS', transaction('W4006', '4200000991202611275300000006', 1, { trade_state: 'NOTPAY' }))), 400, /trade_state/)
  await refused(t, test, sign(envelope('TRANSACTION.SUCCESS', transaction('W 4006', '4200000991202611275300000006', 1))), 400, /out_trade_no/)
  await refused(t, test, sign('{"id":'), 400, /JSON/)
})

t.test('configuration: formats, half configuration, and 404 when unconfigured', async t => {
  const unconfigured = await buildTestApp(t, { deps: { now } })
  const res = await post(unconfigured.app, sign(envelope('TRANSACTION.SUCCESS', transaction('W5001', '4200000991202611270000000007', 1))))
  t.equal(res.statusCode, 404)
  t.equal(eventCount(unconfigured), 0)

  const registry = (extra: Record<string, string>) => createGatewayRegistry(loadConfig({ PAYNOTIFY_DB: ':memory:', ...extra }), testSecrets)
  t.ok(registry(env).has('wechatpay'))
  t.notOk(registry({}).has('wechatpay'))
  const bare = current.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')
  t.ok(registry({ ...env, PAYNOTIFY_WECHATPAY_PLATFORM_KEYS: JSON.stringify({ [currentSerial]: bare }) }).has('wechatpay'), 'bare base64 DER works too')
  t.throws(() => registry({ PAYNOTIFY_WECHATPAY_APIV3_KEY: apiV3Key }), /must be set together/)
  t.throws(() => registry({ PAYNOTIFY_WECHATPAY_PLATFORM_KEYS: env.PAYNOTIFY_WECHATPAY_PLATFORM_KEYS }), /must be set together/)
  t.throws(() => registry({ ...env, PAYNOTIFY_WECHATPAY_PLATFORM_KEYS: pem(current.publicKey) }), /must be a JSON object/)
  t.throws(() => registry({ ...env, PAYNOTIFY_WECHATPAY_PLATFORM_KEYS: '{}' }), /non-empty JSON object/)
  t.throws(() => registry({ ...env, PAYNOTIFY_WECHATPAY_PLATFORM_KEYS: JSON.stringify({ [currentSerial]: 'garbage' }) }), /is not an RSA public key/)
  t.throws(() => registry({ ...env, PAYNOTIFY_WECHATPAY_PLATFORM_KEYS: JSON.stringify({ 'bad serial': pem(current.publicKey) }) }), /a serial is/)
  t.throws(() => registry({ ...env, PAYNOTIFY_WECHATPAY_APIV3_KEY: `${apiV3Key.slice(0, 31)}é` }), /must be 32 bytes/)
})

// The certificate is made with the openssl CLI; where it is missing this test is reported as skipped.
const openssl = ['/usr/bin/openssl', '/usr/local/bin/openssl'].find(path => existsSync(path))

t.test('a platform certificate can stand in for its public key', { skip: openssl === undefined ? 'openssl CLI not installed' : false }, async t => {
  if (openssl === undefined) return
  const dir = tempDir(t)
  const serial = '6F2F0B2AE2C1D05F1D2E8A7D5D8D7C9B4E1A2B3C'
  execFileSync(openssl, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=Tenpay.com Root CA test', '-days', '2',
    '-set_serial', `0x${serial}`, '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' })
  const certificate = readFileSync(join(dir, 'cert.pem'), 'utf8')
  const privateKey = readFileSync(join(dir, 'key.pem'), 'utf8')
  const test = await buildTestApp(t, { env: { ...env, PAYNOTIFY_WECHATPAY_PLATFORM_KEYS: JSON.stringify({ [serial]: certificate }) }, deps: { now } })
  await deliver(t, test, sign(envelope('TRANSACTION.SUCCESS', transaction('W6001', '4200000991202611270000000008', 300)), { key: Rsa.from(privateKey, Rsa.KEY_TYPE_PRIVATE), serial }))
  t.equal((await order(test.app, 'W6001')).paidAmount, 300)
  const registry = (keys: string) => createGatewayRegistry(loadConfig({ PAYNOTIFY_DB: ':memory:', ...env, PAYNOTIFY_WECHATPAY_PLATFORM_KEYS: keys }), testSecrets)
  t.throws(() => registry(JSON.stringify({ [currentSerial]: certificate })), /is a certificate with serial 6F2F0B2A/)
})
