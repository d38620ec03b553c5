import { createSign, generateKeyPairSync, type KeyObject } from 'node:crypto'
import t from 'tap'
import { AlipaySdk } from 'alipay-sdk'
import { loadConfig } from '../../src/config.js'
import { alipayAdapterFromConfig, signAlipayParams } from '../../src/gateways/alipay.js'
import { createGatewayRegistry } from '../../src/gateways/registry.js'
import type { RawCallback } from '../../src/gateways/types.js'
import { adminAuth, buildTestApp, eventCount, order, testSecrets, type TestApp } from '../helpers.js'

// Alipay's key pair and an impostor's, generated here; Alipay's own Node SDK is the independent verifier.
const alipayKeys = generateKeyPairSync('rsa', { modulusLength: 2048 })
const otherKeys = generateKeyPairSync('rsa', { modulusLength: 2048 })
const publicPem = alipayKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString()
// What Alipay's console shows: the base64 DER body, no PEM armour.
const publicBare = alipayKeys.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')
const appId = '2021004100000001'
const sellerId = '2088102119685838'
const env = { PAYNOTIFY_ALIPAY_PUBLIC_KEY: publicBare, PAYNOTIFY_ALIPAY_APP_ID: appId, PAYNOTIFY_ALIPAY_SELLER_ID: sellerId }

const sdk = new AlipaySdk({
  appId,
  privateKey: otherKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  keyType: 'PKCS8',
  alipayPublicKey: publicPem
})

/**
 * Signs as Alipay's documentation describes, written out here rather than
 * taken from src: sort by name, drop sign, sign_type and empty values, join
 * k=v with &, SHA256withRSA over the bytes, base64.
 */
function docSign (params: Record<string, string>, key: KeyObject = alipayKeys.privateKey): string {
  const content = Object.keys(params).sort()
    .filter(name => name !== 'sign' && name !== 'sign_type' && params[name] !== '')
    .map(name => `${name}=${params[name]}`).join('&')
  return createSign('RSA-SHA256').update(content, 'utf8').sign(key, 'base64')
}

let notifySeq = 0
function notification (fields: Record<string, string>): Record<string, string> {
  return {
    notify_time: '2026-11-27 14:10:49',
    notify_type: 'trade_status_sync',
    notify_id: `ac05099524730693a8b330c5ecf72da9${String(++notifySeq).padStart(4, '0')}`,
    app_id: appId,
    charset: 'utf-8',
    version: '1.0',
    sign_type: 'RSA2',
    seller_id: sellerId,
    buyer_id: '2088102116773037',
    subject: '大乐透 2.1',
    gmt_create: '2026-11-27 14:10:44',
    ...fields
  }
}

function paid (orderId: string, tradeNo: string, totalAmount: string, fields: Record<string, string> = {}): Record<string, string> {
  return notification({ out_trade_no: orderId, trade_no: tradeNo, trade_status: 'TRADE_SUCCESS', total_amount: totalAmount, gmt_payment: '2026-11-27 14:10:47', ...fields })
}

/** The body Alipay posts: the parameters plus sign, form-encoded. */
function signedBody (params: Record<string, string>, key?: KeyObject): string {
  return new URLSearchParams({ ...params, sign: docSign(params, key) }).toString()
}

async function post (app: TestApp['app'], payload: string | Buffer, contentType = 'application/x-www-form-urlencoded; charset=utf-8') {
  return await app.inject({ method: 'POST', url: '/notify/alipay', headers: { 'content-type': contentType }, payload })
}

/** The assertions the helpers below use: both the root `t` and a subtest's `t` have them. */
type Assert = Pick<typeof t, 'equal' | 'match' | 'type'>

async function deliver (tt: Assert, test: TestApp, payload: string | Buffer, contentType?: string): Promise<void> {
  const res = await post(test.app, payload, contentType)
  tt.equal(res.statusCode, 200, res.body)
  tt.equal(res.body, 'success')
  tt.match(res.headers['content-type'], /^text\/plain/)
}

async function refused (tt: Assert, test: TestApp, payload: string | Buffer, status: number, contentType?: string): Promise<void> {
  const before = eventCount(test)
  const res = await post(test.app, payload, contentType)
  tt.equal(res.statusCode, status, res.body)
  tt.equal(res.body, 'fail')
  tt.equal(eventCount(test), before, 'nothing appended')
}

t.test('the signer, this verifier and alipay-sdk agree on the same parameters', async t => {
  const params = paid('X1', '2026112722001', '88.88', { body: 'a+b c=d&e', subject: '商品 ½ ✓' })
  const ours = signAlipayParams(params, alipayKeys.privateKey)
  t.equal(ours, docSign(params), 'RSA PKCS#1 v1.5 is deterministic: same bytes, same signature')
  t.ok(sdk.checkNotifySignV2({ ...params, sign: ours }), 'alipay-sdk accepts the signature')
  t.notOk(sdk.checkNotifySignV2({ ...params, total_amount: '0.01', sign: ours }), 'alipay-sdk refuses a changed amount')
  t.notOk(sdk.checkNotifySignV2({ ...params, sign: docSign(params, otherKeys.privateKey) }), 'alipay-sdk refuses another key')

  const adapter = alipayAdapterFromConfig(loadConfig(env).gateways.alipay)!
  const callback = (body: string): RawCallback => ({ body: Buffer.from(body), mediaType: 'application/x-www-form-urlencoded', contentType: 'application/x-www-form-urlencoded', headers: {} })
  const verified = adapter.verify(callback(new URLSearchParams({ ...params, sign: ours }).toString()), new Date())
  t.equal(verified.params.get('subject'), '商品 ½ ✓')
  t.equal(verified.params.get('body'), 'a+b c=d&e')
  t.throws(() => adapter.verify(callback(new URLSearchParams({ ...params, total_amount: '0.01', sign: ours }).toString()), new Date()), /sign does not match/)
})

t.test('a paid notification is acked with success; a retry is acked and deduplicated', async t => {
  const test = await buildTestApp(t, { env })
  const body = signedBody(paid('A1001', '2026112722001100', '88.88'))
  await deliver(t, test, body)
  let view = await order(test.app, 'A1001')
  t.equal(view.status, 'paid')
  t.equal(view.paidAmount, 8888)
  t.equal(view.currency, 'CNY')
  t.equal(view.gateway, 'alipay')
  t.equal(view.gatewayTradeNo, '2026112722001100')

  await deliver(t, test, body)
  view = await order(test.app, 'A1001')
  t.equal(view.duplicateCount, 1)
  t.equal(view.paidAmount, 8888)
  t.equal(eventCount(test), 2, 'the retry is in the log, marked as a duplicate')
  const timeline = (await test.app.inject({ url: '/admin/orders/A1001/events', headers: adminAuth })).json()
  t.equal(timeline.events[0].metadata.deliveryId, timeline.events[1].metadata.deliveryId)
  t.equal(timeline.events[0].metadata.raw.body, body, 'the raw body is kept for replay')
})

t.test('TRADE_FINISHED after TRADE_SUCCESS for one trade_no is one payment', async t => {
  const test = await buildTestApp(t, { env })
  await deliver(t, test, signedBody(paid('A2001', '2026112722002200', '100.00')))
  await deliver(t, test, signedBody(paid('A2001', '2026112722002200', '100.00', { trade_status: 'TRADE_FINISHED', gmt_close: '2027-02-27 14:10:47' })))
  const view = await order(test.app, 'A2001')
  t.equal(view.status, 'paid')
  t.equal(view.paidAmount, 10000)
  t.equal(view.duplicateCount, 1, 'fact dedup, not delivery dedup: the notify_ids differ')
  t.same(view.anomalies, [])
})

t.test('the real trade statuses map to the order states', async t => {
  const test = await buildTestApp(t, { env })
  await deliver(t, test, signedBody(notification({ out_trade_no: 'S1', trade_no: '2026112722003301', trade_status: 'WAIT_BUYER_PAY', total_amount: '10.00' })))
  t.equal((await order(test.app, 'S1')).status, 'pending')
  await deliver(t, test, signedBody(notification({ out_trade_no: 'S2', trade_no: '2026112722003302', trade_status: 'TRADE_CLOSED', total_amount: '10.00', gmt_close: '2026-11-27 15:00:00' })))
  t.equal((await order(test.app, 'S2')).status, 'closed')
  // Out of order: the payment arrives after "waiting for payment" and wins.
  await deliver(t, test, signedBody(paid('S1', '2026112722003301', '10.00')))
  t.equal((await order(test.app, 'S1')).status, 'paid')
  await refused(t, test, signedBody(notification({ out_trade_no: 'S3', trade_no: '2026112722003303', trade_status: 'TRADE_PENDING', total_amount: '10.00' })), 400)
})

t.test('refund notifications carry the cumulative refund_fee', async t => {
  const test = await buildTestApp(t, { env })
  await deliver(t, test, signedBody(paid('R1', '2026112722004401', '88.88', { refund_fee: '0.00' })))
  t.equal((await order(test.app, 'R1')).status, 'paid', 'refund_fee 0.00 on a payment is not a refund')
  // A partial refund keeps the trade TRADE_SUCCESS; the full refund closes it.
  const partial = paid('R1', '2026112722004401', '88.88', { refund_fee: '20.00', gmt_refund: '2026-11-28 10:00:00.123', out_biz_no: 'RF-1' })
  await deliver(t, test, signedBody(partial))
  let view = await order(test.app, 'R1')
  t.equal(view.status, 'partially_refunded')
  t.equal(view.refundedAmount, 2000)
  const full = notification({ out_trade_no: 'R1', trade_no: '2026112722004401', trade_status: 'TRADE_CLOSED', total_amount: '88.88', refund_fee: '88.88', gmt_refund: '2026-11-29 10:00:00.456', gmt_close: '2026-11-29 10:00:00', out_biz_no: 'RF-2' })
  await deliver(t, test, signedBody(full))
  view = await order(test.app, 'R1')
  t.equal(view.status, 'refunded')
  t.equal(view.refundedAmount, 8888, 'totals are not added up: 88.88 refunded in all, not 108.88')
  t.same(view.anomalies, [], 'a full refund is not a close after payment')
  await deliver(t, test, signedBody(partial), undefined)
  t.equal((await order(test.app, 'R1')).refundedAmount, 8888, 'a late partial total does not lower the refunded amount')
})

t.test('amounts are exact decimal yuan', async t => {
  const test = await buildTestApp(t, { env })
  for (const [id, amount, minor] of [['M1', '0.01', 1], ['M2', '1234567.89', 123456789], ['M3', '100', 10000], ['M4', '0.1', 10]] as const) {
    await deliver(t, test, signedBody(paid(id, `20261127220055${id}`, amount)))
    t.equal((await order(test.app, id)).paidAmount, minor, amount)
  }
  for (const bad of ['88.888', '-1', '1e3', '']) {
    await refused(t, test, signedBody(paid('M9', '2026112722005599', bad)), 400)
  }
})

t.test('tampered, wrongly signed and misaddressed notifications are refused with nothing appended', async t => {
  const test = await buildTestApp(t, { env })
  const params = paid('T1', '2026112722006601', '88.88')
  const body = signedBody(params)
  await refused(t, test, body.replace('total_amount=88.88', 'total_amount=0.01'), 401)
  await refused(t, test, body.replace('out_trade_no=T1', 'out_trade_no=T2'), 401)
  await refused(t, test, `${body}&extra=1`, 401)
  await refused(t, test, signedBody(params, otherKeys.privateKey), 401)
  await refused(t, test, new URLSearchParams(params).toString(), 401)
  await refused(t, test, body.replace(/sign=[^&]+/, 'sign=bm90IGEgc2lnbmF0dXJl'), 401)
  await refused(t, test, signedBody({ ...params, sign_type: 'RSA' }), 401)
  await refused(t, test, signedBody({ ...params, app_id: '2021009999999999' }), 401)
  await refused(t, test, signedBody({ ...params, seller_id: '2088000000000000' }), 401)
  const { seller_id: _omitted, ...noSeller } = params
  await refused(t, test, signedBody(noSeller), 401)
  await refused(t, test, `${body}&total_amount=0.01`, 400)
  await refused(t, test, body.replace('total_amount=88.88', 'total_amount=%zz'), 400)
  t.equal(await order(test.app, 'T1'), null)
  t.equal(eventCount(test), 0)
})

t.test('a field moved into another\'s value is refused; & in a subject is not (issue 10 §2)', async t => {
  const test = await buildTestApp(t, { env })
  // A genuine refund notification; moving gmt_refund into gmt_payment's value keeps Alipay's
  // signature valid and, read naively, turns the refund into a payment.
  const refund = paid('AM1', '2026112722008801', '88.88', { refund_fee: '20.00', gmt_refund: '2026-11-28 10:00:00.123', out_biz_no: 'RF-1' })
  const sign = docSign(refund)
  const { gmt_refund: gmtRefund, ...rest } = refund
  const moved = new URLSearchParams({ ...rest, gmt_payment: `${refund.gmt_payment!}&gmt_refund=${gmtRefund!}`, sign }).toString()
  const res = await post(test.app, moved)
  t.equal(res.statusCode, 400, res.body)
  t.equal(res.body, 'fail')
  t.equal(eventCount(test), 0, 'nothing appended')
  t.equal(await order(test.app, 'AM1'), null)
  await deliver(t, test, new URLSearchParams({ ...refund, sign }).toString())
  t.equal((await order(test.app, 'AM1')).refundedAmount, 2000, 'the genuine notification is a refund')

  // Text a merchant chose, with & and = in it, is accepted as Alipay signed it.
  await deliver(t, test, signedBody(paid('AM2', '2026112722008802', '1.00', { subject: 'Tom & Jerry', body: 'x=1, A&B' })))
  t.equal((await order(test.app, 'AM2')).status, 'paid')
  // ... but not a subject that reads as a further field: it signs like one.
  await refused(t, test, signedBody(paid('AM3', '2026112722008803', '1.00', { subject: 'Tom&total_amount=0.01' })), 400)
})

t.test('a body over 16 KiB or of more than 256 parameters is refused before any field is decoded', async t => {
  const test = await buildTestApp(t, { env })
  const params = paid('CAP1', '2026112722009901', '1.00')
  await refused(t, test, `${signedBody(params)}&pad=${'x'.repeat(16 * 1024)}`, 413)
  // 300 unsigned fields, the last one badly percent-encoded: the count refuses it first.
  const flood = Array.from({ length: 299 }, (_, i) => `f${i}=%C9%CC`).join('&') + '&charset=gbk&last=%zz'
  t.ok(flood.length < 16 * 1024)
  const before = eventCount(test)
  const res = await post(test.app, flood)
  t.equal(res.statusCode, 413)
  t.equal(res.body, 'fail')
  t.equal(eventCount(test), before)
  // Empty parameters are absent, but they count towards the cap: no signature covers them.
  await deliver(t, test, `${signedBody(params)}${'&'.repeat(200)}`)
  await refused(t, test, `${signedBody(params)}${'&'.repeat(300)}`, 413)
})

/** GBK bytes of the text used below, checked against Node's own GBK decoder in the test. */
const gbk = {
  商品: Buffer.from([0xc9, 0xcc, 0xc6, 0xb7]),
  测试订单: Buffer.from([0xb2, 0xe2, 0xca, 0xd4, 0xb6, 0xa9, 0xb5, 0xa5])
}
const percent = (bytes: Buffer): string => [...bytes].map(b => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('')

t.test('a GBK notification is decoded with its charset and verified over its GBK bytes', async t => {
  t.equal(new TextDecoder('gbk').decode(gbk.商品), '商品', 'fixture bytes are GBK')
  t.equal(new TextDecoder('gbk').decode(gbk.测试订单), '测试订单', 'fixture bytes are GBK')
  const test = await buildTestApp(t, { env: { ...env, PAYNOTIFY_ALIPAY_PUBLIC_KEY: publicPem } })
  const ascii = paid('G1', '2026112722007701', '66.60', { charset: 'GBK' })
  const { subject: _s, ...asciiFields } = ascii
  const fields = new Map<string, Buffer>(Object.entries(asciiFields).map(([k, v]) => [k, Buffer.from(v, 'latin1')]))
  fields.set('subject', gbk.商品)
  fields.set('body', gbk.测试订单)
  // Alipay signs the sorted pairs as bytes in the notification's charset.
  const content = Buffer.concat([...fields.keys()].sort().filter(k => k !== 'sign_type').flatMap((k, i) => [Buffer.from(`${i === 0 ? '' : '&'}${k}=`), fields.get(k)!]))
  const sign = createSign('RSA-SHA256').update(content).sign(alipayKeys.privateKey, 'base64')
  const encoded = [...fields].map(([k, v]) => `${k}=${k === 'subject' || k === 'body' ? percent(v) : encodeURIComponent(v.toString('latin1'))}`)
  const body = `${encoded.join('&')}&sign=${encodeURIComponent(sign)}`
  await deliver(t, test, body, 'application/x-www-form-urlencoded; charset=GBK')
  const view = await order(test.app, 'G1')
  t.equal(view.status, 'paid')
  t.equal(view.paidAmount, 6660)

  const adapter = alipayAdapterFromConfig(loadConfig(env).gateways.alipay)!
  const verified = adapter.verify({ body: Buffer.from(body), mediaType: 'application/x-www-form-urlencoded', contentType: 'application/x-www-form-urlencoded', headers: {} }, new Date())
  t.equal(verified.params.get('subject'), '商品')
  t.equal(verified.params.get('body'), '测试订单')

  // The same text signed as UTF-8 is not what Alipay signs for a GBK notification.
  const utf8Signed = docSign({ ...asciiFields, subject: '商品', body: '测试订单' })
  await refused(t, test, body.replace(/sign=[^&]+$/, `sign=${encodeURIComponent(utf8Signed)}`), 401)
  // Bytes that are not GBK (a lead byte with no valid trail byte) are refused before any signature check.
  await refused(t, test, body.replace(percent(gbk.商品), '%81%20'), 400)
  await refused(t, test, body.replace('charset=GBK', 'charset=big5'), 400)
})

t.test('configuration: both key forms work; half or bad configuration stops the start; unconfigured is 404', async t => {
  const unconfigured = await buildTestApp(t)
  const res = await post(unconfigured.app, signedBody(paid('U1', '2026112722008801', '1.00')))
  t.equal(res.statusCode, 404)
  t.equal(eventCount(unconfigured), 0)

  const pemApp = await buildTestApp(t, { env: { ...env, PAYNOTIFY_ALIPAY_PUBLIC_KEY: publicPem.replaceAll('\n', '\\n') } })
  await deliver(t, pemApp, signedBody(paid('K1', '2026112722008802', '1.00')))

  const registry = (extra: Record<string, string>) => createGatewayRegistry(loadConfig({ PAYNOTIFY_DB: ':memory:', ...extra }), testSecrets)
  t.throws(() => registry({ PAYNOTIFY_ALIPAY_PUBLIC_KEY: publicBare }), /PAYNOTIFY_ALIPAY_PUBLIC_KEY and PAYNOTIFY_ALIPAY_APP_ID must be set together/)
  t.throws(() => registry({ PAYNOTIFY_ALIPAY_APP_ID: appId }), /must be set together/)
  t.throws(() => registry({ PAYNOTIFY_ALIPAY_PUBLIC_KEY: 'not a key', PAYNOTIFY_ALIPAY_APP_ID: appId }), /PAYNOTIFY_ALIPAY_PUBLIC_KEY is not an RSA public key/)
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString()
  t.throws(() => registry({ PAYNOTIFY_ALIPAY_PUBLIC_KEY: ec, PAYNOTIFY_ALIPAY_APP_ID: appId }), /an RSA key is required/)
  t.ok(registry(env).has('alipay'))
  t.notOk(registry({}).has('alipay'))
})
