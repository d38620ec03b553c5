#!/usr/bin/env node
// Regenerates the sample streams in this directory, expected.json, and the table in
// events/README.md. Each scenario posts real signed callbacks into the real app on a
// fresh temporary database with a fixed clock, checks that the service ends in the
// states the scenario promises (hand-written below, never read back from the service),
// and exports the log through the same code as `paynotify export`.
//
//   npm run build && node events/samples/generate.mjs [--out DIR]
//
// Request ids are random UUIDs, so a regenerated file differs from the committed one
// in requestId and hashes only. Committed samples are facts: regenerate only to add one.
import { createHmac } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const here = dirname(fileURLToPath(import.meta.url))
const dist = join(here, '..', '..', 'dist')
const { buildApp } = await import(join(dist, 'app.js'))
const { loadConfig } = await import(join(dist, 'config.js'))
const { openStore } = await import(join(dist, 'store.js'))
const { exportLines, resolveExportRange } = await import(join(dist, 'event-log', 'export.js'))
const { signGenericParams } = await import(join(dist, 'gateways', 'generic.js'))
const { formatMinorUnits } = await import(join(dist, 'orders', 'money.js'))
const { findOrder } = await import(join(dist, 'orders', 'queries.js'))

/** Public sample secrets: the raw bodies in the samples are signed with this generic secret (and Stripe's with the whsec_ below). */
const sampleStripeSecret = 'whsec_c2FtcGxlLXN0cmlwZS1zZWNyZXQtMDEyMzQ1Njc4OQ'
const sampleSecrets = Object.freeze({
  genericSecret: 'sample-generic-secret-0123456789',
  adminToken: 'sample-admin-token-0123456789',
  merchantToken: 'sample-merchant-token-0123456789'
})

const start = Date.parse('2026-03-02T09:00:00.000Z')
const minutes = m => m * 60

/*
 * Steps: `order` registers an order (POST /orders); `callback` posts generic parameters
 * (signed here; `timestamp` is the clock unless given; `json: true` posts JSON instead of a
 * form); `stripe` posts a Stripe event ({ id, type, object }, signed here, `created` the
 * clock); `resend` posts the exact bytes of an earlier step again; `answer` is the status the
 * service must give (200 unless said). `at` is seconds after the scenario starts. A step's
 * `expect` promises states right after it (a checkpoint); `expected` promises the final states.
 */
const scenarios = [
  {
    name: 'happy-path',
    title: 'Happy path',
    story: 'The merchant registers two orders; the gateway reports the first pending, then paid; the second (JPY, posted as JSON) paid. Each callback arrives once.',
    steps: [
      { at: 0, order: { order_id: 'HP-1001', amount: '88.88', currency: 'CNY' } },
      { at: 5, order: { order_id: 'HP-1002', amount: '1200', currency: 'JPY' } },
      { at: 30, callback: { order_id: 'HP-1001', amount: '88.88', currency: 'CNY', status: '0', notify_id: 'hp-1001-1', trade_no: 'T20260302HP1001' } },
      { at: 42, callback: { order_id: 'HP-1001', amount: '88.88', currency: 'CNY', status: '1', notify_id: 'hp-1001-2', trade_no: 'T20260302HP1001' } },
      { at: 60, callback: { order_id: 'HP-1002', amount: '1200', currency: 'JPY', status: 'paid', notify_id: 'hp-1002-1', trade_no: 'T20260302HP1002' }, json: true }
    ],
    expected: {
      'HP-1001': { status: 'paid', anomalies: [], expectedAmount: 8888, expectedCurrency: 'CNY', paidAmount: 8888, refundedAmount: 0, currency: 'CNY', duplicateCount: 0 },
      'HP-1002': { status: 'paid', anomalies: [], expectedAmount: 1200, expectedCurrency: 'JPY', paidAmount: 1200, refundedAmount: 0, currency: 'JPY', duplicateCount: 0 }
    }
  },
  {
    name: 'gateway-retries',
    title: 'Gateway retries',
    story: 'The gateway did not see the ack and retried: GR-2001 paid three times with one notify_id (re-signed at +4 min and +14 min, as the sender does), then a twin report of the same trade under a new notify_id; GR-2002 carries no notify_id and its identical body is delivered twice (dedup by the hash of the signed parameters).',
    steps: [
      { at: 0, order: { order_id: 'GR-2001', amount: '120.00' } },
      { at: 1, order: { order_id: 'GR-2002', amount: '50.00' } },
      { at: 20, callback: { order_id: 'GR-2001', amount: '120.00', status: '1', notify_id: 'gr-2001-1', trade_no: 'T20260302GR2001' } },
      { at: 20 + minutes(4), callback: { order_id: 'GR-2001', amount: '120.00', status: '1', notify_id: 'gr-2001-1', trade_no: 'T20260302GR2001' } },
      { at: 20 + minutes(14), callback: { order_id: 'GR-2001', amount: '120.00', status: '1', notify_id: 'gr-2001-1', trade_no: 'T20260302GR2001' } },
      { at: 20 + minutes(15), callback: { order_id: 'GR-2001', amount: '120.00', status: 'success', notify_id: 'gr-2001-2', trade_no: 'T20260302GR2001' } },
      { at: minutes(20), callback: { order_id: 'GR-2002', amount: '50.00', status: '1', trade_no: 'T20260302GR2002' } },
      { at: minutes(20) + 60, resend: 6 }
    ],
    expected: {
      'GR-2001': { status: 'paid', anomalies: [], expectedAmount: 12000, expectedCurrency: 'CNY', paidAmount: 12000, refundedAmount: 0, currency: 'CNY', duplicateCount: 3 },
      'GR-2002': { status: 'paid', anomalies: [], expectedAmount: 5000, expectedCurrency: 'CNY', paidAmount: 5000, refundedAmount: 0, currency: 'CNY', duplicateCount: 1 }
    }
  },
  {
    name: 'out-of-order',
    title: 'Out of order',
    story: "OOO-3001's full refund arrives before its payment (held as refund_before_payment until the payment lands); OOO-3002's late 'failed' and OOO-3003's late 'pending' arrive after 'paid' and change nothing.",
    steps: [
      { at: 0, order: { order_id: 'OOO-3001', amount: '200.00' } },
      { at: 1, order: { order_id: 'OOO-3002', amount: '75.50' } },
      { at: 2, order: { order_id: 'OOO-3003', amount: '19.99' } },
      {
        at: 30,
        callback: { order_id: 'OOO-3001', amount: '200.00', status: '3', notify_id: 'ooo-3001-2', trade_no: 'T20260302OOO3001', refund_no: 'R20260302OOO3001' },
        expect: { 'OOO-3001': { status: 'awaiting_payment', anomalies: ['refund_before_payment'], paidAmount: 0, refundedAmount: 20000 } }
      },
      { at: 31, callback: { order_id: 'OOO-3002', amount: '75.50', status: '1', notify_id: 'ooo-3002-2', trade_no: 'T20260302OOO3002' } },
      { at: 35, callback: { order_id: 'OOO-3003', amount: '19.99', status: '1', notify_id: 'ooo-3003-2', trade_no: 'T20260302OOO3003' } },
      {
        at: 40,
        callback: { order_id: 'OOO-3002', amount: '75.50', status: '2', notify_id: 'ooo-3002-1', trade_no: 'T20260302OOO3002' },
        expect: { 'OOO-3002': { status: 'paid', anomalies: [], paidAmount: 7550 } }
      },
      { at: 50, callback: { order_id: 'OOO-3001', amount: '200.00', status: '1', notify_id: 'ooo-3001-1', trade_no: 'T20260302OOO3001' } },
      { at: 55, callback: { order_id: 'OOO-3003', amount: '19.99', status: '0', notify_id: 'ooo-3003-1', trade_no: 'T20260302OOO3003' } }
    ],
    expected: {
      'OOO-3001': { status: 'refunded', anomalies: [], expectedAmount: 20000, expectedCurrency: 'CNY', paidAmount: 20000, refundedAmount: 20000, currency: 'CNY', duplicateCount: 0 },
      'OOO-3002': { status: 'paid', anomalies: [], expectedAmount: 7550, expectedCurrency: 'CNY', paidAmount: 7550, refundedAmount: 0, currency: 'CNY', duplicateCount: 0 },
      'OOO-3003': { status: 'paid', anomalies: [], expectedAmount: 1999, expectedCurrency: 'CNY', paidAmount: 1999, refundedAmount: 0, currency: 'CNY', duplicateCount: 0 }
    }
  },
  {
    name: 'partial-then-full-refund',
    title: 'Partial, then full refund',
    story: 'PR-4001 is paid 300.00 and refunded 100.00 (partially_refunded); PR-4002 is paid 300.00, refunded 100.00 then the remaining 200.00 (refunded). The first refund of PR-4002 is retried once and counted once.',
    steps: [
      { at: 0, order: { order_id: 'PR-4001', amount: '300.00' } },
      { at: 1, order: { order_id: 'PR-4002', amount: '300.00' } },
      { at: 20, callback: { order_id: 'PR-4001', amount: '300.00', status: '1', notify_id: 'pr-4001-1', trade_no: 'T20260302PR4001' } },
      { at: 21, callback: { order_id: 'PR-4002', amount: '300.00', status: '1', notify_id: 'pr-4002-1', trade_no: 'T20260302PR4002' } },
      { at: minutes(60), callback: { order_id: 'PR-4001', amount: '100.00', status: '3', notify_id: 'pr-4001-2', trade_no: 'T20260302PR4001', refund_no: 'R20260302PR4001A' } },
      {
        at: minutes(61),
        callback: { order_id: 'PR-4002', amount: '100.00', status: '3', notify_id: 'pr-4002-2', trade_no: 'T20260302PR4002', refund_no: 'R20260302PR4002A' },
        expect: { 'PR-4002': { status: 'partially_refunded', anomalies: [], paidAmount: 30000, refundedAmount: 10000 } }
      },
      { at: minutes(65), callback: { order_id: 'PR-4002', amount: '100.00', status: '3', notify_id: 'pr-4002-2', trade_no: 'T20260302PR4002', refund_no: 'R20260302PR4002A' } },
      { at: minutes(120), callback: { order_id: 'PR-4002', amount: '200.00', status: 'refunded', notify_id: 'pr-4002-3', trade_no: 'T20260302PR4002', refund_no: 'R20260302PR4002B' } }
    ],
    expected: {
      'PR-4001': { status: 'partially_refunded', anomalies: [], expectedAmount: 30000, expectedCurrency: 'CNY', paidAmount: 30000, refundedAmount: 10000, currency: 'CNY', duplicateCount: 0 },
      'PR-4002': { status: 'refunded', anomalies: [], expectedAmount: 30000, expectedCurrency: 'CNY', paidAmount: 30000, refundedAmount: 30000, currency: 'CNY', duplicateCount: 1 }
    }
  },
  {
    name: 'amount-tampering',
    title: 'Amount tampering',
    story: 'AT-5001 is registered at 88.88 but a validly signed callback reports 0.01 paid (a tampered checkout price); AT-5002 is registered in CNY and paid in USD. Both are paid and flagged for review. A forged callback (wrong sign) for AT-5001 claiming 88.88 is refused with 401 and leaves no trace in the log.',
    steps: [
      { at: 0, order: { order_id: 'AT-5001', amount: '88.88', currency: 'CNY' } },
      { at: 1, order: { order_id: 'AT-5002', amount: '100.00', currency: 'CNY' } },
      { at: 20, callback: { order_id: 'AT-5001', amount: '0.01', currency: 'CNY', status: '1', notify_id: 'at-5001-1', trade_no: 'T20260302AT5001' } },
      { at: 25, callback: { order_id: 'AT-5001', amount: '88.88', currency: 'CNY', status: '1', notify_id: 'at-5001-forged', trade_no: 'T20260302AT5001X' }, secret: 'not-the-gateway-secret-000000', answer: 401 },
      { at: 30, callback: { order_id: 'AT-5002', amount: '100.00', currency: 'USD', status: '1', notify_id: 'at-5002-1', trade_no: 'T20260302AT5002' } }
    ],
    expected: {
      'AT-5001': { status: 'paid', anomalies: ['amount_mismatch'], expectedAmount: 8888, expectedCurrency: 'CNY', paidAmount: 1, refundedAmount: 0, currency: 'CNY', duplicateCount: 0 },
      'AT-5002': { status: 'paid', anomalies: ['currency_mismatch'], expectedAmount: 10000, expectedCurrency: 'CNY', paidAmount: 10000, refundedAmount: 0, currency: 'USD', duplicateCount: 0 }
    }
  },
  {
    name: 'double-payment',
    title: 'Double payment',
    story: 'DP-6001 is paid twice by two different gateway transactions (a real double charge: duplicate_payment, paid 119.80); the second report of the first transaction under a new notify_id is the same fact, not a third payment.',
    steps: [
      { at: 0, order: { order_id: 'DP-6001', amount: '59.90' } },
      { at: 20, callback: { order_id: 'DP-6001', amount: '59.90', status: '1', notify_id: 'dp-6001-1', trade_no: 'T20260302DP6001A' } },
      { at: 90, callback: { order_id: 'DP-6001', amount: '59.90', status: '1', notify_id: 'dp-6001-2', trade_no: 'T20260302DP6001B' } },
      { at: 95, callback: { order_id: 'DP-6001', amount: '59.90', status: 'success', notify_id: 'dp-6001-3', trade_no: 'T20260302DP6001A' } }
    ],
    expected: {
      'DP-6001': { status: 'paid', anomalies: ['duplicate_payment'], expectedAmount: 5990, expectedCurrency: 'CNY', paidAmount: 11980, refundedAmount: 0, currency: 'CNY', duplicateCount: 1 }
    }
  },
  {
    name: 'unknown-order',
    title: 'Unknown order',
    story: 'The merchant registers orders (UO-7001, paid normally); a validly signed callback pays UO-7999, which was never registered: it is recorded and flagged unknown_order.',
    steps: [
      { at: 0, order: { order_id: 'UO-7001', amount: '42.00' } },
      { at: 20, callback: { order_id: 'UO-7001', amount: '42.00', status: '1', notify_id: 'uo-7001-1', trade_no: 'T20260302UO7001' } },
      { at: 40, callback: { order_id: 'UO-7999', amount: '42.00', status: '1', notify_id: 'uo-7999-1', trade_no: 'T20260302UO7999' } }
    ],
    expected: {
      'UO-7001': { status: 'paid', anomalies: [], expectedAmount: 4200, expectedCurrency: 'CNY', paidAmount: 4200, refundedAmount: 0, currency: 'CNY', duplicateCount: 0 },
      'UO-7999': { status: 'paid', anomalies: ['unknown_order'], expectedAmount: null, expectedCurrency: null, paidAmount: 4200, refundedAmount: 0, currency: 'CNY', duplicateCount: 0 }
    }
  },
  {
    name: 'refund-checks',
    title: 'Refunds checked like payments',
    story: 'RC-8001 is paid 20.00 CNY and then reported refunded 2000 JPY: a refund in another currency is flagged and never summed (refund_currency_mismatch). RC-8002 is paid 100.00 and one refund of 50.00 is reported twice, once with trade_no and once without: counted once, partially refunded (duplicate_refund). RC-8003 is registered at 10.00 and a validly signed callback reports 0.00 paid: kept and flagged, never paid (zero_amount_payment).',
    steps: [
      { at: 0, order: { order_id: 'RC-8001', amount: '20.00' } },
      { at: 1, order: { order_id: 'RC-8002', amount: '100.00' } },
      { at: 2, order: { order_id: 'RC-8003', amount: '10.00' } },
      { at: 20, callback: { order_id: 'RC-8001', amount: '20.00', currency: 'CNY', status: '1', notify_id: 'rc-8001-1', trade_no: 'T20260302RC8001' } },
      { at: 30, callback: { order_id: 'RC-8001', amount: '2000', currency: 'JPY', status: '3', notify_id: 'rc-8001-2', trade_no: 'T20260302RC8001' } },
      { at: 40, callback: { order_id: 'RC-8002', amount: '100.00', status: '1', notify_id: 'rc-8002-1', trade_no: 'T20260302RC8002' } },
      { at: minutes(30), callback: { order_id: 'RC-8002', amount: '50.00', status: '3', notify_id: 'rc-8002-2', trade_no: 'T20260302RC8002' } },
      { at: minutes(31), callback: { order_id: 'RC-8002', amount: '50.00', status: 'refunded', notify_id: 'rc-8002-3' } },
      { at: minutes(40), callback: { order_id: 'RC-8003', amount: '0.00', status: '1', notify_id: 'rc-8003-1', trade_no: 'T20260302RC8003' } }
    ],
    expected: {
      'RC-8001': { status: 'paid', anomalies: ['refund_currency_mismatch'], expectedAmount: 2000, expectedCurrency: 'CNY', paidAmount: 2000, refundedAmount: 0, currency: 'CNY', duplicateCount: 0 },
      'RC-8002': { status: 'partially_refunded', anomalies: ['duplicate_refund'], expectedAmount: 10000, expectedCurrency: 'CNY', paidAmount: 10000, refundedAmount: 5000, currency: 'CNY', duplicateCount: 0 },
      'RC-8003': { status: 'awaiting_payment', anomalies: ['amount_mismatch', 'zero_amount_payment'], expectedAmount: 1000, expectedCurrency: 'CNY', paidAmount: 0, refundedAmount: 0, currency: 'CNY', duplicateCount: 0 }
    }
  },
  {
    name: 'stripe-unattributed',
    title: 'Stripe refunds without order metadata',
    story: "A refund made in the Stripe Dashboard carries no order metadata. SU-9001's refund (charge.refunded) arrives before its payment: it is kept as an unattributed report and joins the order when the payment_intent.succeeded naming SU-9001 arrives with the same PaymentIntent, so the order ends refunded. A refund.failed about a PaymentIntent no order has stays unattributed (GET /admin/unattributed lists it). SU-9002 is paid 20.00 USD through Stripe and then reported refunded \"20.00\" by the generic gateway with no currency (so CNY): another gateway and another currency, flagged and not counted.",
    steps: [
      { at: 0, order: { order_id: 'SU-9001', amount: '20.00', currency: 'USD' } },
      { at: 1, order: { order_id: 'SU-9002', amount: '20.00', currency: 'USD' } },
      {
        at: 20,
        stripe: { id: 'evt_SU9001_refund', type: 'charge.refunded', object: { id: 'ch_SU9001', object: 'charge', amount: 2000, amount_refunded: 2000, currency: 'usd', payment_intent: 'pi_SU9001', refunded: true, metadata: {} } },
        expect: { 'SU-9001': { status: 'awaiting_payment', anomalies: [], paidAmount: 0, refundedAmount: 0 } }
      },
      { at: 30, stripe: { id: 'evt_SU9001_paid', type: 'payment_intent.succeeded', object: { id: 'pi_SU9001', object: 'payment_intent', amount: 2000, amount_received: 2000, currency: 'usd', status: 'succeeded', metadata: { order_id: 'SU-9001' } } } },
      { at: 40, stripe: { id: 'evt_SU0000_failed', type: 'refund.failed', object: { id: 're_SU0000', object: 'refund', amount: 500, currency: 'usd', status: 'failed', payment_intent: 'pi_SU0000', charge: 'ch_SU0000', metadata: {} } } },
      { at: 50, stripe: { id: 'evt_SU9002_paid', type: 'payment_intent.succeeded', object: { id: 'pi_SU9002', object: 'payment_intent', amount: 2000, amount_received: 2000, currency: 'usd', status: 'succeeded', metadata: { order_id: 'SU-9002' } } } },
      { at: 60, callback: { order_id: 'SU-9002', amount: '20.00', status: 'refunded', notify_id: 'su-9002-1' } }
    ],
    expected: {
      'SU-9001': { status: 'refunded', anomalies: [], expectedAmount: 2000, expectedCurrency: 'USD', paidAmount: 2000, refundedAmount: 2000, currency: 'USD', duplicateCount: 0 },
      'SU-9002': { status: 'paid', anomalies: ['gateway_mismatch', 'refund_currency_mismatch'], expectedAmount: 2000, expectedCurrency: 'USD', paidAmount: 2000, refundedAmount: 0, currency: 'USD', duplicateCount: 0 }
    }
  }
]

function signedBody (params, secret, json) {
  const sorted = Object.fromEntries(Object.entries(params).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
  const signed = { ...sorted, sign: signGenericParams(sorted, secret) }
  return json
    ? { contentType: 'application/json', body: JSON.stringify(signed) }
    : { contentType: 'application/x-www-form-urlencoded', body: new URLSearchParams(signed).toString() }
}

function stripeRequest (event, clock) {
  const seconds = Math.floor(clock / 1000)
  const body = JSON.stringify({ id: event.id, object: 'event', created: seconds, livemode: false, type: event.type, data: { object: event.object } })
  const signature = createHmac('sha256', sampleStripeSecret).update(`${seconds}.${body}`).digest('hex')
  return { url: '/notify/stripe', headers: { 'content-type': 'application/json', 'stripe-signature': `t=${seconds},v1=${signature}` }, payload: body }
}

async function checkStates (store, promises, when) {
  for (const [orderId, promised] of Object.entries(promises)) {
    const view = await findOrder(store.db, orderId)
    for (const [key, value] of Object.entries(promised)) {
      if (JSON.stringify(view?.[key]) !== JSON.stringify(value)) {
        throw new Error(`${when}: ${orderId}.${key} is ${JSON.stringify(view?.[key])}, the scenario promises ${JSON.stringify(value)}`)
      }
    }
  }
}

async function runScenario (scenario, outDir) {
  const dir = mkdtempSync(join(tmpdir(), 'paynotify-sample-'))
  let clock = start
  const now = () => new Date(clock)
  const dbPath = join(dir, 'sample.db')
  const config = loadConfig({ PAYNOTIFY_DB: dbPath, PAYNOTIFY_LOG_LEVEL: 'silent', PAYNOTIFY_STRIPE_WEBHOOK_SECRET: sampleStripeSecret })
  const store = await openStore(dbPath, { clock: now })
  const app = await buildApp({ config, secrets: sampleSecrets, store, now, logger: false })
  const checkpoints = []
  try {
    const sent = []
    for (const [i, step] of scenario.steps.entries()) {
      clock = start + step.at * 1000
      let request
      if (step.order !== undefined) {
        request = { url: '/orders', headers: { authorization: `Bearer ${sampleSecrets.merchantToken}`, 'content-type': 'application/json' }, payload: JSON.stringify(step.order) }
      } else if (step.stripe !== undefined) {
        request = stripeRequest(step.stripe, clock)
      } else {
        const { contentType, body } = step.resend !== undefined
          ? sent[step.resend]
          : signedBody({ ...step.callback, timestamp: step.callback.timestamp ?? String(clock / 1000) }, step.secret ?? sampleSecrets.genericSecret, step.json === true)
        request = { url: '/notify/generic', headers: { 'content-type': contentType }, payload: body }
        sent[i] = { contentType, body }
      }
      const answer = await app.inject({ method: 'POST', ...request })
      const wanted = step.answer ?? (step.order !== undefined ? 201 : 200)
      if (answer.statusCode !== wanted) throw new Error(`${scenario.name} step ${i}: answered ${answer.statusCode} ${answer.body}, expected ${wanted}`)
      if (step.expect !== undefined) {
        await checkStates(store, step.expect, `${scenario.name} after step ${i}`)
        checkpoints.push({ afterPosition: store.eventLog.tail.position, orders: step.expect })
      }
    }
    await checkStates(store, scenario.expected, `${scenario.name} at the end`)
    const lines = [...exportLines(store.sqlite, resolveExportRange(store.sqlite, {}))].join('')
    writeFileSync(join(outDir, `${scenario.name}.ndjson`), lines)
    return { count: lines.split('\n').length - 1, checkpoints }
  } finally {
    await app.close()
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

const money = (minor, currency) => (minor === null ? '—' : `${formatMinorUnits(minor, currency)} ${currency}`)

/** One README row per order; test/events/samples.test.ts renders the same rows from expected.json. */
function tableRows (expected) {
  const rows = ['| sample | order | status | expected | paid | refunded | duplicates | anomalies |', '|---|---|---|---|---|---|---|---|']
  for (const [name, sample] of Object.entries(expected.samples)) {
    for (const [orderId, o] of Object.entries(sample.orders)) {
      rows.push(`| [${name}](samples/${name}.ndjson) | ${orderId} | ${o.status} | ${money(o.expectedAmount, o.expectedCurrency)} | ${money(o.paidAmount, o.currency)} | ${money(o.refundedAmount, o.currency)} | ${o.duplicateCount} | ${o.anomalies.join(', ') || '—'} |`)
    }
  }
  return rows.join('\n')
}

const { values } = parseArgs({ options: { out: { type: 'string' } } })
const outDir = values.out ?? here
const expected = {
  description: 'The states each sample stream must replay to (paynotify replay <file> --json): orders after the whole file, checkpoints after the event at afterPosition. Written by generate.mjs from its hand-written scenarios.',
  samples: {}
}
for (const scenario of scenarios) {
  const { count, checkpoints } = await runScenario(scenario, outDir)
  expected.samples[scenario.name] = {
    file: `${scenario.name}.ndjson`,
    title: scenario.title,
    story: scenario.story,
    events: count,
    orders: scenario.expected,
    ...(checkpoints.length > 0 ? { checkpoints } : {})
  }
  process.stdout.write(`${scenario.name}.ndjson: ${count} events, ${Object.keys(scenario.expected).length} orders as promised\n`)
}
writeFileSync(join(outDir, 'expected.json'), JSON.stringify(expected, null, 2) + '\n')
if (values.out === undefined) {
  const readme = join(here, '..', 'README.md')
  const text = readFileSync(readme, 'utf8')
  const begin = '<!-- samples table: generated by samples/generate.mjs -->'
  const end = '<!-- end of samples table -->'
  const from = text.indexOf(begin)
  const to = text.indexOf(end)
  if (from === -1 || to === -1) throw new Error(`${readme} lacks the samples table markers`)
  writeFileSync(readme, `${text.slice(0, from + begin.length)}\n${tableRows(expected)}\n${text.slice(to)}`)
}
