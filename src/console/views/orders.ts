import type { FastifyPluginAsync } from 'fastify'
import { html } from 'ghtml'
import { MalformedError } from '../../errors.js'
import { Anomaly, OrderStatus, type OrderView } from '../../orders/order-fold.js'
import { sendPage, sessionOf, type ConsoleContext } from '../context.js'
import { formatMoney, formatTime } from '../format.js'
import { notice } from '../layout.js'
import { maxExportRows, ordersCsv, ordersNdjson } from '../order-export.js'
import { anomalyBadges, expectedMoney, orderHref, statusBadge } from '../order-parts.js'
import { listConsoleOrders, orderGateways, parseOrderFilter, type OrderListQuery } from '../order-search.js'

const pageSize = 50

// The filter form's fields, in the order the page and its links carry them.
const filterKeys = ['q', 'status', 'anomaly', 'review', 'gateway', 'currency', 'time', 'from', 'to'] as const

/** The query string of the current filters (empty values left out), plus `extra`. */
function filterQuery (query: OrderListQuery, extra: Record<string, string> = {}): string {
  const params = new URLSearchParams()
  for (const key of filterKeys) {
    const value = query[key]
    if (value !== undefined && value !== '') params.set(key, value)
  }
  for (const [key, value] of Object.entries(extra)) params.set(key, value)
  const text = params.toString()
  return text === '' ? '' : `?${text}`
}

function options (values: readonly string[], selected: string | undefined, anyLabel: string): string {
  return html`<option value="">${anyLabel}</option>!${values.map(value => html`<option value="${value}"!${value === selected ? ' selected' : ''}>${value.replaceAll('_', ' ')}</option>`).join('')}`
}

function filterForm (query: OrderListQuery): string {
  return html`<form method="get" action="/console/orders" class="filters" role="search" aria-label="Filter orders">
<div class="field"><label for="f-q">Search</label><input id="f-q" name="q" type="search" maxlength="256" value="${query.q ?? ''}" placeholder="order, transaction or delivery id"></div>
<div class="field"><label for="f-status">Status</label><select id="f-status" name="status">!${options(Object.values(OrderStatus), query.status, 'any')}</select></div>
<div class="field"><label for="f-anomaly">Anomaly</label><select id="f-anomaly" name="anomaly">!${options(Object.values(Anomaly), query.anomaly, 'any')}</select></div>
<div class="field"><label for="f-review">Needs review</label><select id="f-review" name="review">!${options(['yes', 'no'], query.review, 'either')}</select></div>
<div class="field"><label for="f-gateway">Gateway</label><select id="f-gateway" name="gateway">!${options(orderGateways, query.gateway, 'any')}</select></div>
<div class="field"><label for="f-currency">Currency</label><input id="f-currency" name="currency" size="4" maxlength="3" value="${query.currency ?? ''}" placeholder="CNY"></div>
<div class="field"><label for="f-time">Time of</label><select id="f-time" name="time"><option value="updated"!${query.time === 'first_seen' ? '' : ' selected'}>last event</option><option value="first_seen"!${query.time === 'first_seen' ? ' selected' : ''}>first event</option></select></div>
<div class="field"><label for="f-from">From (UTC)</label><input id="f-from" name="from" type="datetime-local" step="1" value="${query.from ?? ''}"></div>
<div class="field"><label for="f-to">Before (UTC)</label><input id="f-to" name="to" type="datetime-local" step="1" value="${query.to ?? ''}"></div>
<div class="field"><button type="submit">Apply</button></div>
<div class="field"><a class="button secondary" href="/console/orders">Clear</a></div>
</form>`
}

function orderRow (order: OrderView): string {
  return html`<tr>
<td><a class="mono" href="${orderHref(order.orderId)}">${order.orderId}</a></td>
<td>!${statusBadge(order.status)}</td>
<td class="num">${formatMoney(order.paidAmount, order.currency)}</td>
<td class="num">${formatMoney(order.refundedAmount, order.currency)}</td>
<td class="num">${expectedMoney(order)}</td>
<td>${order.gateway ?? '—'}</td>
<td>!${anomalyBadges(order.anomalies)}</td>
<td>${formatTime(order.updatedAt)}</td>
</tr>`
}

function ordersTable (orders: readonly OrderView[]): string {
  if (orders.length === 0) return notice('note', 'No orders match these filters.')
  return html`<div class="table-wrap"><table>
<caption class="muted">Orders in order id order</caption>
<thead><tr><th scope="col">Order</th><th scope="col">Status</th><th scope="col" class="num">Paid</th><th scope="col" class="num">Refunded</th><th scope="col" class="num">Expected</th><th scope="col">Gateway</th><th scope="col">Anomalies</th><th scope="col">Last event</th></tr></thead>
<tbody>!${orders.map(orderRow).join('')}</tbody>
</table></div>`
}

/**
 * GET /console/orders: every order, filtered and searched, a page at a time
 * (keyset by order id), and the same list as CSV or NDJSON.
 */
export const ordersView: FastifyPluginAsync<ConsoleContext> = async (app, context) => {
  app.get<{ Querystring: OrderListQuery }>('/console/orders', { schema: { hide: true } }, async (request, reply) => {
    const query = request.query
    const filter = parseOrderFilter(query)
    const cursor = query.cursor === undefined || query.cursor === '' ? undefined : query.cursor
    const { orders, nextCursor } = await listConsoleOrders(context.db, filter, cursor, pageSize)
    const pager = html`<nav class="pager" aria-label="Pages">!${cursor === undefined ? '' : html`<a href="/console/orders${filterQuery(query)}">First page</a>`}!${nextCursor === null ? '' : html`<a href="/console/orders${filterQuery(query, { cursor: nextCursor })}" rel="next">Next page</a>`}</nav>`
    const body = html`!${filterForm(query)}
!${ordersTable(orders)}
!${pager}
<p class="exports">Export this list (at most ${maxExportRows.toLocaleString('en')} orders): <a href="/console/export/orders${filterQuery(query, { format: 'csv' })}" download>CSV</a> · <a href="/console/export/orders${filterQuery(query, { format: 'ndjson' })}" download>NDJSON</a></p>`
    return sendPage(reply, { title: 'Orders', section: 'orders', session: sessionOf(request), body })
  })

  app.get<{ Querystring: OrderListQuery }>('/console/export/orders', { schema: { hide: true } }, async (request, reply) => {
    const format = request.query.format
    if (format !== 'csv' && format !== 'ndjson') throw new MalformedError('must be csv or ndjson', 'format')
    const { orders, nextCursor } = await listConsoleOrders(context.db, parseOrderFilter(request.query), undefined, maxExportRows)
    const truncated = nextCursor !== null
    // The name says when the list was longer than the cap, so a partial file is never taken for the whole list.
    const name = `orders${truncated ? `-first-${maxExportRows}` : ''}.${format}`
    reply.header('content-disposition', `attachment; filename="${name}"`)
    reply.header('x-paynotify-export-cap', String(maxExportRows))
    reply.header('x-paynotify-export-truncated', String(truncated))
    return format === 'csv'
      ? reply.type('text/csv; charset=utf-8').send(ordersCsv(orders))
      : reply.type('application/x-ndjson; charset=utf-8').send(ordersNdjson(orders))
  })
}
