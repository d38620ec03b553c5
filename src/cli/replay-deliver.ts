import http from 'node:http'
import https from 'node:https'
import type { ImportedRow } from '../event-log/ndjson.js'
import { withRawBody } from '../event-log/raw-bodies.js'
import type { LocalGatewayKeys } from '../local-gateway-keys.js'
import type { EventMetadata, OrderPlacedData, PaymentData, RawRequest } from '../orders/events.js'
import { formatMinorUnits } from '../orders/money.js'
import { resignAlipay, resignGeneric, resignStandard, resignStripe, resignWechatpay, type Resigning } from './replay-resign.js'

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

/** The POST /orders body that registers an OrderPlaced again (amount back in major units). */
export function orderRegistration (data: OrderPlacedData): Buffer {
  return Buffer.from(JSON.stringify({ order_id: data.orderId, amount: formatMinorUnits(data.amount, data.currency), currency: data.currency }))
}

/** What to send for one recorded request, or why it is skipped. */
export interface ReplayPlan { prepared?: Prepared, skip?: string }

/** What replay --to signs and registers with: the generic secret, the merchant token, the local gateway identities. */
export interface ReplayKeys {
  genericSecret?: string | undefined
  merchantToken?: string | undefined
  gateways: Partial<LocalGatewayKeys>
}

const noIdentity = (gateway: string): string => `${gateway}: no local identity (run \`paynotify keys\`)`

function resign (request: Recorded, raw: RawRequest, keys: ReplayKeys, now: Date): Resigning | string {
  const { gateways } = keys
  switch (request.metadata.gateway) {
    case 'generic':
      return keys.genericSecret === undefined ? 'generic: no local secret (--secret)' : resignGeneric(raw, keys.genericSecret, now)
    case 'alipay':
      return gateways.alipay === undefined ? noIdentity('alipay') : resignAlipay(raw, gateways.alipay)
    case 'stripe':
      return gateways.stripe === undefined ? noIdentity('stripe') : resignStripe(raw, gateways.stripe, now)
    case 'standard':
      return gateways.standard === undefined ? noIdentity('standard') : resignStandard(raw, gateways.standard, now)
    case 'wechatpay':
      return gateways.wechatpay === undefined ? noIdentity('wechatpay') : resignWechatpay(raw, request.data as PaymentData, gateways.wechatpay, now)
    default:
      return `${request.metadata.gateway}: not a gateway this version re-signs`
  }
}

/**
 * The request that re-delivers a recorded one: OrderPlaced as POST /orders
 * (needs the merchant token), a callback re-signed with the local identity
 * of its gateway (replay-resign.ts); one whose gateway has none is skipped.
 */
export function prepareReplay (request: Recorded, keys: ReplayKeys, now: Date): ReplayPlan {
  const replayOf = { 'x-paynotify-replay-of': String(request.position) }
  const raw = request.metadata.raw
  if (raw === undefined) {
    if (request.type !== 'OrderPlaced') return { skip: `${request.type} without a recorded request` }
    if (keys.merchantToken === undefined) return { skip: 'OrderPlaced: no merchant token to register orders (--merchant-token)' }
    return {
      prepared: {
        path: 'orders',
        headers: { ...replayOf, 'content-type': 'application/json', authorization: `Bearer ${keys.merchantToken}` },
        body: orderRegistration(request.data as OrderPlacedData)
      }
    }
  }
  const gateway = request.metadata.gateway
  const resigned = resign(request, raw, keys, now)
  if (typeof resigned === 'string') return { skip: resigned }
  if ('unusable' in resigned) return { skip: `${gateway}: ${resigned.unusable}` }
  return {
    prepared: {
      path: `notify/${encodeURIComponent(gateway)}`,
      headers: { ...resigned.headers, ...replayOf, 'content-type': raw.contentType },
      body: resigned.body
    }
  }
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
