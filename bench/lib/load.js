import autocannon from 'autocannon'

const formHeaders = { 'content-type': 'application/x-www-form-urlencoded' }

/**
 * One autocannon run of `amount` signed generic callbacks, bodies drawn from
 * `generator` before the run and handed out in setupClient: each connection
 * gets its own slice as pre-built requests (client.setRequests), so the load
 * generator spends no time per request building bodies and every request
 * carries a different body. A fixed amount rather than a duration, so every
 * request sent is answered before the run ends and the 2xx count can be
 * compared exactly with the rows the server appended.
 *
 * Time runs from autocannon's start to the last response, measured here:
 * autocannon's own finish time waits for its next one-second tick.
 * `overallRate` caps the rate (autocannon's limiter lets each connection send
 * its share at the start of every second, so the load comes in bursts).
 */
export async function runLoad ({ url, generator, amount, connections = 100, overallRate, timeoutSeconds = 30 }) {
  const bodies = Array.from({ length: amount }, () => generator.next())
  let handedOut = 0
  const request = body => ({ method: 'POST', path: '/notify/generic', headers: formHeaders, body })
  const options = {
    url,
    connections: Math.min(connections, amount),
    pipelining: 1,
    amount,
    timeout: timeoutSeconds,
    requests: [request(bodies[0])],
    setupClient (client) {
      const share = client.opts.responseMax
      client.setRequests(bodies.slice(handedOut, handedOut + share).map(request))
      handedOut += share
    }
  }
  if (overallRate !== undefined) options.overallRate = overallRate
  let started
  let lastResponse
  const result = await new Promise((resolve, reject) => {
    const instance = autocannon(options, (error, done) => (error ? reject(error) : resolve(done)))
    instance.once('start', () => { started = performance.now() })
    instance.on('response', () => { lastResponse = performance.now() })
  })
  if (handedOut !== amount) throw new Error(`handed out ${handedOut} bodies for ${amount} requests`)
  const seconds = (lastResponse - started) / 1000
  return {
    requests: result.requests.total,
    seconds,
    reqPerSec: result['2xx'] / seconds,
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    latency: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max, mean: result.latency.average }
  }
}
