import t from 'tap'
import { retryMinutes, simulatedGateways } from '../../src/cli/simulate-gateways.js'
import { captureServer, localMachine, runCli, type Captured } from './toolkit-helpers.js'

/** The delivery id each gateway's retries share. */
function deliveryId (gateway: string, request: Captured): string {
  if (gateway === 'generic' || gateway === 'alipay') return new URLSearchParams(request.body.toString()).get('notify_id')!
  if (gateway === 'standard') return String(request.headers['webhook-id'])
  return (JSON.parse(request.body.toString()) as { id: string }).id
}

t.test("an endpoint that never acks gets each gateway's number of attempts, spaced by its schedule", async t => {
  const { env } = await localMachine(t)
  const refusing = await captureServer(t, () => ({ status: 503, body: 'fail' }))
  for (const gateway of simulatedGateways) {
    const before = refusing.requests.length
    // A minute of the schedule lasts 1 ms for the two gateways whose gaps are checked, else nothing.
    const minuteMs = gateway === 'wechatpay' || gateway === 'standard' ? '1' : '0'
    const run = await runCli(['simulate', '--to', refusing.url, '--gateway', gateway, '--orders', '1', '--refunds', '0', '--duplicates', '0', '--seed', '3', '--minute-ms', minuteMs, '--json'], env)
    t.equal(run.code, 1, `${gateway}: nothing acked`)
    const attempts = new Map<string, number[]>()
    for (const request of refusing.requests.slice(before)) attempts.set(deliveryId(gateway, request), [...(attempts.get(deliveryId(gateway, request)) ?? []), request.at])
    t.ok(attempts.size >= 1)
    for (const [id, times] of attempts) {
      t.equal(times.length, retryMinutes[gateway].length + 1, `${gateway} ${id}: the first attempt and ${retryMinutes[gateway].length} retries`)
      if (minuteMs === '0') continue
      // Timers never fire early (1 ms of rounding aside); late is fine under load.
      const gaps = times.slice(1).map((time, i) => time - times[i]!)
      t.ok(gaps.every((gap, i) => gap >= retryMinutes[gateway][i]! - 1), `${gateway}: each gap at least its share of ${retryMinutes[gateway].join(', ')} minutes`)
    }
  }
})
