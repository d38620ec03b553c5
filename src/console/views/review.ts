import type { FastifyPluginAsync } from 'fastify'
import { html } from 'ghtml'
import type { OrderView } from '../../orders/order-fold.js'
import { sendPage, sessionOf, type ConsoleContext } from '../context.js'
import { formatMoney, formatTime } from '../format.js'
import { csrfField, notice } from '../layout.js'
import { listReviewQueue } from '../order-search.js'
import { anomalyList, expectedMoney, orderHref, statusBadge } from '../order-parts.js'
import type { ConsoleSession } from '../session.js'

const pageSize = 25

interface ReviewQuery { cursor?: string, recorded?: string }

function reviewItem (order: OrderView, session: ConsoleSession): string {
  const id = `note-${order.orderId.replace(/[^A-Za-z0-9_-]/g, '_')}`
  return html`<li class="card review-item">
<h2><a class="mono" href="${orderHref(order.orderId)}">${order.orderId}</a> !${statusBadge(order.status)}</h2>
<dl class="facts">
<dt>Paid</dt><dd>${formatMoney(order.paidAmount, order.currency)}</dd>
<dt>Refunded</dt><dd>${formatMoney(order.refundedAmount, order.currency)}</dd>
<dt>Expected</dt><dd>${expectedMoney(order)}</dd>
<dt>First event</dt><dd>${formatTime(order.firstSeenAt)}</dd>
<dt>Last event</dt><dd>${formatTime(order.updatedAt)}</dd>
</dl>
!${anomalyList(order.anomalies)}
<form method="post" action="${orderHref(order.orderId)}/review-notes" class="review-note">
!${csrfField(session)}
<label for="${id}">Resolution note</label>
<textarea id="${id}" name="note" rows="2" maxlength="500" required placeholder="refunded by hand, customer contacted…"></textarea>
<button type="submit">Record note</button>
</form>
</li>`
}

/**
 * GET /console/review: the orders whose anomalies nobody has reviewed yet,
 * oldest first, each with a form to record a resolution note.
 */
export const reviewView: FastifyPluginAsync<ConsoleContext> = async (app, context) => {
  app.get<{ Querystring: ReviewQuery }>('/console/review', { schema: { hide: true } }, async (request, reply) => {
    const session = sessionOf(request)
    const cursor = request.query.cursor === undefined || request.query.cursor === '' ? undefined : request.query.cursor
    const { orders, nextCursor, total } = await listReviewQueue(context.db, cursor, pageSize)
    const recorded = request.query.recorded
    const body = html`!${recorded === undefined ? '' : notice('note', `Note recorded on order ${recorded}: it has left the queue.`)}
<p>${total.toLocaleString('en')} ${total === 1 ? 'order needs' : 'orders need'} review, oldest first.</p>
!${orders.length === 0 ? notice('note', 'Nothing to review.') : html`<ol class="review-queue">!${orders.map(order => reviewItem(order, session)).join('')}</ol>`}
<nav class="pager" aria-label="Pages">!${cursor === undefined ? '' : html`<a href="/console/review">First page</a>`}!${nextCursor === null ? '' : html`<a href="/console/review?cursor=${encodeURIComponent(nextCursor)}" rel="next">Next page</a>`}</nav>`
    return sendPage(reply, { title: 'Review queue', section: 'review', session, body })
  })
}
