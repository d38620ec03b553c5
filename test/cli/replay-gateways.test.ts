import { createSign, createVerify, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import t from 'tap'
import { AlipaySdk } from 'alipay-sdk'
import { Webhook } from 'standardwebhooks'
import Stripe from 'stripe'
import { Aes, Formatter, Rsa } from 'wechatpay-axios-plugin'
import type { OrderView } from '../../src/orders/order-fold.js'
import { rowToView, type OrderRow } from '../../src/orders/queries.js'
import { allGatewaysEnv, alipayAppId, alipayKeys, signAlipay, standardSecret, stripeSecret, wechatpayApiV3Key, wechatpayKeys, wechatpaySerial } from '../faults/gateway-keys.js'
import { buildTestApp, tempDir, testSecrets, type TestApp } from '../helpers.js'
import { captureServer, isolatedEnv, localKeysEnv, notify, place, runCli, tableRows, type Captured } from './toolkit-helpers.js'

// Production's side: the keys in gateway-keys.ts. Each gateway's own library signs what production
// received and judges what replay --to sends with the local identity `paynotify keys` made.
const stripe = new Stripe('sk_test_paynotify_unused')
const productionSellerId = '2088000000000001'
const nowSeconds = (): number => Math.floor(Date.now() / 1000)

interface Request { url: string, headers: Record<string, string>, body: string | Buffer }

async function deliver (source: TestApp, request: Request): Promise<void> {
  const response = await source.app.inject({ method: 'POST', url: request.url, headers: request.headers, payload: request.body })
  if (response.statusCode >= 300) throw new Error(`${request.url} refused: ${response.statusCode} ${response.body}`)
}

function alipay (fields: Record<string, string>): Request {
  const { body, headers } = signAlipay({ app_id: alipayAppId, seller_id: productionSellerId, charset: 'utf-8', notify_type: 'trade_status_sync', notify_time: '2026-12-01 10:00:05', subject: '大乐透 2.1', ...fields })
  return { url: '/notify/alipay', headers, body }
}

// 中文 in GBK: the signature covers these bytes, not their UTF-8 spelling.
const gbkSubject = Buffer.from([0xd6, 0xd0, 0xce, 0xc4])

/** A GBK notification, built and signed byte by byte as Alipay's SDKs do (`content.getBytes(charset)`). */
function alipayGbk (fields: Record<string, string>): Request {
  const values = new Map<string, Buffer>(Object.entries({ app_id: alipayAppId, seller_id: productionSellerId, charset: 'gbk', ...fields }).map(([k, v]) => [k, Buffer.from(v, 'latin1')]))
  values.set('subject', gbkSubject)
  const names = [...values.keys()].sort()
  const signing = Buffer.concat(names.flatMap((name, i) => [Buffer.from(`${i > 0 ? '&' : ''}${name}=`), values.get(name)!]))
  const sign = createSign('RSA-SHA256').update(signing).sign(alipayKeys.privateKey, 'base64')
  const encode = (value: Buffer): string => [...value].map(byte => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`).join('')
  const body = [...names.map(name => `${name}=${encode(values.get(name)!)}`), 'sign_type=RSA2', `sign=${encodeURIComponent(sign)}`].join('&')
  return { url: '/notify/alipay', headers: { 'content-type': 'application/x-www-form-urlencoded; charset=gbk' }, body }
}

function wechatpay (id: string, eventType: string, resource: Record<string, unknown>): string {
  const nonce = Formatter.nonce(12)
  const type = eventType.startsWith('REFUND') ? 'refund' : 'transaction'
  return JSON.stringify({
    id,
    create_time: '2026-12-01T10:00:00+08:00',
    resource_type: 'encrypt-resource',
    event_type: eventType,
    summary: type === 'refund' ? '退款成功' : '支付成功',
    resource: { original_type: type, algorithm: 'AEAD_AES_256_GCM', ciphertext: Aes.AesGcm.encrypt(JSON.stringify(resource), wechatpayApiV3Key, nonce, type), associated_data: type, nonce }
  })
}

function wechatpaySigned (body: string): Request {
  const timestamp = String(nowSeconds())
  const nonce = Formatter.nonce(32)
  return {
    url: '/notify/wechatpay',
    body,
    headers: {
      'content-type': 'application/json',
      'wechatpay-serial': wechatpaySerial,
      'wechatpay-timestamp': timestamp,
      'wechatpay-nonce': nonce,
      'wechatpay-signature': Rsa.sign(Formatter.response(timestamp, nonce, body), wechatpayKeys.privateKey),
      'wechatpay-signature-type': 'WECHATPAY2-SHA256-RSA2048'
    }
  }
}

function stripeEvent (id: string, type: string, object: Record<string, unknown>): string {
  return JSON.stringify({ id, object: 'event', api_version: '2025-10-29.clover', created: 1_796_000_000, livemode: true, type, data: { object } })
}

function stripeSigned (payload: string): Request {
  return { url: '/notify/stripe', body: payload, headers: { 'content-type': 'application/json', 'stripe-signature': stripe.webhooks.generateTestHeaderString({ payload, secret: stripeSecret }) } }
}

function standardSigned (id: string, payload: string): Request {
  const date = new Date()
  return {
    url: '/notify/standard',
    body: payload,
    headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(Math.floor(date.getTime() / 1000)), 'webhook-signature': new Webhook(standardSecret).sign(id, date, payload) }
  }
}

/**
 * An incident with every gateway: payments, gateway retries (same delivery
 * id, signed again), partial refunds, a GBK Alipay notification, and a
 * registered order, all as production received them.
 */
async function seedEveryGateway (source: TestApp): Promise<void> {
  await place(source, 'A1', '88.88')
  const alipayPaid = alipay({ notify_id: 'ali-n1', out_trade_no: 'A1', trade_no: '2026120122001101', trade_status: 'TRADE_SUCCESS', total_amount: '88.88', gmt_payment: '2026-12-01 10:00:03' })
  await deliver(source, alipayPaid)
  await deliver(source, alipayPaid)
  await deliver(source, alipay({ notify_id: 'ali-n2', out_trade_no: 'A1', trade_no: '2026120122001101', trade_status: 'TRADE_SUCCESS', total_amount: '88.88', refund_fee: '20.00', gmt_refund: '2026-12-01 11:00:00.123', out_biz_no: 'A1-R1' }))
  await deliver(source, alipayGbk({ notify_id: 'ali-n3', out_trade_no: 'A2', trade_no: '2026120122001102', trade_status: 'TRADE_SUCCESS', total_amount: '5.00' }))

  const wechatPaid = wechatpay('wx-e1', 'TRANSACTION.SUCCESS', { mchid: '1900000109', out_trade_no: 'W1', transaction_id: '4200000001202612010001', trade_state: 'SUCCESS', success_time: '2026-12-01T10:00:00+08:00', amount: { total: 3000, payer_total: 3000, currency: 'CNY', payer_currency: 'CNY' } })
  await deliver(source, wechatpaySigned(wechatPaid))
  await deliver(source, wechatpaySigned(wechatPaid))
  await deliver(source, wechatpaySigned(wechatpay('wx-e2', 'REFUND.SUCCESS', { mchid: '1900000109', out_trade_no: 'W1', transaction_id: '4200000001202612010001', out_refund_no: 'W1-R1', refund_id: '50300001', refund_status: 'SUCCESS', success_time: '2026-12-01T11:00:00+08:00', amount: { total: 3000, refund: 1000, payer_total: 3000, payer_refund: 1000 } })))

  const stripePaid = stripeEvent('evt_s1', 'payment_intent.succeeded', { id: 'pi_s1', object: 'payment_intent', amount: 2000, amount_received: 2000, currency: 'usd', metadata: { order_id: 'S1' } })
  await deliver(source, stripeSigned(stripePaid))
  await deliver(source, stripeSigned(stripePaid))
  await deliver(source, stripeSigned(stripeEvent('evt_s2', 'charge.refunded', { id: 'ch_s1', object: 'charge', amount: 2000, amount_refunded: 500, currency: 'usd', payment_intent: 'pi_s1', metadata: { order_id: 'S1' } })))

  const standardPaid = JSON.stringify({ type: 'payment.succeeded', timestamp: '2026-12-01T10:00:00Z', data: { order_id: 'H1', amount: 8888, currency: 'CNY', transaction_id: 'tx-h1' } })
  await deliver(source, standardSigned('msg_h1', standardPaid))
  await deliver(source, standardSigned('msg_h1', standardPaid))
  await deliver(source, standardSigned('msg_h2', JSON.stringify({ type: 'payment.refunded', timestamp: '2026-12-01T11:00:00Z', data: { order_id: 'H1', amount: 888, currency: 'CNY', transaction_id: 'tx-h1', refund_id: 're-h1' } })))

  await notify(source, { order_id: 'G1', amount: '12.00', status: '1', notify_id: 'g-n1', trade_no: 'g-t1', timestamp: String(nowSeconds()) })
}

/** The production service, its incident exported, and a local environment with `paynotify keys` run in it. */
async function incident (t: Parameters<typeof tempDir>[0]): Promise<{ source: TestApp, file: string, env: Record<string, string>, local: Record<string, string>, keys: LocalKeys }> {
  const source = await buildTestApp(t, { env: allGatewaysEnv })
  await seedEveryGateway(source)
  const env = isolatedEnv(t)
  const file = join(tempDir(t), 'incident.ndjson')
  const exported = await runCli(['export', '--db', source.dbPath, '--out', file], env)
  if (exported.code !== 0) throw new Error(exported.stderr)
  const local = await localKeysEnv(env)
  const keys = JSON.parse(readFileSync(join(dirname(env.PAYNOTIFY_DB!), 'paynotify.local-gateways.json'), 'utf8')) as LocalKeys
  return { source, file, env, local, keys }
}

interface LocalKeys {
  alipay: { appId: string, sellerId: string, publicKey: string }
  wechatpay: { serial: string, publicKey: string, apiV3Key: string }
  stripe: { webhookSecret: string }
  standard: { secret: string }
}

function views (dbPath: string): unknown[] {
  return (tableRows(dbPath, 'orders', 'order_id') as OrderRow[]).map(rowToView).map((view: OrderView) => {
    const { lastPosition, firstSeenAt, updatedAt, ...rest } = view
    return rest
  })
}

const recordedBodies = (source: TestApp, gateway: string): string[] =>
  (tableRows(source.dbPath, 'events', 'position') as Array<{ metadata: string }>)
    .map(row => JSON.parse(row.metadata) as { gateway: string, raw?: { body: string } })
    .filter(metadata => metadata.gateway === gateway && metadata.raw !== undefined)
    .map(metadata => metadata.raw!.body)

const near = (seconds: string | undefined): boolean => Math.abs(Number(seconds) - nowSeconds()) <= 60

// One incident and one `paynotify keys` serve every test of the file.
const shared = incident(t)

t.test('replay --to re-signs every gateway with the local identity, as each gateway\'s own library verifies', async t => {
  const { source, file, env, keys } = await shared
  const capture = await captureServer(t)
  const run = await runCli(['replay', file, '--to', capture.url, '--secret', testSecrets.genericSecret, '--merchant-token', testSecrets.merchantToken], env)
  t.equal(run.code, 0, run.stdout + run.stderr)
  t.match(run.stdout, /replay: 15 requests, 15 acked, 0 refused, 0 skipped/)
  const to = (gateway: string): Captured[] => capture.requests.filter(r => r.path === `/notify/${gateway}`)
  const header = (request: Captured, name: string): string => String(request.headers[name])
  t.ok(capture.requests.every(r => /^[1-9]\d*$/.test(header(r, 'x-paynotify-replay-of'))), 'each is marked with the position it replays')

  // Stripe: the recorded bytes, t= now, verified by stripe.webhooks.constructEvent with the local whsec_.
  t.same(to('stripe').map(r => r.body.toString()), recordedBodies(source, 'stripe'), 'the events byte for byte')
  for (const request of to('stripe')) {
    const event = stripe.webhooks.constructEvent(request.body, header(request, 'stripe-signature'), keys.stripe.webhookSecret)
    t.ok(['evt_s1', 'evt_s2'].includes(event.id), `constructEvent accepts ${event.id}`)
    t.ok(near(/t=(\d+)/.exec(header(request, 'stripe-signature'))?.[1]), 't= is now')
    t.throws(() => stripe.webhooks.constructEvent(request.body, header(request, 'stripe-signature'), stripeSecret), 'production\'s secret does not verify it')
  }
  t.same(to('stripe').map(r => JSON.parse(r.body.toString()).id), ['evt_s1', 'evt_s1', 'evt_s2'], 'the retry keeps its event id')

  // Standard Webhooks: webhook-id as recorded, webhook-timestamp now, Webhook.verify with the local secret.
  for (const request of to('standard')) {
    t.same(new Webhook(keys.standard.secret).verify(request.body.toString(), request.headers as Record<string, string>), JSON.parse(request.body.toString()), 'Webhook.verify accepts it')
    t.ok(near(header(request, 'webhook-timestamp')))
  }
  t.same(to('standard').map(r => header(r, 'webhook-id')), ['msg_h1', 'msg_h1', 'msg_h2'])
  t.same(to('standard').map(r => r.body.toString()), recordedBodies(source, 'standard'))

  // Alipay: app_id and seller_id are the local ones; alipay-sdk's notify check with the local public key.
  const sdk = new AlipaySdk({ appId: keys.alipay.appId, privateKey: alipayKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), keyType: 'PKCS8', alipayPublicKey: keys.alipay.publicKey })
  const [paid, paidAgain, refund, gbk] = to('alipay')
  for (const request of [paid!, paidAgain!, refund!]) {
    const params = Object.fromEntries(new URLSearchParams(request.body.toString()))
    t.ok(sdk.checkNotifySignV2(params), `alipay-sdk accepts ${params.notify_id}`)
    t.match(params, { app_id: keys.alipay.appId, seller_id: keys.alipay.sellerId, subject: '大乐透 2.1', charset: 'utf-8' })
    t.notOk(sdk.checkNotifySignV2({ ...params, total_amount: '0.01' }), 'and refuses a changed amount')
  }
  t.same([paid, paidAgain, refund, gbk].map(r => new URLSearchParams(r!.body.toString()).get('notify_id')), ['ali-n1', 'ali-n1', 'ali-n2', 'ali-n3'])
  // GBK: alipay-sdk only signs UTF-8, so this one is checked over its bytes as Alipay's Java SDK does.
  t.equal(header(gbk!, 'content-type'), 'application/x-www-form-urlencoded; charset=gbk')
  const bytesOf = (value: string): Buffer => Buffer.from(value.replaceAll('+', ' ').replace(/%([0-9A-F]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1')
  const gbkFields = new Map(gbk!.body.toString('latin1').split('&').map(pair => {
    const [name, value] = pair.split('=') as [string, string]
    return [name, bytesOf(value)] as const
  }))
  t.same(gbkFields.get('subject'), gbkSubject, 'the GBK bytes are kept')
  t.equal(gbkFields.get('app_id')?.toString(), keys.alipay.appId)
  const names = [...gbkFields.keys()].filter(name => name !== 'sign' && name !== 'sign_type').sort()
  const signed = Buffer.concat(names.flatMap((name, i) => [Buffer.from(`${i > 0 ? '&' : ''}${name}=`), gbkFields.get(name)!]))
  t.ok(createVerify('RSA-SHA256').update(signed).verify(keys.alipay.publicKey, gbkFields.get('sign')!.toString(), 'base64'), 'RSA2 over the GBK bytes')

  // WeChat Pay: the envelope id kept, the resource sealed under the local APIv3 key, signed with the local platform key.
  const wechat = to('wechatpay')
  t.same(wechat.map(r => JSON.parse(r.body.toString()).id), ['wx-e1', 'wx-e1', 'wx-e2'])
  const resources = wechat.map(request => {
    t.equal(header(request, 'wechatpay-serial'), keys.wechatpay.serial)
    t.ok(near(header(request, 'wechatpay-timestamp')))
    t.ok(Rsa.verify(Formatter.response(header(request, 'wechatpay-timestamp'), header(request, 'wechatpay-nonce'), request.body.toString()), header(request, 'wechatpay-signature'), keys.wechatpay.publicKey), 'Rsa.verify accepts it')
    const { resource } = JSON.parse(request.body.toString()) as { resource: { ciphertext: string, nonce: string, associated_data: string } }
    t.throws(() => Aes.AesGcm.decrypt(resource.ciphertext, wechatpayApiV3Key, resource.nonce, resource.associated_data), 'production\'s APIv3 key does not open it')
    return JSON.parse(Aes.AesGcm.decrypt(resource.ciphertext, keys.wechatpay.apiV3Key, resource.nonce, resource.associated_data)) as Record<string, unknown>
  })
  t.match(resources[0], { out_trade_no: 'W1', transaction_id: '4200000001202612010001', trade_state: 'SUCCESS', success_time: '2026-12-01T10:00:00+08:00', amount: { total: 3000, currency: 'CNY' } })
  t.match(resources[2], { out_trade_no: 'W1', refund_id: '50300001', refund_status: 'SUCCESS', amount: { refund: 1000 } })
})

t.test('replayed to a service started with the variables of `paynotify keys`: every order as in production, repeats deduplicated as they were', async t => {
  const { source, file, env, local } = await shared
  const target = await buildTestApp(t, { env: local })
  const url = await target.app.listen({ host: '127.0.0.1', port: 0 })
  const run = await runCli(['replay', file, '--to', url, '--secret', testSecrets.genericSecret, '--merchant-token', testSecrets.merchantToken], env)
  t.equal(run.code, 0, run.stdout + run.stderr)
  t.match(run.stdout, /replay: 15 requests, 15 acked, 0 refused, 0 skipped/)
  t.match(run.stdout, /position \d+ {2}W1 {2}PaymentRefunded {2}→ 204/)
  t.match(run.stdout, /position \d+ {2}S1 {2}PaymentSucceeded {2}→ 200 \{"received":true\}/)
  t.same(views(target.dbPath), views(source.dbPath), 'every order, duplicate counts included')
  const replayed = (tableRows(target.dbPath, 'events', 'position') as Array<{ metadata: string, data: string }>).map(row => ({ metadata: JSON.parse(row.metadata), data: JSON.parse(row.data) }))
  const original = (tableRows(source.dbPath, 'events', 'position') as Array<{ metadata: string, data: string }>).map(row => ({ metadata: JSON.parse(row.metadata), data: JSON.parse(row.data) }))
  // A generic callback's time is its signed timestamp, which replay moves to now.
  const facts = (events: typeof replayed): unknown[] => events.map(e => [e.metadata.gateway, e.metadata.deliveryId, e.metadata.gateway === 'generic' ? { ...e.data, gatewayTime: null } : e.data])
  t.same(facts(replayed), facts(original), 'the same facts under the same delivery ids')
  t.same(replayed.filter(e => e.metadata.raw !== undefined).map(e => e.metadata.replayOf), original.map((_, i) => i + 1).slice(1), 'each callback marked with the position it replays')
})

t.test('a gateway without a local identity is skipped and named', async t => {
  const { file } = await shared
  // A machine where `paynotify keys` never ran.
  const env = isolatedEnv(t)
  const capture = await captureServer(t)
  const run = await runCli(['replay', file, '--to', capture.url, '--secret', testSecrets.genericSecret, '--merchant-token', testSecrets.merchantToken], env)
  t.equal(run.code, 0, run.stderr)
  t.match(run.stdout, /replay: 2 requests, 2 acked, 0 refused, 13 skipped \(4 × alipay: no local identity \(run `paynotify keys`\); 3 × wechatpay: no local identity \(run `paynotify keys`\); 3 × stripe: no local identity \(run `paynotify keys`\); 3 × standard: no local identity \(run `paynotify keys`\)\)/)
  t.same(capture.requests.map(r => r.path), ['/orders', '/notify/generic'])

  // A Stripe secret in the environment is enough for Stripe (the service verifies with that one).
  const withStripe = await runCli(['replay', file, '--to', capture.url, '--secret', testSecrets.genericSecret], { ...env, PAYNOTIFY_STRIPE_WEBHOOK_SECRET: `whsec_${randomUUID()}` })
  t.match(withStripe.stdout, /replay: 4 requests, 4 acked, 0 refused, 11 skipped/)
})
