import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { html } from 'ghtml'
import { AppError } from '../../errors.js'
import { orderIdPattern } from '../../orders/events.js'
import type { OrderView } from '../../orders/order-fold.js'
import { maxNoteLength, recordReviewNote } from '../../orders/review-notes.js'
import { sendPage, sessionOf, type ConsoleContext } from '../context.js'
import { formatMoney, formatTime } from '../format.js'
import { csrfField, notice } from '../layout.js'
import { listReviewQueue } from '../order-search.js'
import { anomalyList, expectedMoney, orderHref, statusBadge } from '../order-parts.js'
import type { ConsoleSession } from '../session.js'

const pageSize = 25

interface ReviewQuery { cursor?: string, recorded?: string }
interface NoteBody { note?: unknown, back?: unknown }

/** The form that records a review note on an order; `back` is where the answer returns to. */
export function reviewNoteForm (orderId: string, session: ConsoleSession, back: 'review' | 'order'): string {
  const id = `note-${orderId.replace(/[^A-Za-z0-9_-]/g, '_')}`
  return html`<form method="post" action="${orderHref(orderId)}/review-notes" class="review-note">
!${csrfField(session)}
<input type="hidden" name="back" value="${back}">
<label for="${id}">Resolution note</label>
<textarea id="${id}" name="note" rows="2" maxlength="${maxNoteLength}" required placeholder="refunded by hand, customer contacted…"></textarea>
<button type="submit">Record note</button>
</form>`
}

function reviewItem (order: OrderView, session: ConsoleSession): string {
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
!${reviewNoteForm(order.orderId, session, 'review')}
</li>`
}

/**
 * GET /console/review: the orders whose anomalies nobody has reviewed yet,
 * oldest first, each with a form to record a resolution note.
 */
export const reviewView: FastifyPluginAsync<ConsoleContext> = async (app, context) => {
  async function queuePage (request: FastifyRequest, reply: FastifyReply, cursor: string | undefined, message: string): Promise<FastifyReply> {
    const session = sessionOf(request)
    const { orders, nextCursor, total } = await listReviewQueue(context.db, cursor, pageSize)
    const body = html`!${message}
<p>${total.toLocaleString('en')} ${total === 1 ? 'order needs' : 'orders need'} review, oldest first.</p>
!${orders.length === 0 ? notice('note', 'Nothing to review.') : html`<ol class="review-queue">!${orders.map(order => reviewItem(order, session)).join('')}</ol>`}
<nav class="pager" aria-label="Pages">!${cursor === undefined ? '' : html`<a href="/console/review">First page</a>`}!${nextCursor === null ? '' : html`<a href="/console/review?cursor=${encodeURIComponent(nextCursor)}" rel="next">Next page</a>`}</nav>`
    return sendPage(reply, { title: 'Review queue', section: 'review', session, body })
  }

  app.get<{ Querystring: ReviewQuery }>('/console/review', { schema: { hide: true } }, async (request, reply) => {
    const cursor = request.query.cursor === undefined || request.query.cursor === '' ? undefined : request.query.cursor
    // Only an order id is echoed: a link cannot make the page say what it likes.
    const recorded = typeof request.query.recorded === 'string' && orderIdPattern.test(request.query.recorded) ? request.query.recorded : undefined
    return await queuePage(request, reply, cursor, recorded === undefined ? '' : notice('note', `Note recorded on order ${recorded}: it has left the queue.`))
  })

  // The CSRF check (plugin.ts) has run before this handler.
  app.post<{ Params: { id: string }, Body: NoteBody | undefined }>('/console/orders/:id/review-notes', { schema: { hide: true } }, async (request, reply) => {
    const orderId = request.params.id
    const back = request.body?.back === 'order' ? 'order' : 'review'
    const note = request.body?.note
    try {
      if (typeof note !== 'string') throw new AppError(400, 'malformed', 'note: is required')
      await recordReviewNote(context.eventLog, context.db, orderId, note, { requestId: request.id, address: request.ip }, context.now)
    } catch (error) {
      // A note refused (empty, too long, nothing left to review, no such order): the queue again, saying why.
      if (!(error instanceof AppError) || error.statusCode >= 500) throw error
      return await queuePage(request, reply.code(error.statusCode), undefined, notice('error', `Order ${orderId}: ${error.message}`))
    }
    const target = back === 'order'
      ? `${orderHref(orderId)}?noted=1#timeline`
      : `/console/review?recorded=${encodeURIComponent(orderId)}`
    return await reply.redirect(target, 303)
  })
}
