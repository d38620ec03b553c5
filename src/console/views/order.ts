import type { FastifyPluginAsync } from 'fastify'
import { html } from 'ghtml'
import { AppError, MalformedError } from '../../errors.js'
import { exportLines, resolveExportRange } from '../../event-log/export.js'
import { orderIdPattern } from '../../orders/events.js'
import type { OrderView } from '../../orders/order-fold.js'
import { findOrder } from '../../orders/queries.js'
import { sendPage, sessionOf, type ConsoleContext } from '../context.js'
import { formatMoney, formatTime } from '../format.js'
import { notice } from '../layout.js'
import { anomalyList, expectedMoney, orderHref, statusBadge } from '../order-parts.js'
import { referencedPositions, timelineHtml, type TimelineView } from '../timeline-html.js'
import { readConsoleTimelinePage } from '../timeline-page.js'
import { reviewNoteForm } from './review.js'

// Deliveries per timeline page: each carries its raw request, so a page stays a few hundred kB at most.
const pageSize = 50

interface OrderParams { id: string }
interface TimelineQuery { cursor?: string, noted?: string }

function orderIdOf (params: OrderParams): string {
  if (!orderIdPattern.test(params.id)) throw new AppError(404, 'order_not_found', 'There is no such order.')
  return params.id
}

function cursorOf (query: TimelineQuery): number {
  const text = query.cursor
  if (text === undefined || text === '') return 0
  if (!/^\d{1,15}$/.test(text)) throw new MalformedError('must be a whole number', 'cursor')
  return Number(text)
}

/** One page of an order's timeline and what its links need; undefined when the order has no event. */
async function loadTimeline (context: ConsoleContext, orderId: string, cursor: number): Promise<TimelineView | undefined> {
  const page = await readConsoleTimelinePage(context.sqlite, context.db, orderId, cursor, pageSize)
  if (page.unknown) return undefined
  const total = context.sqlite.prepare('SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = ?').pluck().get(orderId) as number
  const refs = referencedPositions(page.entries)
  const firsts = new Map<number, number>()
  if (refs.length > 0) {
    const rows = context.sqlite.prepare(`SELECT position, stream_version FROM events WHERE position IN (${refs.map(() => '?').join(',')})`).raw().all(...refs) as Array<[number, number]>
    for (const [position, version] of rows) firsts.set(position, version)
  }
  return { orderId, page, cursor, pageSize, total, firsts }
}

function summary (order: OrderView, total: number, unstored: number): string {
  return html`<dl class="facts order-facts">
<dt>Status</dt><dd>!${statusBadge(order.status)}</dd>
<dt>Paid</dt><dd>${formatMoney(order.paidAmount, order.currency)}</dd>
<dt>Refunded</dt><dd>${formatMoney(order.refundedAmount, order.currency)}</dd>
<dt>Expected</dt><dd>${expectedMoney(order)}</dd>
<dt>Gateway</dt><dd>${order.gateway ?? '—'}</dd>
<dt>Gateway transaction id</dt><dd class="mono hash">${order.gatewayTradeNo ?? '—'}</dd>
<dt>Needs review</dt><dd>${order.needsReview ? 'yes' : 'no'}</dd>
<dt>Events stored</dt><dd>${total.toLocaleString('en')} (${order.duplicateCount.toLocaleString('en')} repeats${unstored === 0 ? '' : `, ${unstored.toLocaleString('en')} more acknowledged but not stored`})</dd>
<dt>First event</dt><dd>${formatTime(order.firstSeenAt)}</dd>
<dt>Last event</dt><dd>${formatTime(order.updatedAt)}</dd>
<dt>Log position</dt><dd>${order.lastPosition}</dd>
</dl>`
}

/**
 * GET /console/orders/:id: one order's state and anomalies, and its
 * timeline a page at a time; the timeline's page is also a fragment
 * (…/timeline) that live.js fetches again after each commit, and the whole
 * history downloads as the NDJSON `paynotify export --order` writes, which
 * `paynotify replay` reads.
 */
export const orderView: FastifyPluginAsync<ConsoleContext> = async (app, context) => {
  app.get<{ Params: OrderParams, Querystring: TimelineQuery }>('/console/orders/:id', { schema: { hide: true } }, async (request, reply) => {
    const orderId = orderIdOf(request.params)
    const cursor = cursorOf(request.query)
    const order = await findOrder(context.db, orderId)
    const timeline = order === undefined ? undefined : await loadTimeline(context, orderId, cursor)
    if (order === undefined || timeline === undefined) throw new AppError(404, 'order_not_found', `There is no order ${orderId}.`)
    const liveSrc = `${orderHref(orderId)}/timeline${cursor === 0 ? '' : `?cursor=${cursor}`}`
    const session = sessionOf(request)
    const noted = request.query.noted === undefined ? '' : notice('note', 'Review note recorded: it is in the timeline, and the order has left the review queue.')
    const review = order.needsReview ? reviewNoteForm(orderId, session, 'order') : ''
    const body = html`!${noted}<section aria-labelledby="state-h"><h2 id="state-h">State</h2>
!${summary(order, timeline.total, timeline.page.unstoredRepeats)}
<p><a class="button secondary" href="${orderHref(orderId)}/history.ndjson" download>Download history (NDJSON for paynotify replay)</a></p>
</section>
<section aria-labelledby="anomalies-h"><h2 id="anomalies-h">Anomalies</h2>
!${anomalyList(order.anomalies)}
!${order.anomalies.length > 0 && !order.needsReview ? html`<p class="muted">A review note has resolved these: see the timeline.</p>` : review}
</section>
<section aria-labelledby="timeline-h"><h2 id="timeline-h">Timeline</h2>
<div id="timeline" data-live-src="${liveSrc}">!${timelineHtml(timeline)}</div>
</section>`
    return sendPage(reply, { title: `Order ${orderId}`, section: 'orders', session, scripts: ['live.js'], body })
  })

  app.get<{ Params: OrderParams, Querystring: TimelineQuery }>('/console/orders/:id/timeline', { schema: { hide: true } }, async (request, reply) => {
    const orderId = orderIdOf(request.params)
    const timeline = await loadTimeline(context, orderId, cursorOf(request.query))
    if (timeline === undefined) throw new AppError(404, 'order_not_found', `There is no order ${orderId}.`)
    return reply.type('text/html; charset=utf-8').send(timelineHtml(timeline))
  })

  app.get<{ Params: OrderParams }>('/console/orders/:id/history.ndjson', { schema: { hide: true } }, async (request, reply) => {
    const orderId = orderIdOf(request.params)
    const range = resolveExportRange(context.sqlite, { streamId: orderId })
    if (range.count === 0) throw new AppError(404, 'order_not_found', `There is no order ${orderId}.`)
    // Read whole before sending: an open SQLite iterator would hold the connection the service shares.
    const lines = [...exportLines(context.sqlite, range, orderId)]
    reply.header('content-disposition', `attachment; filename="order-${orderId}.ndjson"`)
    return reply.type('application/x-ndjson; charset=utf-8').send(lines.join(''))
  })
}
