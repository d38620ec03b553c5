import { randomUUID } from 'node:crypto'
import fc from 'fast-check'
import type { FastifyInstance, InjectOptions } from 'fastify'
import t from 'tap'
import { createGatewayRegistry } from '../../src/gateways/registry.js'
import { adminAuth, buildTestApp, merchantAuth, testSecrets } from '../helpers.js'
import { allGatewaysEnv, fieldsOf, genuineCallback, signFor, type SignedRequest } from './gateway-keys.js'
import { auditLog, testSeed, type TapTest } from './helpers.js'

// Issue 5 §4: garbage, malformed and hostile callbacks for every configured gateway never crash or
// hang the service, never get a 5xx for the client's fault, and never append a row.

const bodyLimit = 4096
let casesRun = 0
/** The case being answered: named if tap's timeout ends the test on a hang (no shorter deadline here). */
let pending: string | undefined
t.teardown(() => { if (pending !== undefined) console.error(`fuzz: no answer to ${pending}`) })

interface Case {
  gateway: string
  headers: Record<string, string>
  payload: Buffer | string
}

// ── hostile values ──────────────────────────────────────────────────────────

const hostile = [
  "' OR '1'='1", "'; DROP TABLE events; --", '1;DROP/**/TABLE/**/events--', '" OR ""="', '<script>alert(1)</script>',
  '"><img src=x onerror=alert(1)>', '{{7*7}}', '$' + '{7*7}', '../../etc/passwd', '%00', '\u0000', '\r\nX-Injected: 1',
  'Ω≈ç√∫', '订单号', '🙂💸', '\uFEFFBOM', '\u202Eevil', 'a'.repeat(300), '', ' ', 'null', 'undefined', '__proto__', 'constructor'
]
const hostileString = fc.oneof(
  fc.constantFrom(...hostile),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 })
)
const badOrderId = fc.oneof(
  fc.constantFrom(...hostile.filter(s => s !== '' && s !== 'null' && s !== 'undefined' && s !== '__proto__' && s !== 'constructor')),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 80 })
).filter(s => !/^[A-Za-z0-9_.:-]{1,64}$/.test(s))
// Never a valid decimal amount in CNY: exponents, signs, too many places, too many digits, not digits at all.
const badDecimal = fc.oneof(
  fc.constantFrom('1e3', '1E3', '1.5e2', '-1', '-0.01', '0.001', '1.999', '10.0000', '1.', '.5', '01', '+1', ' 1', '1 ', '1,00',
    '0x10', '1_000', 'NaN', 'Infinity', '-Infinity', '１２３', '١٢٣', '9999999999999999', '123456789012345678901234567890', "1' OR '1'='1", '<b>1</b>'),
  fc.tuple(fc.nat(99999), fc.integer({ min: -400, max: 400 })).map(([m, e]) => `${m}e${e}`),
  fc.nat().map(n => `-${n + 1}`),
  fc.tuple(fc.nat(99999), fc.integer({ min: 1, max: 9999 })).map(([a, b]) => `${a}.${String(b).padStart(3, '0')}`),
  fc.bigInt({ min: 10n ** 15n, max: 10n ** 40n }).map(String),
  fc.double({ noDefaultInfinity: false }).filter(d => !Number.isInteger(d) || d < 0).map(d => d.toExponential())
)
// Never a valid JSON amount in minor units (non-negative safe integer): raw JSON text.
const badMinorUnitsJson = fc.oneof(
  fc.constantFrom('1e400', '-1e400', '1e-2', '0.5', '10.01', '9007199254740993', '123456789012345678901234567890', '"1000"', '"10.00"', 'null',
    'true', '[]', '{}', '[1000]', '"1e3"', '-1', '-1000'),
  fc.integer({ max: -1 }).map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter(d => !Number.isInteger(d)).map(d => JSON.stringify(d))
)
// Never a legal id, status, timestamp, app id or charset: not empty and not printable ASCII throughout.
const badIdValue = hostileString.filter(s => s !== '' && !/^[\x21-\x7e]+$/.test(s))
const badCurrency = fc.constantFrom('CN', 'CNYY', 'ZZZ', 'QQQ', '123', '<b>CNY</b>', "CNY' --", '人民币', 'C N Y', 'CNY\u0000', 'c n y')

const now = (): number => Math.floor(Date.now() / 1000)
const corrupted = (gateway: string, field: string, value: string): SignedRequest | undefined => genuineCallback(gateway, { field, value })

// ── the checks every case must pass ─────────────────────────────────────────

async function inject (app: FastifyInstance, options: InjectOptions): Promise<{ statusCode: number, body: string }> {
  const payload = options.payload
  pending = `${options.method} ${options.url} ${Buffer.isBuffer(payload) ? `<${payload.length} bytes>` : JSON.stringify(payload)?.slice(0, 200)}`
  try {
    const response = await app.inject(options)
    return { statusCode: response.statusCode, body: response.body }
  } finally {
    pending = undefined
  }
}

function describe (c: Case): string {
  const payload = Buffer.isBuffer(c.payload) ? `<${c.payload.length} bytes>` : JSON.stringify(c.payload.slice(0, 200))
  return `POST /notify/${c.gateway} ${JSON.stringify(c.headers)} ${payload}`
}

/** Posts a case; throws (so fast-check shrinks and reports it) on a 5xx, a hang, an unexpected 2xx, or any new row. */
async function refusedWithoutTrace (app: FastifyInstance, rows: () => number, c: Case, options: { allow2xx?: boolean } = {}): Promise<number> {
  casesRun++
  const before = rows()
  const response = await inject(app, { method: 'POST', url: `/notify/${encodeURIComponent(c.gateway)}`, headers: c.headers, payload: c.payload })
  if (response.statusCode >= 500) throw new Error(`${response.statusCode} for a client fault: ${describe(c)} → ${response.body}`)
  if (response.statusCode < 400 && options.allow2xx !== true) throw new Error(`${response.statusCode} accepted: ${describe(c)} → ${response.body}`)
  if (rows() !== before) throw new Error(`a row was appended for ${describe(c)} → ${response.statusCode} ${response.body}`)
  return response.statusCode
}

async function property<T> (t: TapTest, name: string, seed: number, numRuns: number, arbitrary: fc.Arbitrary<T>, check: (value: T) => Promise<unknown>): Promise<void> {
  try {
    await fc.assert(fc.asyncProperty(arbitrary, async value => { await check(value) }), { seed, numRuns })
    t.pass(`${name}: ${numRuns} cases`)
  } catch (error) {
    const cause = (error as Error).cause instanceof Error ? ` — ${((error as Error).cause as Error).message}` : ''
    t.fail(`${name} failed (seed ${seed}; PAYNOTIFY_TEST_SEED=${seed} reproduces): ${(error as Error).message}${cause}`)
  }
}

t.test('fuzzed callbacks for every configured gateway: never 5xx, never a hang, never a row', async t => {
  const seed = testSeed()
  t.comment(`fuzz seed ${seed} (PAYNOTIFY_TEST_SEED=${seed} reproduces)`)
  const { app, store, config, dbPath } = await buildTestApp(t, { env: { ...allGatewaysEnv, PAYNOTIFY_BODY_LIMIT: String(bodyLimit) } })
  const gateways = [...createGatewayRegistry(config, testSecrets).keys()]
  t.same(gateways.filter(g => fieldsOf[g] === undefined), [], 'every registered gateway has a fuzz template (add one for a new gateway)')
  t.comment(`gateways fuzzed: ${gateways.join(', ')}`)
  const maxPosition = store.sqlite.prepare('SELECT coalesce(max(position), 0) FROM events').pluck()
  const rows = (): number => maxPosition.get() as number

  const signatureHeaderNames = ['stripe-signature', 'webhook-id', 'webhook-timestamp', 'webhook-signature', 'wechatpay-serial',
    'wechatpay-signature', 'wechatpay-timestamp', 'wechatpay-nonce', 'wechatpay-signature-type', 'content-length', 'content-encoding', 'transfer-encoding']
  const headerValue = fc.oneof(
    fc.string({ unit: 'grapheme-ascii', maxLength: 60 }),
    fc.constantFrom('t=1,v1=00', `t=${now()},v1=${'a'.repeat(64)}`, 'v1,AAAA', 'v1,', 'v1a,xyz', `${now()}`, '-1', '99999999999999999999', 'gzip', 'chunked', '0', '1e3')
  )
  const contentType = fc.option(fc.oneof(
    fc.constantFrom('', 'application/x-www-form-urlencoded', 'application/json', 'application/json; charset=utf-8', 'application/x-www-form-urlencoded; charset=GBK',
      'APPLICATION/JSON', 'Application/X-WWW-Form-Urlencoded', 'text/plain', 'text/html', 'multipart/form-data; boundary=----x', 'application/octet-stream',
      'application/jsonp', 'application/json; charset=latin1', 'application/x-www-form-urlencoded; charset=', ';', 'application/', '*/*', 'application/json, text/plain'),
    fc.string({ unit: 'grapheme-ascii', maxLength: 40 })
  ), { nil: undefined })
  const headers = fc.tuple(contentType, fc.dictionary(fc.constantFrom(...signatureHeaderNames), headerValue, { maxKeys: 4 })).map(([type, extra]) => {
    const result: Record<string, string> = { ...extra }
    // content-length is left to inject unless the fuzzer set it on purpose (a lying length is a case too)
    if (type !== undefined) result['content-type'] = type
    return result
  })
  const formKeys = fc.constantFrom('order_id', 'amount', 'status', 'currency', 'notify_id', 'trade_no', 'sign', 'sign_type', 'timestamp', 'out_trade_no',
    'total_amount', 'trade_status', 'app_id', 'charset', 'refund_fee', 'gmt_refund', '', '%', '%zz', '&', '=', '__proto__')
  const formBody = fc.array(fc.tuple(formKeys, hostileString, fc.boolean()), { maxLength: 12 }).map(pairs =>
    // Some pairs percent-encoded, some raw (raw `%` and non-ASCII make invalid encodings); keys may repeat.
    pairs.map(([k, v, encode]) => encode ? `${encodeURIComponent(k)}=${encodeURIComponent(v)}` : `${k}=${v}`).join('&'))
  const jsonBody = fc.oneof(
    fc.json({ maxDepth: 3 }),
    fc.dictionary(fc.constantFrom('id', 'type', 'data', 'object', 'amount', 'order_id', 'currency', 'resource', 'event_type', 'created', 'metadata'),
      fc.oneof(hostileString, fc.double(), fc.integer(), fc.constant(null), fc.json({ maxDepth: 2 }).map(s => JSON.parse(s) as unknown))).map(o => JSON.stringify(o)),
    fc.constantFrom('{"order_id":"a","order_id":"b"}', '{"amount":1e400}', '{"amount":-0}', '{"a":', '[', '"', '{"__proto__":{"admin":true}}', 'null', '[]', '{}', '1e999')
  )
  const invalidUtf8 = fc.tuple(fc.string({ maxLength: 40 }), fc.constantFrom([0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82]))
    .map(([text, bad]) => Buffer.concat([Buffer.from(`order_id=${text}&amount=`), Buffer.from(bad), Buffer.from('&sign=00')]))
  const anyGateway = fc.oneof({ weight: 9, arbitrary: fc.constantFrom(...gateways) }, { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 40 }) })

  // The templates below must be genuine, or every corrupted variant would fail on its signature alone.
  for (const gateway of gateways) {
    const signed = corrupted(gateway, 'note', 'fine')!
    const before = rows()
    const response = await app.inject({ method: 'POST', url: `/notify/${gateway}`, headers: signed.headers, payload: signed.body })
    t.ok(response.statusCode >= 200 && response.statusCode < 300 && rows() === before + 1, `precondition: an uncorrupted ${gateway} template is accepted and recorded`, { status: response.statusCode, body: response.body })
  }

  await property(t, 'random bytes, forms, JSON and invalid UTF-8 with random content types and signature headers', seed, 6000,
    fc.record({
      gateway: anyGateway,
      headers,
      payload: fc.oneof(fc.uint8Array({ maxLength: 2048 }).map(b => Buffer.from(b)), formBody, jsonBody, invalidUtf8)
    }),
    async c => await refusedWithoutTrace(app, rows, c))

  // A genuine signed callback, truncated, oversized, or posted with a content type its gateway does not take.
  const wrongTypes = ['text/plain', 'multipart/form-data; boundary=x', 'application/octet-stream', 'application/xml', '']
  await property(t, 'truncated, oversized and mistyped signed callbacks', seed + 1, 1500,
    fc.record({
      gateway: fc.constantFrom(...gateways),
      mode: fc.constantFrom('truncate', 'oversize', 'mistype'),
      cut: fc.double({ min: 0, max: 0.999, noNaN: true }),
      pad: fc.integer({ min: 1, max: 2 * bodyLimit }),
      type: fc.constantFrom(...wrongTypes)
    }),
    async ({ gateway, mode, cut, pad, type }) => {
      const signed = corrupted(gateway, 'note', 'fine')!
      const headers = { ...signed.headers }
      let payload = signed.body
      if (mode === 'truncate') payload = payload.slice(0, Math.floor(payload.length * cut))
      if (mode === 'oversize') payload = payload + (gateway === 'generic' || gateway === 'alipay' ? '&pad=' : ' ') + 'x'.repeat(bodyLimit + pad)
      if (mode === 'mistype') headers['content-type'] = type
      // A truncation can leave a body that is still a complete JSON value only if it cut nothing.
      if (payload === signed.body) return
      await refusedWithoutTrace(app, rows, { gateway, headers, payload })
    })

  await property(t, 'validly signed callbacks with one hostile field (order id, amount, currency, status, ids)', seed + 2, 3000,
    fc.constantFrom(...gateways).chain(gateway => {
      const f = fieldsOf[gateway]!
      const amount = f.amountKind === 'decimal' ? badDecimal : badMinorUnitsJson
      const choices: Array<fc.Arbitrary<{ gateway: string, field: string, value: string }>> = [
        badOrderId.map(value => ({ gateway, field: f.orderId, value })),
        amount.map(value => ({ gateway, field: f.amount, value }))
      ]
      if (f.currency !== undefined) choices.push(badCurrency.map(value => ({ gateway, field: f.currency!, value })))
      if (f.others.length > 0) choices.push(fc.tuple(fc.constantFrom(...f.others), badIdValue).map(([field, value]) => ({ gateway, field, value })))
      return fc.oneof(...choices)
    }),
    async ({ gateway, field, value }) => {
      const signed = corrupted(gateway, field, value)!
      if (gateway === 'stripe' && field === fieldsOf.stripe!.orderId) {
        // Stripe acks an event that names no valid order (so Stripe stops retrying it) and keeps it as an
        // unattributed report, in its own stream: the hostile value names no order and is not stored.
        casesRun++
        const before = rows()
        const response = await inject(app, { method: 'POST', url: '/notify/stripe', headers: signed.headers, payload: signed.body })
        const last = store.sqlite.prepare('SELECT position, stream_id, type, data FROM events ORDER BY position DESC LIMIT 1').get() as { position: number, stream_id: string, type: string, data: string }
        if (response.statusCode !== 200 || rows() !== before + 1 || last.stream_id !== '~unattributed:stripe' || last.type !== 'UnattributedReportReceived' ||
          'orderId' in (JSON.parse(last.data) as object)) {
          throw new Error(`not kept as an unattributed report: ${response.statusCode} ${response.body}, last event ${JSON.stringify(last)}`)
        }
        return
      }
      await refusedWithoutTrace(app, rows, { gateway, headers: signed.headers, payload: signed.body })
    })

  await property(t, 'missing and repeated signature headers on genuine callbacks', seed + 3, 500,
    fc.record({ gateway: fc.constantFrom(...gateways.filter(g => g !== 'generic' && g !== 'alipay')), drop: fc.boolean(), pick: fc.nat() }),
    async ({ gateway, drop, pick }) => {
      const signed = corrupted(gateway, 'note', 'fine')!
      const names = Object.keys(signed.headers).filter(name => name !== 'content-type' && name !== 'wechatpay-signature-type')
      const name = names[pick % names.length]!
      const headers = { ...signed.headers }
      // Node joins a repeated header into one value with ", ", which is how the service sees it.
      if (drop) delete headers[name]
      else headers[name] = `${headers[name]}, ${headers[name]}`
      await refusedWithoutTrace(app, rows, { gateway, headers, payload: signed.body })
    })

  // Legal but hostile content: stored verbatim through bound parameters, one row each.
  const printable = fc.oneof(fc.constantFrom("'OR'1'='1", '1;DROP/**/TABLE/**/events--', '<script>alert(1)</script>', '"><svg/onload=alert(1)>', '$' + '{7*7}', '\\x00'),
    fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 60 }).map(s => s.replaceAll(' ', '_')))
    // `&name=` in a value would read as another field of the signing string: refused (400), not legal (README).
    .filter(s => !/&[\w.-]+=/.test(s))
  await property(t, 'SQL and HTML in legal fields are stored verbatim, once', seed + 4, 500,
    fc.record({ orderId: fc.stringMatching(/^[A-Za-z0-9_.:-]{1,64}$/), tradeNo: printable, notifyId: printable }),
    async ({ orderId, tradeNo, notifyId }) => {
      casesRun++
      const before = rows()
      const signed = signFor('generic', { json: '', params: { order_id: orderId, amount: '1.00', status: '1', trade_no: tradeNo, notify_id: `${notifyId}-${randomUUID()}` } })!
      const response = await inject(app, { method: 'POST', url: '/notify/generic', headers: signed.headers, payload: signed.body })
      if (response.statusCode !== 200) throw new Error(`legal callback refused: ${response.statusCode} ${response.body}`)
      if (rows() !== before + 1) throw new Error('not exactly one row')
      const stored = JSON.parse(store.sqlite.prepare('SELECT data FROM events WHERE position = ?').pluck().get(before + 1) as string) as { orderId: string, transactionId: string }
      if (stored.orderId !== orderId || stored.transactionId !== tradeNo) throw new Error(`stored ${JSON.stringify(stored)}`)
    })

  // The other routes: admin queries and merchant registrations with hostile input, with the right token.
  await property(t, 'admin queries and merchant registrations with hostile input', seed + 5, 1000,
    fc.oneof(
      fc.record({ kind: fc.constant('admin' as const), path: fc.constantFrom('/admin/orders', '/admin/events', '/admin/orders/x', '/admin/orders/x/events'), query: fc.dictionary(fc.constantFrom('status', 'gateway', 'anomaly', 'cursor', 'limit', 'after', 'type', 'from', 'to'), hostileString, { maxKeys: 4 }) }),
      fc.record({ kind: fc.constant('merchant' as const), type: fc.constantFrom('application/json', 'application/x-www-form-urlencoded', 'text/plain'), order: fc.oneof(badOrderId, fc.constant('ok-order')), amount: badDecimal, currency: fc.option(badCurrency, { nil: undefined }) })
    ),
    async c => {
      casesRun++
      const before = rows()
      let response: { statusCode: number, body: string }
      if (c.kind === 'admin') {
        const query = new URLSearchParams(c.query).toString()
        response = await inject(app, { method: 'GET', url: `${c.path}${query === '' ? '' : '?'}${query}`, headers: adminAuth })
        if (response.statusCode >= 500) throw new Error(`${response.statusCode} for GET ${c.path}?${query}: ${response.body}`)
      } else {
        const fields = { order_id: c.order, amount: c.amount, ...(c.currency === undefined ? {} : { currency: c.currency }) }
        const payload = c.type === 'application/json' ? JSON.stringify(fields) : new URLSearchParams(fields).toString()
        response = await inject(app, { method: 'POST', url: '/orders', headers: { ...merchantAuth, 'content-type': c.type }, payload })
        if (response.statusCode < 400 || response.statusCode >= 500) throw new Error(`${response.statusCode} for POST /orders ${payload}: ${response.body}`)
      }
      if (rows() !== before) throw new Error('a row was appended')
    })

  const audit = auditLog(dbPath)
  t.ok(audit.chainOk, 'chain intact after the fuzzing')
  t.same(audit.projectionMismatches, [], 'projection equals a fresh fold after the fuzzing')
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'still up')
  t.ok(casesRun >= 10_000, `at least 10,000 generated cases (ran ${casesRun})`)
  t.comment(`fuzz cases run: ${casesRun}`)
})
