import autocannon from 'autocannon'

const formHeaders = { 'content-type': 'application/x-www-form-urlencoded' }

/**
 * One autocannon run of signed generic callbacks, each request's body drawn
 * from `generator` (setupRequest). A fixed `amount` rather than a duration, so
 * every request sent is answered before the run ends and the count of 2xx
 * answers can be compared exactly with the rows the server appended.
 * `overallRate` caps the rate (latency at a fixed load).
 */
export async function runLoad ({ url, generator, amount, connections = 100, overallRate, timeoutSeconds = 30 }) {
  const options = {
    url: `${url}/notify/generic`,
    connections,
    pipelining: 1,
    amount,
    timeout: timeoutSeconds,
    requests: [{
      method: 'POST',
      headers: formHeaders,
      setupRequest: request => ({ ...request, method: 'POST', headers: formHeaders, body: generator.next() })
    }]
  }
  if (overallRate !== undefined) options.overallRate = overallRate
  const result = await autocannon(options)
  const seconds = (result.finish - result.start) / 1000
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
