import type { FastifyInstance } from 'fastify'
import t from 'tap'
import type { AttemptResult } from '../../src/outbound/dispatcher.js'
import type { Outbound } from '../../src/outbound/runtime.js'
import { adminAuth } from '../helpers.js'
import { callbackParams, createEndpoint, sendCallback, startOutboundApp } from './harness.js'
import { startReceiver } from './receiver.js'

// The outbound figures of GET /metrics (issue 12): attempts by the state they left their delivery in, and deliveries not done yet.

async function figures (app: FastifyInstance): Promise<{ delivered: number, failed: number, dead: number, pending: number }> {
  const res = await app.inject({ url: '/metrics', headers: adminAuth })
  if (res.statusCode !== 200) throw new Error(`GET /metrics answered ${res.statusCode}`)
  const value = (series: string): number => {
    const line = res.body.split('\n').find(line => line.startsWith(`${series} `))
    if (line === undefined) throw new Error(`no ${series} in the scrape`)
    return Number(line.slice(series.length + 1))
  }
  return {
    delivered: value('paynotify_outbound_attempts_total{result="delivered"}'),
    failed: value('paynotify_outbound_attempts_total{result="failed"}'),
    dead: value('paynotify_outbound_attempts_total{result="dead"}'),
    pending: value('paynotify_outbound_deliveries_pending')
  }
}

/** Resolves once the dispatcher has recorded `count` more attempts (it records each just after its answer). */
async function attemptsRecorded (outbound: Outbound, count: number): Promise<AttemptResult[]> {
  const results: AttemptResult[] = []
  return await new Promise(resolve => {
    const stop = outbound.dispatcher.observeAttempts(result => {
      results.push(result)
      if (results.length === count) {
        stop()
        resolve(results)
      }
    })
  })
}

t.test('attempts are counted by result and deliveries not done yet are a gauge', async t => {
  let release = (): void => {}
  const gate = new Promise<void>(resolve => { release = resolve })
  // Each message's first attempt waits for the gate, then fails (500); its retry is delivered.
  const receiver = await startReceiver(t, (request, r) => r.attemptsOf(request.id).length === 1 ? { hold: gate, status: 500 } : { status: 200 })
  const { app, outbound } = await startOutboundApp(t)
  t.same(await figures(app), { delivered: 0, failed: 0, dead: 0, pending: 0 })
  await createEndpoint(app, { url: `${receiver.url}/hooks` }, receiver)
  const recorded = attemptsRecorded(outbound, 4)
  await sendCallback(app, callbackParams('metrics-1', 'paid', 5_000))
  await receiver.until(r => r.requests.length === 1)
  t.same(await figures(app), { delivered: 0, failed: 0, dead: 0, pending: 2 }, 'order.updated in flight, order.paid behind it: two pending, nothing recorded')
  release()
  t.same((await recorded).sort(), ['delivered', 'delivered', 'failed', 'failed'])
  t.same(await figures(app), { delivered: 2, failed: 2, dead: 0, pending: 0 }, 'each message failed once, then was delivered')
})

t.test('a message that fails its last attempt counts as dead', async t => {
  const receiver = await startReceiver(t, () => ({ status: 500 }))
  // The harness's schedule: 4 attempts per message, then the dead letter.
  const { app, outbound } = await startOutboundApp(t)
  await createEndpoint(app, { url: `${receiver.url}/hooks` }, receiver)
  const recorded = attemptsRecorded(outbound, 8)
  await sendCallback(app, callbackParams('metrics-2', 'paid', 5_000))
  const results = await recorded
  t.same(results.filter(result => result === 'dead').length, 2, 'both messages dead-lettered')
  t.same(await figures(app), { delivered: 0, failed: 6, dead: 2, pending: 0 })
})
