import http from 'node:http'

const formHeaders = { 'content-type': 'application/x-www-form-urlencoded' }

function percentile (sorted, p) {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]
}

/**
 * An open-loop load at a steady rate: request i is due at start + i/rate and
 * is sent then (a 1 ms timer sends whatever has come due), on up to
 * `connections` keep-alive sockets. Latency runs from the due time to the
 * end of the response, so a server that falls behind is charged for the
 * wait (no coordinated omission) and a burst cannot hide in an average.
 * Bodies come from `generator`, built before the run, and go to `path`
 * (the generic gateway unless said otherwise). The first
 * `warmupSeconds` of requests open the sockets and warm the client up: they
 * are sent and counted, but left out of the latency figures. `statuses`
 * counts the answers by status code.
 */
export async function runFixedRate ({ url, generator, rate, amount, connections = 100, timeoutMs = 30_000, warmupSeconds = 1, path = '/notify/generic', headers = formHeaders }) {
  const bodies = Array.from({ length: amount }, () => Buffer.from(generator.next()))
  const target = new URL(path, url)
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections })
  const latencies = new Float64Array(amount)
  let ok = 0
  let non2xx = 0
  let errors = 0
  let done = 0
  let sent = 0
  const statuses = {}
  const start = performance.now() + 5
  const finished = await new Promise(resolve => {
    const complete = () => { if (++done === amount) resolve(performance.now()) }
    const send = i => {
      const due = start + (i * 1000) / rate
      const req = http.request(target, { method: 'POST', agent, headers: { ...headers, 'content-length': bodies[i].length }, timeout: timeoutMs }, res => {
        res.resume()
        res.on('end', () => {
          latencies[i] = performance.now() - due
          statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1
          if (res.statusCode >= 200 && res.statusCode < 300) ok++
          else non2xx++
          complete()
        })
      })
      req.on('timeout', () => req.destroy(new Error('timeout')))
      req.on('error', () => { latencies[i] = NaN; errors++; complete() })
      req.end(bodies[i])
    }
    const tick = () => {
      const due = Math.min(amount, Math.floor(((performance.now() - start) * rate) / 1000) + 1)
      while (sent < due) send(sent++)
      if (sent < amount) setTimeout(tick, 1)
    }
    setTimeout(tick, 5)
  })
  agent.destroy()
  const warmup = Math.min(amount - 1, Math.round(rate * warmupSeconds))
  const sorted = Array.from(latencies.subarray(warmup)).filter(Number.isFinite).sort((a, b) => a - b)
  const seconds = (finished - start) / 1000
  return {
    requests: amount,
    seconds,
    reqPerSec: ok / seconds,
    ok,
    non2xx,
    errors,
    statuses,
    timeouts: 0,
    latency: { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted[sorted.length - 1] ?? NaN, mean: sorted.reduce((a, b) => a + b, 0) / sorted.length }
  }
}
