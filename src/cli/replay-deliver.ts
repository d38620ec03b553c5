import http from 'node:http'
import https from 'node:https'
import { signGenericParams } from '../gateways/generic.js'
import type { ImportedRow } from '../event-log/ndjson.js'
import { withRawBody } from '../event-log/raw-bodies.js'
import type { EventMetadata, OrderPlacedData, RawRequest } from '../orders/events.js'
import { formatMinorUnits } from '../orders/money.js'

/** One request to re-send: the events a recorded request produced share its raw body. */
export interface Recorded {
  /** Position of the first event of the request (x-paynotify-replay-of). */
  position: number
  orderId: string
  type: string
  metadata: EventMetadata
  data: unknown
}

export interface Prepared {
  path: string
  headers: Record<string, string>
  body: Buffer
}

/**
 * Re-signs a recorded generic callback with the local secret: the same
 * parameters in the same order and encoding, with `sign` recomputed and a
 * `timestamp` (when present) moved to now in its own unit, since the
 * service refuses signed times older than its window. Returns undefined for
 * a body that is not a generic form or flat JSON.
 */
export function resignGeneric (raw: RawRequest, secret: string, now: Date): Buffer | undefined {
  const text = raw.encoding === 'base64' ? Buffer.from(raw.body, 'base64').toString('utf8') : raw.body
  const stamp = (old: string): string => old.length === 13 ? String(now.getTime()) : String(Math.floor(now.getTime() / 1000))
  if (raw.contentType.toLowerCase().includes('json')) {
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch {
      return undefined
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined
    const body = value as Record<string, unknown>
    if (typeof body.timestamp === 'string' && body.timestamp !== '') body.timestamp = stamp(body.timestamp)
    else if (typeof body.timestamp === 'number') body.timestamp = Number(stamp(String(body.timestamp)))
    const params: Record<string, string> = {}
    for (const [key, v] of Object.entries(body)) if (typeof v === 'string' || typeof v === 'number') params[key] = String(v)
    body.sign = signGenericParams(params, secret)
    return Buffer.from(JSON.stringify(body))
  }
  const decode = (s: string): string => decodeURIComponent(s.replaceAll('+', ' '))
  let pairs: Array<[string, string, string]>
  try {
    // [raw pair, decoded key, decoded value]: untouched pairs are sent back byte for byte.
    pairs = text.split('&').filter(pair => pair !== '').map(pair => {
      const eq = pair.indexOf('=')
      return eq === -1 ? [pair, decode(pair), ''] : [pair, decode(pair.slice(0, eq)), decode(pair.slice(eq + 1))]
    })
  } catch {
    return undefined
  }
  const params: Record<string, string> = {}
  for (const pair of pairs) {
    if (pair[1] === 'timestamp' && pair[2] !== '') {
      pair[2] = stamp(pair[2])
      pair[0] = `timestamp=${pair[2]}`
    }
    params[pair[1]] = pair[2]
  }
  const sign = signGenericParams(params, secret)
  const hasSign = pairs.some(pair => pair[1] === 'sign')
  const out = pairs.map(pair => pair[1] === 'sign' ? `sign=${sign}` : pair[0])
  if (!hasSign) out.push(`sign=${sign}`)
  return Buffer.from(out.join('&'))
}

/** The POST /orders body that registers an OrderPlaced again (amount back in major units). */
export function orderRegistration (data: OrderPlacedData): Buffer {
  return Buffer.from(JSON.stringify({ order_id: data.orderId, amount: formatMinorUnits(data.amount, data.currency), currency: data.currency }))
}

/** What to send for one recorded request, or why it is skipped. */
export interface ReplayPlan { prepared?: Prepared, skip?: string }

/**
 * The request that re-delivers a recorded one: OrderPlaced as POST /orders
 * (needs the merchant token), a generic callback re-signed with the local
 * secret; other gateways' signatures cannot be re-made, so they are skipped.
 */
export function prepareReplay (request: Recorded, secret: string | undefined, merchantToken: string | undefined, now: Date): ReplayPlan {
  const replayOf = { 'x-paynotify-replay-of': String(request.position) }
  const raw = request.metadata.raw
  if (raw === undefined) {
    if (request.type !== 'OrderPlaced') return { skip: `${request.type} without a recorded request` }
    if (merchantToken === undefined) return { skip: 'OrderPlaced: no merchant token to register orders (--merchant-token)' }
    return {
      prepared: {
        path: 'orders',
        headers: { ...replayOf, 'content-type': 'application/json', authorization: `Bearer ${merchantToken}` },
        body: orderRegistration(request.data as OrderPlacedData)
      }
    }
  }
  const gateway = request.metadata.gateway
  if (gateway !== 'generic') return { skip: `${gateway}: its signature cannot be re-made locally` }
  if (secret === undefined) return { skip: 'generic: no local secret (--secret)' }
  const body = resignGeneric(raw, secret, now)
  if (body === undefined) return { skip: 'generic: the recorded body is not a form or flat JSON' }
  return { prepared: { path: 'notify/generic', headers: { ...raw.headers, ...replayOf, 'content-type': raw.contentType }, body } }
}

/** Groups rows into recorded requests: the events of one request are adjacent in the log and share its request id. */
export async function * recordedRequests (rows: AsyncIterable<ImportedRow>): AsyncGenerator<Recorded> {
  let pending: Recorded | undefined
  for await (const row of rows) {
    // The body a row stores by hash goes back in metadata.raw: it is what is re-sent.
    const metadata = JSON.parse(withRawBody(row.metadata, row.body?.text)) as EventMetadata
    if (pending !== undefined && pending.metadata.requestId === metadata.requestId && metadata.raw !== undefined) continue
    if (pending !== undefined) yield pending
    pending = { position: row.position, orderId: row.stream_id, type: row.type, metadata, data: JSON.parse(row.data) }
  }
  if (pending !== undefined) yield pending
}

export interface Answer { status: number, body: string }

/** A small HTTP client with its own keep-alive agent (destroyed by close, so the CLI exits at once). */
export function createSender (base: URL, timeoutMs = 10_000): { send: (prepared: Prepared) => Promise<Answer>, close: () => void } {
  const client = base.protocol === 'https:' ? https : http
  const agent = new client.Agent({ keepAlive: true, maxSockets: 1 })
  return {
    send: async (prepared) => await new Promise<Answer>((resolve, reject) => {
      const url = new URL(prepared.path, base)
      const request = client.request(url, {
        method: 'POST',
        agent,
        timeout: timeoutMs,
        headers: { ...prepared.headers, 'content-length': String(prepared.body.length) }
      }, response => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => { chunks.push(chunk) })
        response.on('end', () => { resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }) })
        response.on('error', reject)
      })
      request.on('timeout', () => { request.destroy(new Error(`no answer within ${timeoutMs} ms`)) })
      request.on('error', reject)
      request.end(prepared.body)
    }),
    close: () => { agent.destroy() }
  }
}
