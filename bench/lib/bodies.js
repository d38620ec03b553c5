import { createHmac } from 'node:crypto'

/** The secret the benchmark servers are started with (never a real one). */
export const benchSecret = 'bench-generic-secret-0123456789abcdef'
export const benchAdminToken = 'bench-admin-token-0123456789abcdef'
export const benchMerchantToken = 'bench-merchant-token-0123456789abcdef'

/** A small seeded PRNG (mulberry32), so every run sends the same mix. */
export function seededRandom (seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Signs generic parameters exactly like the seed's PHP sender (and
 * src/gateways/generic.ts): sorted k=v of the non-empty values, joined by &,
 * hex HMAC-SHA256. Written out here so the load generator does not depend on
 * the code under test.
 */
export function signedGenericBody (params, secret = benchSecret) {
  const signing = Object.keys(params).filter(k => params[k] !== '').sort().map(k => `${k}=${params[k]}`).join('&')
  const sign = createHmac('sha256', secret).update(signing).digest('hex')
  return new URLSearchParams({ ...params, sign }).toString()
}

/**
 * Bodies for one ingest run: each new body pays a distinct order; with
 * probability `repeatRatio` the generator instead resends a recent body byte
 * for byte (a gateway retry, same notify_id).
 */
export function createBodyGenerator ({ prefix, repeatRatio = 0.1, seed = 1, secret = benchSecret }) {
  const random = seededRandom(seed)
  const recent = []
  const recentMax = 10_000
  let n = 0
  let repeats = 0
  return {
    next () {
      if (recent.length > 0 && random() < repeatRatio) {
        repeats++
        return recent[Math.floor(random() * recent.length)]
      }
      n++
      const body = signedGenericBody({
        order_id: `${prefix}-${n}`,
        amount: `${(1 + (n % 997)) * 3}.${String(n % 100).padStart(2, '0')}`,
        currency: 'CNY',
        status: '1',
        notify_id: `${prefix}-n${n}`,
        trade_no: `T${prefix}${n}`,
        timestamp: String(Math.floor(Date.now() / 1000))
      }, secret)
      if (recent.length < recentMax) recent.push(body)
      else recent[n % recentMax] = body
      return body
    },
    get distinct () { return n },
    get repeats () { return repeats }
  }
}
