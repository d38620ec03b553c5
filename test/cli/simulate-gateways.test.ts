import t from 'tap'
import { AlipaySdk } from 'alipay-sdk'
import { Webhook } from 'standardwebhooks'
import Stripe from 'stripe'
import { Aes, Formatter, Rsa } from 'wechatpay-axios-plugin'
import { simulatedGateways } from '../../src/cli/simulate-gateways.js'
import { findOrder } from '../../src/orders/queries.js'
import { buildTestApp, merchantAuth, testSecrets } from '../helpers.js'
import { captureServer, localMachine, runCli, type Captured } from './toolkit-helpers.js'

interface SimulateJson {
  ok: boolean
  gateway: string
  summary: { orders: number, callbacks: number, duplicates: number, deliveries: number, requests: number, acked: number, unacked: number }
  orders: Array<{ orderId: string, status: string, paidAmount: number, refundedAmount: number, currency: string, anomalies: string[], scenario: string }>
  verified: { orders: number, mismatches: unknown[] } | null
}

// One `paynotify keys` for the whole file: every test reads the same machine's keys.
const machine = localMachine(t)

t.test('every gateway: payments, refunds, closes and failures, repeated and shuffled, end in the states the simulator meant', async t => {
  const { env, variables } = await machine
  const service = await buildTestApp(t, { env: variables })
  const url = await service.app.listen({ host: '127.0.0.1', port: 0 })
  for (const gateway of simulatedGateways) {
    const run = await runCli(['simulate', '--to', url, '--gateway', gateway, '--orders', '10', '--duplicates', '0.4', '--shuffle', '--refunds', '0.7',
      '--seed', '31', '--prefix', gateway, '--json', '--verify'], env)
    t.equal(run.code, 0, `${gateway}: ${run.stderr}`)
    const result = JSON.parse(run.stdout) as SimulateJson
    t.equal(result.gateway, gateway)
    t.same(result.verified, { orders: 10, mismatches: [] }, `${gateway}: --verify finds every order as planned`)
    t.equal(result.summary.acked, result.summary.deliveries)
    t.ok(result.summary.duplicates > 0, `${gateway}: some deliveries repeated`)
    for (const order of result.orders) {
      t.match(await findOrder(service.store.db, order.orderId), { status: order.status, paidAmount: order.paidAmount, refundedAmount: order.refundedAmount, gateway, anomalies: [] }, `${gateway} ${order.orderId}: ${order.scenario}`)
    }
  }
  const gateways = service.store.sqlite.prepare("SELECT json_extract(metadata, '$.gateway') AS gateway, count(*) AS n FROM events GROUP BY 1 ORDER BY 1").all()
  t.same((gateways as Array<{ gateway: string }>).map(row => row.gateway), ['alipay', 'generic', 'standard', 'stripe', 'wechatpay'], 'each gateway recorded through its own route')
})

t.test('on a service that checks registered orders, --no-register and --verify say to register, and simulate registers them first by default', async t => {
  const { env, variables } = await machine
  const service = await buildTestApp(t, { env: variables })
  const url = await service.app.listen({ host: '127.0.0.1', port: 0 })
  const placed = await service.app.inject({ method: 'POST', url: '/orders', headers: { ...merchantAuth, 'content-type': 'application/json' }, payload: { order_id: 'other', amount: '1.00' } })
  t.equal(placed.statusCode, 201)
  const args = ['simulate', '--to', url, '--gateway', 'standard', '--orders', '3', '--seed', '4', '--verify']
  const unregistered = await runCli([...args, '--prefix', 'u', '--no-register'], env)
  t.equal(unregistered.code, 1)
  t.match(unregistered.stdout, /verified 3 orders with \/admin\/orders: 0 match, 3 differ/)
  t.match(unregistered.stdout, /so these are unknown_order: let simulate register the simulated orders first/)
  const registered = await runCli([...args, '--prefix', 'r'], { ...env, PAYNOTIFY_MERCHANT_TOKEN: testSecrets.merchantToken })
  t.equal(registered.code, 0, registered.stdout + registered.stderr)
  t.match(registered.stdout, /registered 3 orders with POST \/orders/)
  t.match(await findOrder(service.store.db, 'r-0001'), { expectedCurrency: 'CNY', anomalies: [] })
  t.equal((await findOrder(service.store.db, 'r-0001'))?.expectedAmount, (await findOrder(service.store.db, 'u-0001'))?.paidAmount || null, 'registered at the amount the gateway then reports')
})

t.test("what simulate sends verifies with each gateway's own library", async t => {
  const { env, keys } = await machine
  const capture = await captureServer(t)
  for (const gateway of ['alipay', 'wechatpay', 'stripe', 'standard']) {
    const run = await runCli(['simulate', '--to', capture.url, '--gateway', gateway, '--orders', '6', '--duplicates', '1', '--refunds', '1', '--seed', '7', '--json'], env)
    t.equal(run.code, 0, run.stderr)
  }
  const to = (gateway: string): Captured[] => capture.requests.filter(request => request.path === `/notify/${gateway}`)
  const header = (request: Captured, name: string): string => String(request.headers[name])
  const repeated = (ids: string[]): boolean => ids.every(id => ids.filter(other => other === id).length === 2)

  const stripe = new Stripe('sk_test_paynotify_unused')
  const stripeIds = to('stripe').map(request => stripe.webhooks.constructEvent(request.body, header(request, 'stripe-signature'), keys.stripe.webhookSecret).id)
  t.ok(stripeIds.length >= 12 && repeated(stripeIds), `stripe.webhooks.constructEvent accepts all ${stripeIds.length}; each event id delivered twice`)
  t.ok(to('stripe').some(r => JSON.parse(r.body.toString()).type === 'charge.refunded'))

  const webhook = new Webhook(keys.standard.secret)
  const standardIds = to('standard').map(request => {
    webhook.verify(request.body.toString(), request.headers as Record<string, string>)
    return header(request, 'webhook-id')
  })
  t.ok(standardIds.length >= 12 && repeated(standardIds), `standardwebhooks Webhook.verify accepts all ${standardIds.length}`)

  const sdk = new AlipaySdk({ appId: keys.alipay.appId, privateKey: keys.alipay.privateKey, keyType: 'PKCS8', alipayPublicKey: keys.alipay.publicKey })
  const alipay = to('alipay').map(request => Object.fromEntries(new URLSearchParams(request.body.toString())))
  t.ok(alipay.length >= 12 && alipay.every(params => sdk.checkNotifySignV2(params)), `alipay-sdk's notify check accepts all ${alipay.length}`)
  t.ok(alipay.every(params => params.app_id === keys.alipay.appId && params.seller_id === keys.alipay.sellerId))
  t.ok(alipay.some(params => params.refund_fee !== undefined && params.gmt_refund !== undefined), 'refund notifications among them')
  t.ok(repeated(alipay.map(params => params.notify_id!)))

  const wechat = to('wechatpay').map(request => {
    const ok = Rsa.verify(Formatter.response(header(request, 'wechatpay-timestamp'), header(request, 'wechatpay-nonce'), request.body.toString()), header(request, 'wechatpay-signature'), keys.wechatpay.publicKey)
    const envelope = JSON.parse(request.body.toString()) as { id: string, event_type: string, resource: { ciphertext: string, nonce: string, associated_data: string } }
    const resource = JSON.parse(Aes.AesGcm.decrypt(envelope.resource.ciphertext, keys.wechatpay.apiV3Key, envelope.resource.nonce, envelope.resource.associated_data)) as Record<string, unknown>
    return { ok, serial: header(request, 'wechatpay-serial'), envelope, resource }
  })
  t.ok(wechat.length >= 12 && wechat.every(w => w.ok && w.serial === keys.wechatpay.serial), `wechatpay-axios-plugin Rsa.verify accepts all ${wechat.length}`)
  t.ok(wechat.every(w => w.resource.out_trade_no !== undefined), 'and Aes.AesGcm.decrypt opens every resource')
  t.ok(repeated(wechat.map(w => w.envelope.id)))
  t.same(new Set(wechat.map(w => w.envelope.event_type)), new Set(['TRANSACTION.SUCCESS', 'REFUND.SUCCESS', 'REFUND.ABNORMAL']))
})
