import type { FastifyInstance } from 'fastify'
import { formHeaders, merchantAuth, signedForm } from '../helpers.js'

/** A clock the inline writer reads, moved by the test: recorded times are then known. */
export class TestClock {
  #now: number

  constructor (start = '2026-06-01T00:00:00.000Z') {
    this.#now = Date.parse(start)
  }

  readonly now = (): Date => new Date(this.#now)

  set (iso: string): void {
    this.#now = Date.parse(iso)
  }
}

/** The merchant registers an order (amount in major units). */
export async function register (app: FastifyInstance, orderId: string, amount: string, currency = 'CNY'): Promise<void> {
  const res = await app.inject({ method: 'POST', url: '/orders', headers: merchantAuth, payload: { order_id: orderId, amount, currency } })
  if (res.statusCode >= 300) throw new Error(`register ${orderId}: ${res.statusCode} ${res.body}`)
}

/** A signed generic callback, form-encoded; every field is signed, `subject` and the like are stored only in the raw body. */
export async function notify (app: FastifyInstance, params: Record<string, string>): Promise<void> {
  const res = await app.inject({ method: 'POST', url: '/notify/generic', headers: formHeaders, payload: signedForm(params) })
  if (res.statusCode !== 200) throw new Error(`notify ${JSON.stringify(params)}: ${res.statusCode} ${res.body}`)
}

/** A signed generic callback as JSON. */
export async function notifyJson (app: FastifyInstance, params: Record<string, string>): Promise<void> {
  const body = Object.fromEntries(new URLSearchParams(signedForm(params)))
  const res = await app.inject({ method: 'POST', url: '/notify/generic', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) })
  if (res.statusCode !== 200) throw new Error(`notify ${JSON.stringify(params)}: ${res.statusCode} ${res.body}`)
}

/** The text of an HTML fragment without tags, its character references decoded (ghtml writes numeric ones). */
export function textOf (fragment: string): string {
  return fragment.replace(/<[^>]*>/g, ' ')
    .replace(/&#(\d+);/g, (_, code: string) => String.fromCodePoint(Number(code)))
    .replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&quot;', '"').replaceAll('&amp;', '&')
    .replace(/\s+/g, ' ')
}

/** The order ids linked from a list page, in page order. */
export function listedOrders (page: string): string[] {
  return [...page.matchAll(/<a class="mono" href="\/console\/orders\/([^"?/]+)"/g)].map(m => decodeURIComponent(m[1]!))
}
