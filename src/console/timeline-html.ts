import { html } from 'ghtml'
import type { TimelineEntry, TimelinePage } from '../event-log/timeline.js'
import type { RawRequest, RecordedEvent } from '../orders/events.js'
import { formatMoney, formatTime, signatureScheme } from './format.js'
import { orderHref } from './order-parts.js'

/**
 * An order's timeline as HTML: one item per stored delivery, repeats linked
 * to the first delivery they repeat, the signature scheme verified, and each
 * raw request expandable (headers and body exactly as stored, and a decoded
 * form of the body beside the bytes). Everything from outside is escaped by
 * `html`; nothing here is ever put behind `!` unless `html` built it.
 */

/** Where each first delivery a page refers to is: its stream version, for a link to the page that holds it. */
export type FirstDeliveries = ReadonlyMap<number, number>

/** Positions a page's repeats point back to that are not on the page itself. */
export function referencedPositions (entries: readonly TimelineEntry[]): number[] {
  const onPage = new Set(entries.map(entry => entry.position))
  const wanted = new Set<number>()
  for (const entry of entries) if (entry.outcome === 'duplicate' && !onPage.has(entry.duplicateOf)) wanted.add(entry.duplicateOf)
  return [...wanted]
}

/** The link to an entry: on this page an anchor, else the page that starts with it. */
function entryHref (orderId: string, position: number, onPage: boolean, firsts: FirstDeliveries): string {
  if (onPage) return `#p${position}`
  const version = firsts.get(position)
  return version === undefined ? `#p${position}` : `${orderHref(orderId)}?cursor=${version - 1}#p${position}`
}

function byteLength (raw: RawRequest): number {
  return raw.bodySize ?? Buffer.byteLength(raw.body, raw.encoding === 'base64' ? 'base64' : 'utf8')
}

/** A decoded view of a body beside its bytes: form fields as a table, JSON pretty-printed. */
function decodedBody (raw: RawRequest): string {
  if (raw.encoding === 'base64') return html`<p class="muted">Stored as base64 (the bytes were not UTF-8): shown as base64, not decoded.</p>`
  const type = raw.contentType.toLowerCase()
  if (type.includes('application/x-www-form-urlencoded')) {
    const fields = [...new URLSearchParams(raw.body)]
    return html`<div class="table-wrap"><table class="decoded"><caption>Form fields, decoded</caption>
<thead><tr><th scope="col">Field</th><th scope="col">Value</th></tr></thead>
<tbody>!${fields.map(([name, value]) => html`<tr><td class="mono hash">${name}</td><td class="mono hash">${value}</td></tr>`).join('')}</tbody></table></div>`
  }
  if (type.includes('json')) {
    try {
      return html`<p class="raw-label">JSON, pretty-printed</p><pre class="raw-json" tabindex="0">${JSON.stringify(JSON.parse(raw.body), null, 2)}</pre>`
    } catch {
      return html`<p class="muted">Not valid JSON: only the bytes above.</p>`
    }
  }
  return ''
}

function rawRequest (raw: RawRequest | undefined): string {
  if (raw === undefined) return ''
  const headers = Object.entries(raw.headers)
  return html`<details class="raw"><summary>Raw request (${raw.contentType}, ${byteLength(raw).toLocaleString('en')} bytes)</summary>
<p class="raw-label">Headers kept for its signature</p>
!${headers.length === 0
    ? html`<p class="muted">None: this gateway signs the body alone.</p>`
    : html`<div class="table-wrap"><table class="headers"><thead><tr><th scope="col">Header</th><th scope="col">Value</th></tr></thead>
<tbody>!${headers.map(([name, value]) => html`<tr><td class="mono hash">${name}</td><td class="mono hash">${value}</td></tr>`).join('')}</tbody></table></div>`}
<div class="raw-columns">
<div><p class="raw-label">Body exactly as stored (${raw.encoding === 'base64' ? 'base64' : 'UTF-8'})</p><pre class="raw-body" tabindex="0">${raw.body}</pre></div>
<div>!${decodedBody(raw)}</div>
</div>
</details>`
}

/** What an event says, in a few facts. */
function eventFacts (event: RecordedEvent): string {
  switch (event.type) {
    case 'OrderPlaced':
      return html`<dt>Registered</dt><dd>${formatMoney(event.data.amount, event.data.currency)}</dd>`
    case 'PaymentPending':
    case 'PaymentSucceeded':
    case 'PaymentFailed':
    case 'PaymentRefunded':
    case 'RefundFailed':
    case 'PaymentClosed':
    case 'UnattributedReportReceived': {
      const data = event.data
      return html`<dt>Amount</dt><dd>${formatMoney(data.amount, data.currency)}</dd>
<dt>Transaction id</dt><dd class="mono hash">${data.transactionId ?? '—'}</dd>
!${data.refundId === null ? '' : html`<dt>Refund id</dt><dd class="mono hash">${data.refundId}</dd>`}
<dt>Gateway status</dt><dd class="mono">${data.gatewayStatus}</dd>
!${data.gatewayTime === null ? '' : html`<dt>Gateway time</dt><dd class="mono">${data.gatewayTime}</dd>`}`
    }
    case 'ReviewNoteRecorded':
      return html`<dt>Review note</dt><dd class="review-note-text">${event.data.note}</dd>
<dt>Resolves</dt><dd>${event.data.resolves.join(', ') || '—'}</dd>
<dt>Recorded by</dt><dd class="mono">request ${event.data.actor.requestId} from ${event.data.actor.address}</dd>`
    case 'EndpointChanged':
      return html`<dt>Endpoint</dt><dd class="mono">${event.data.endpointId} ${event.data.change}</dd>`
    default:
      return assertNever(event)
  }
}

function assertNever (value: never): never {
  throw new Error(`unhandled event ${JSON.stringify(value)}`)
}

function outcomeOf (entry: TimelineEntry, orderId: string, onPage: ReadonlySet<number>, firsts: FirstDeliveries): string {
  if (entry.outcome === 'applied') return html`<span class="badge ok">applied</span>`
  const href = entryHref(orderId, entry.duplicateOf, onPage.has(entry.duplicateOf), firsts)
  const what = entry.duplicateReason === 'delivery' ? 'repeat of delivery' : 'same fact as'
  return html`<span class="badge warn">repeat</span> ${what} <a href="${href}">#${entry.duplicateOf}</a>`
}

function timelineItem (entry: TimelineEntry, orderId: string, onPage: ReadonlySet<number>, firsts: FirstDeliveries): string {
  const gateway = entry.metadata.gateway
  return html`<li id="p${entry.position}" class="entry!${entry.outcome === 'duplicate' ? ' repeat' : ''}">
<p class="entry-head"><a class="mono" href="#p${entry.position}">#${entry.position}</a> <strong>${entry.type}</strong> !${outcomeOf(entry, orderId, onPage, firsts)}</p>
<dl class="facts">
<dt>Recorded</dt><dd>${formatTime(entry.recordedAt)}</dd>
<dt>Gateway</dt><dd>${gateway}</dd>
<dt>Delivery id</dt><dd class="mono hash">${entry.metadata.deliveryId}</dd>
<dt>Signature</dt><dd>${signatureScheme(gateway)}: verified</dd>
!${entry.metadata.replayOf === undefined ? '' : html`<dt>Replay of</dt><dd>#${entry.metadata.replayOf}</dd>`}
!${eventFacts(entry)}
</dl>
!${rawRequest(entry.metadata.raw)}
</li>`
}

export interface TimelineView {
  orderId: string
  page: TimelinePage
  /** The stream version the page starts after. */
  cursor: number
  pageSize: number
  /** Every event of the order (its last stream version). */
  total: number
  firsts: FirstDeliveries
}

/** The timeline's page: the list and its pager (what the live fragment route answers). */
export function timelineHtml (view: TimelineView): string {
  const { orderId, page, cursor, pageSize, total, firsts } = view
  const onPage = new Set(page.entries.map(entry => entry.position))
  const first = page.entries[0]?.streamVersion
  const last = page.entries[page.entries.length - 1]?.streamVersion
  const base = orderHref(orderId)
  const pager = html`<nav class="pager" aria-label="Timeline pages">
!${cursor === 0 ? '' : html`<a href="${base}">First deliveries</a><a href="${base}?cursor=${Math.max(0, cursor - pageSize)}">Earlier deliveries</a>`}
!${page.nextCursor === null ? '' : html`<a href="${base}?cursor=${page.nextCursor}" rel="next">Later deliveries</a><a href="${base}?cursor=${Math.max(0, total - pageSize)}">Latest deliveries</a>`}
</nav>`
  const range = first === undefined ? 'no events on this page' : `events ${first}-${last!} of ${total}`
  return html`<p class="muted">Showing ${range}, oldest first.!${page.unstoredRepeats === 0 ? '' : html` ${page.unstoredRepeats} further repeats were acknowledged but not stored.`}</p>
<ol class="timeline">!${page.entries.map(entry => timelineItem(entry, orderId, onPage, firsts)).join('')}</ol>
!${pager}`
}
