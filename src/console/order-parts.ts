import { html } from 'ghtml'
import type { OrderView } from '../orders/order-fold.js'
import { explainAnomaly, formatMoney } from './format.js'

/** Pieces of HTML the order pages share, each built with `html` (every value escaped). */

const statusKinds: Record<string, string> = {
  paid: 'ok',
  refunded: 'ok',
  partially_refunded: 'ok',
  failed: 'warn',
  closed: 'warn'
}

export function statusBadge (status: string): string {
  const kind = statusKinds[status]
  return html`<span class="badge!${kind === undefined ? '' : ` ${kind}`}">${status.replaceAll('_', ' ')}</span>`
}

/** The anomaly codes as badges, each titled with what it means. */
export function anomalyBadges (anomalies: readonly string[]): string {
  if (anomalies.length === 0) return html`<span class="muted">none</span>`
  return anomalies.map(code => html`<span class="badge bad" title="${explainAnomaly(code)}">${code}</span>`).join(' ')
}

/** Each anomaly with its sentence, as a definition list. */
export function anomalyList (anomalies: readonly string[]): string {
  if (anomalies.length === 0) return html`<p class="muted">No anomalies.</p>`
  return html`<dl class="anomalies">!${anomalies.map(code => html`<dt><span class="badge bad">${code}</span></dt><dd>${explainAnomaly(code)}</dd>`).join('')}</dl>`
}

/** The expected amount, or a dash when the merchant registered none. */
export function expectedMoney (order: OrderView): string {
  return order.expectedAmount === null ? '—' : formatMoney(order.expectedAmount, order.expectedCurrency)
}

/** The link to one order's page. */
export function orderHref (orderId: string): string {
  return `/console/orders/${encodeURIComponent(orderId)}`
}
