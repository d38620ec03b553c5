import type { FastifyPluginAsync } from 'fastify'
import { html } from 'ghtml'
import { webhookIdPattern } from '../../projection/outbox.js'
import type { Endpoint } from '../../outbound/endpoints.js'
import type { Attempt, Delivery, EndpointDelivery, MessageDetail } from '../../outbound/messages.js'
import type { Outbound } from '../../outbound/runtime.js'
import { sendPage, sessionOf, type ConsoleContext } from '../context.js'
import { timeHtml } from '../format.js'
import { csrfField, notice } from '../layout.js'

const endpointIdPattern = /^ep_[0-9a-f]{32}$/
const pageSize = 50

/**
 * /console/outbound: the merchant's endpoints (never their secrets), each
 * endpoint's deliveries, a message's attempts with the answer excerpts, and
 * re-send, which is the admin API's (OutboundMessages.resend). URLs,
 * descriptions, answers and errors came from outside: all rendered as text.
 */
export const outboundView: FastifyPluginAsync<ConsoleContext> = async (app, context) => {
  const { outbound } = context
  if (outbound === undefined) {
    app.get('/console/outbound', { schema: { hide: true } }, async (request, reply) => {
      return sendPage(reply, { title: 'Outbound', section: 'outbound', session: sessionOf(request), body: notice('note', 'Outbound delivery is not running in this service: there are no endpoints or messages to show.') })
    })
    return
  }

  app.get<{ Querystring: { cursor?: string } }>('/console/outbound', {
    schema: { hide: true, querystring: { type: 'object', properties: { cursor: { type: 'string', pattern: endpointIdPattern.source } } } }
  }, async (request, reply) => {
    const { endpoints, nextCursor } = outbound.endpoints.list(request.query.cursor ?? '', pageSize)
    return sendPage(reply, { title: 'Outbound', section: 'outbound', session: sessionOf(request), body: endpointsPage(endpoints, nextCursor, request.query.cursor !== undefined) })
  })

  app.get<{ Params: { id: string }, Querystring: { cursor?: number } }>('/console/outbound/endpoints/:id', {
    schema: {
      hide: true,
      params: { type: 'object', properties: { id: { type: 'string', pattern: endpointIdPattern.source } }, required: ['id'] },
      querystring: { type: 'object', properties: { cursor: { type: 'integer', minimum: 1 } } }
    }
  }, async (request, reply) => {
    const endpoint = outbound.endpoints.get(request.params.id)
    const page = outbound.messages.deliveries(endpoint.id, request.query.cursor, pageSize)
    return sendPage(reply, { title: `Endpoint ${endpoint.id}`, section: 'outbound', session: sessionOf(request), body: endpointPage(endpoint, page.deliveries, page.nextCursor, request.query.cursor !== undefined) })
  })

  app.get<{ Params: { id: string }, Querystring: { resent?: number } }>('/console/outbound/messages/:id', {
    schema: {
      hide: true,
      params: { type: 'object', properties: { id: { type: 'string', pattern: webhookIdPattern.source } }, required: ['id'] },
      querystring: { type: 'object', properties: { resent: { type: 'integer', minimum: 0 } } }
    }
  }, async (request, reply) => {
    const message = outbound.messages.message(request.params.id)
    const session = sessionOf(request)
    const resent = request.query.resent === undefined ? '' : notice('note', `Queued to send again: ${request.query.resent} ${request.query.resent === 1 ? 'delivery' : 'deliveries'}.`)
    return sendPage(reply, { title: `Message ${message.id}`, section: 'outbound', session, body: resent + messagePage(message, csrfField(session), outbound) })
  })

  app.post<{ Params: { id: string }, Body: { endpointId?: string } }>('/console/outbound/messages/:id/resend', {
    schema: {
      hide: true,
      params: { type: 'object', properties: { id: { type: 'string', pattern: webhookIdPattern.source } }, required: ['id'] },
      body: { type: 'object', properties: { _csrf: { type: 'string' }, endpointId: { type: 'string', pattern: `${endpointIdPattern.source}|^$` } } }
    }
  }, async (request, reply) => {
    const endpointId = request.body.endpointId === '' ? undefined : request.body.endpointId
    const { messageId, deliveries } = outbound.messages.resend(request.params.id, endpointId)
    request.log.info({ messageId, endpointId, deliveries }, 'console: message re-sent')
    return await reply.redirect(`/console/outbound/messages/${messageId}?resent=${deliveries}`, 303)
  })
}

function endpointsPage (endpoints: readonly Endpoint[], nextCursor: string | null, paged: boolean): string {
  if (endpoints.length === 0 && !paged) return notice('note', 'No endpoints yet: register one with POST /admin/endpoints.')
  return html`<div class="table-wrap"><table class="outbound-endpoints">
<caption class="muted">Endpoints the merchant registered, by id (secrets are never shown)</caption>
<thead><tr><th scope="col">Endpoint</th><th scope="col">URL</th><th scope="col">Types</th><th scope="col">State</th><th scope="col">Created</th></tr></thead>
<tbody>!${endpoints.map(endpoint => html`<tr>
<td class="mono"><a href="/console/outbound/endpoints/${endpoint.id}">${endpoint.id}</a>!${endpoint.description === null ? '' : html`<br><span class="muted">${endpoint.description}</span>`}</td>
<td class="mono url">${endpoint.url}</td>
<td>${typesOf(endpoint)}</td>
<td>!${enabledBadge(endpoint)}</td>
<td>!${timeHtml(endpoint.createdAt)}</td>
</tr>`).join('')}</tbody>
</table></div>
!${pager(paged ? '/console/outbound' : null, nextCursor === null ? null : `/console/outbound?cursor=${nextCursor}`, 'Next page')}`
}

function endpointPage (endpoint: Endpoint, deliveries: readonly EndpointDelivery[], nextCursor: number | null, paged: boolean): string {
  const first = `/console/outbound/endpoints/${endpoint.id}`
  return html`<p><a href="/console/outbound">All endpoints</a></p>
<dl class="facts">
<dt>URL</dt><dd class="mono url">${endpoint.url}</dd>
<dt>Description</dt><dd>${endpoint.description ?? '—'}</dd>
<dt>Types</dt><dd>${typesOf(endpoint)}</dd>
<dt>State</dt><dd>!${enabledBadge(endpoint)}</dd>
<dt>Created</dt><dd>!${timeHtml(endpoint.createdAt)}</dd>
<dt>Changed</dt><dd>!${timeHtml(endpoint.updatedAt)}</dd>
</dl>
<h2>Deliveries, newest first</h2>
!${deliveries.length === 0
    ? notice('note', paged ? 'No older deliveries.' : 'No message has been due to this endpoint yet.')
    : html`<div class="table-wrap"><table class="outbound-deliveries">
<thead><tr><th scope="col">Message</th><th scope="col">Type</th><th scope="col">Order</th><th scope="col">State</th><th scope="col" class="num">Attempts</th><th scope="col">Next attempt</th><th scope="col">Last status</th><th scope="col">Last error</th></tr></thead>
<tbody>!${deliveries.map(delivery => html`<tr>
<td class="mono"><a href="/console/outbound/messages/${delivery.messageId}">${delivery.messageId}</a><br>!${timeHtml(delivery.createdAt)}</td>
<td>${delivery.type}</td>
<td class="mono"><a href="/console/orders/${encodeURIComponent(delivery.orderId)}">${delivery.orderId}</a></td>
<td>!${stateBadge(delivery.state)}</td>
<td class="num">${delivery.attempts}</td>
<td>!${delivery.nextAttemptAt === null ? '—' : timeHtml(delivery.nextAttemptAt)}</td>
<td>${delivery.lastStatus ?? '—'}</td>
<td class="outside">${delivery.lastError ?? ''}</td>
</tr>`).join('')}</tbody>
</table></div>`}
!${pager(paged ? first : null, nextCursor === null ? null : `${first}?cursor=${nextCursor}`, 'Older deliveries')}`
}

function messagePage (message: MessageDetail, csrf: string, outbound: Outbound): string {
  const resendAll = message.deliveries.length === 0
    ? ''
    : html`<form method="post" action="/console/outbound/messages/${message.id}/resend" class="resend">!${csrf}<button type="submit">Re-send to every endpoint</button></form>`
  return html`<dl class="facts">
<dt>Type</dt><dd>${message.type}</dd>
<dt>Order</dt><dd class="mono"><a href="/console/orders/${encodeURIComponent(message.orderId)}">${message.orderId}</a> (version ${message.version})</dd>
<dt>Log position</dt><dd>${message.position}</dd>
<dt>Created</dt><dd>!${timeHtml(message.createdAt)}</dd>
<dt>State</dt><dd>!${stateBadge(message.state)}</dd>
</dl>
!${resendAll}
<details><summary>Body sent</summary><pre>${JSON.stringify(message.payload, null, 2)}</pre></details>
!${message.deliveries.length === 0 ? notice('note', 'No endpoint was due this message.') : message.deliveries.map(delivery => deliverySection(message.id, delivery, csrf, outbound.endpoints.find(delivery.endpointId))).join('')}`
}

function deliverySection (messageId: string, delivery: Delivery, csrf: string, endpoint: Endpoint | undefined): string {
  return html`<section class="delivery" aria-labelledby="delivery-${delivery.endpointId}">
<h2 id="delivery-${delivery.endpointId}">To <a class="mono" href="/console/outbound/endpoints/${delivery.endpointId}">${delivery.endpointId}</a></h2>
<dl class="facts">
<dt>URL</dt><dd class="mono url">${endpoint?.url ?? '(endpoint deleted)'}</dd>
<dt>State</dt><dd>!${stateBadge(delivery.state)}</dd>
<dt>Attempts</dt><dd>${delivery.attempts}</dd>
<dt>Next attempt</dt><dd>!${delivery.nextAttemptAt === null ? '—' : timeHtml(delivery.nextAttemptAt)}</dd>
<dt>Last status</dt><dd>${delivery.lastStatus ?? '—'}</dd>
<dt>Last error</dt><dd class="outside">${delivery.lastError ?? '—'}</dd>
</dl>
!${endpoint === undefined
    ? ''
    : html`<form method="post" action="/console/outbound/messages/${messageId}/resend" class="resend">!${csrf}<input type="hidden" name="endpointId" value="${delivery.endpointId}"><button type="submit" class="secondary">Re-send to this endpoint</button></form>`}
!${delivery.attemptLog.length === 0 ? html`<p class="muted">No attempt yet.</p>` : attemptsTable(delivery.attemptLog)}
</section>`
}

function attemptsTable (attempts: readonly Attempt[]): string {
  return html`<div class="table-wrap"><table class="outbound-attempts">
<caption class="muted">Attempts, newest first (the answer's first 4 KiB, as text)</caption>
<thead><tr><th scope="col">Time</th><th scope="col" class="num">Duration</th><th scope="col">Status</th><th scope="col">Answer</th><th scope="col">Error</th></tr></thead>
<tbody>!${attempts.map(attempt => html`<tr>
<td>!${timeHtml(attempt.attemptedAt)}</td>
<td class="num">${attempt.durationMs} ms</td>
<td>!${attempt.status === null ? '—' : statusBadge(attempt.status)}</td>
<td>!${attempt.responseBody === null || attempt.responseBody === '' ? html`<span class="muted">(empty)</span>` : html`<pre class="answer">${attempt.responseBody}</pre>`}</td>
<td class="outside">${attempt.error ?? ''}</td>
</tr>`).join('')}</tbody>
</table></div>`
}

function typesOf (endpoint: Endpoint): string {
  return endpoint.events === null ? 'every type' : endpoint.events.join(', ')
}

function enabledBadge (endpoint: Endpoint): string {
  if (endpoint.enabled) return html`<span class="badge ok">enabled</span>`
  return html`<span class="badge bad">disabled</span>!${endpoint.disabledReason === null ? '' : html` <span class="outside">${endpoint.disabledReason}</span>`}`
}

const stateClasses: Record<string, string> = { delivered: 'ok', pending: 'warn', failed: 'warn', dead: 'bad' }

function stateBadge (state: string): string {
  return html`<span class="badge ${stateClasses[state] ?? ''}">${state.replaceAll('_', ' ')}</span>`
}

function statusBadge (status: number): string {
  return html`<span class="badge ${status >= 200 && status < 300 ? 'ok' : 'bad'}">${status}</span>`
}

function pager (first: string | null, next: string | null, nextLabel: string): string {
  if (first === null && next === null) return ''
  return html`<nav class="pager" aria-label="Pages">!${first === null ? '' : html`<a href="${first}">First page</a>`}!${next === null ? '' : html`<a href="${next}">${nextLabel}</a>`}</nav>`
}
