import { join } from 'node:path'
import t from 'tap'
import { adminAuth, merchantAuth, tempDir, testSecrets } from '../helpers.js'
import { allGatewaysEnv, genuineCallback, impostor, standardSecret, stripeSecret, wechatpayApiV3Key, type SignedRequest } from './gateway-keys.js'
import { startService } from '../service-process.js'
import { httpRequest, serverEnv } from './helpers.js'

// Issue 5 §8: a run at info level — callbacks for every gateway, admin and merchant calls with
// their tokens, refused forgeries — writes no secret, no token and no full raw body to its logs.

t.test('info-level logs hold no secret, token, signature or full body', async t => {
  const dbPath = join(tempDir(t, 'paynotify-logs-'), 'logs.db')
  const server = await startService(t, serverEnv(dbPath, { ...allGatewaysEnv, PAYNOTIFY_LOG_LEVEL: 'info' }))
  const gateways = ['generic', 'alipay', 'stripe', 'standard', 'wechatpay']

  const sent: SignedRequest[] = []
  const forbidden = new Set<string>([
    testSecrets.genericSecret, testSecrets.adminToken, testSecrets.merchantToken,
    stripeSecret, standardSecret, standardSecret.slice('whsec_'.length), wechatpayApiV3Key, impostor.hmacSecret
  ])
  const post = async (gateway: string, request: SignedRequest): Promise<number> => {
    sent.push(request)
    const response = await httpRequest(`${server.url}/notify/${gateway}`, { method: 'POST', headers: request.headers, body: request.body })
    return response.ok ? response.status : 0
  }
  for (const gateway of gateways) {
    const status = await post(gateway, genuineCallback(gateway, { orderId: `log-${gateway}` })!)
    t.ok(status >= 200 && status < 300, `${gateway}: genuine callback accepted`)
    t.equal(await post(gateway, genuineCallback(gateway, { sign: gateway === 'alipay' || gateway === 'wechatpay' ? { key: impostor.rsa } : { secret: impostor.hmacSecret } })!), 401, `${gateway}: forgery refused`)
    t.equal(await post(gateway, genuineCallback(gateway, { field: gateway === 'generic' ? 'amount' : 'note', value: gateway === 'generic' ? '1e3' : 'x' })!) < 500, true)
  }
  for (const request of sent) {
    // The whole body, and each signature value on its own (form `sign`, signature headers).
    forbidden.add(request.body)
    const sign = new URLSearchParams(request.body).get('sign')
    if (sign !== null && sign.length > 20) forbidden.add(sign)
    for (const [name, value] of Object.entries(request.headers)) if (/signature/.test(name)) forbidden.add(value.replace(/^t=\d+,v1=/, '').replace(/^v1,/, ''))
  }

  const admin = await httpRequest(`${server.url}/admin/orders/log-generic`, { headers: adminAuth })
  t.equal(admin.ok && admin.status, 200, 'admin query with the token')
  t.equal((await httpRequest(`${server.url}/admin/events?limit=5`, { headers: adminAuth })).ok, true)
  const wrongToken = 'Bearer almost-the-admin-token-0123456789'
  forbidden.add(wrongToken.slice('Bearer '.length))
  const refusedAdmin = await httpRequest(`${server.url}/admin/orders/log-generic`, { headers: { authorization: wrongToken } })
  t.equal(refusedAdmin.ok && refusedAdmin.status, 401, 'admin query with a wrong token refused')
  const swapped = await httpRequest(`${server.url}/orders`, { method: 'POST', headers: { ...adminAuth, 'content-type': 'application/json' }, body: '{"order_id":"log-order","amount":"1.00"}' })
  t.equal(swapped.ok && swapped.status, 401, 'merchant route with the admin token refused')
  const order = await httpRequest(`${server.url}/orders`, { method: 'POST', headers: { ...merchantAuth, 'content-type': 'application/json' }, body: '{"order_id":"log-order","amount":"1.00"}' })
  t.equal(order.ok && order.status, 201, 'merchant registration with the token')

  t.same(await server.stop(), { code: 0, signal: null })
  const output = server.output()
  // The run really logged at info level: requests and refusals (an accepted callback may log nothing: the log has it).
  t.match(output, /"msg":"incoming request"/, 'requests are logged')
  t.match(output, /"code":"bad_signature"/, 'refused forgeries are logged')
  t.match(output, /"code":"malformed"/, 'malformed callbacks are logged')
  const leaks = [...forbidden].filter(secret => secret.length >= 8 && output.includes(secret))
  t.same(leaks.map(s => s.length > 60 ? `${s.slice(0, 60)}…` : s), [], 'no secret, token, signature or full body in the logs')
  t.notMatch(output, /authorization|bearer /i, 'no Authorization header in the logs')
  t.comment(`log lines checked: ${output.split('\n').length}, values searched for: ${forbidden.size}`)
})
