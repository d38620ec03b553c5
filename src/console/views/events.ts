import type { FastifyPluginAsync } from 'fastify'
import { html } from 'ghtml'
import { eventTypes } from '../../orders/events.js'
import { sendPage, sessionOf, type ConsoleContext } from '../context.js'
import { readLogPage, type LogFilter, type LogRow } from '../event-log-data.js'
import { notice } from '../layout.js'
import { chainStatus, type ChainStatus } from '../overview-data.js'
import { timeHtml } from '../format.js'
import { streamHtml } from './overview.js'

// Events per page.
const pageSize = 50

interface Query { after?: string, type?: string, from?: string, to?: string }

/** A time from the form: ISO 8601, or a datetime-local value (no zone), read as UTC. */
function parseTime (value: string, field: string): string {
  const zoneless = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,3})?)?$/.test(value)
  const time = value.length <= 40 && (zoneless || /^\d{4}-\d\d-\d\dT/.test(value)) ? new Date(zoneless ? `${value}Z` : value) : new Date(Number.NaN)
  if (Number.isNaN(time.getTime())) throw new FilterError(`${field}: must be a date and time such as 2026-05-01T12:00 (UTC)`)
  return time.toISOString()
}

class FilterError extends Error {}

/** The query as a filter and a cursor; a FilterError names the first field that is not one. */
function readQuery (query: Query): { filter: LogFilter, after: number } {
  const filter: LogFilter = {}
  let after = 0
  if (query.after !== undefined && query.after !== '') {
    if (!/^\d{1,15}$/.test(query.after)) throw new FilterError('after: must be a log position (a whole number)')
    after = Number(query.after)
  }
  if (query.type !== undefined && query.type !== '') {
    if (!(eventTypes as readonly string[]).includes(query.type)) throw new FilterError('type: is not an event type of the log')
    filter.type = query.type
  }
  if (query.from !== undefined && query.from !== '') filter.from = parseTime(query.from, 'from')
  if (query.to !== undefined && query.to !== '') filter.to = parseTime(query.to, 'to')
  return { filter, after }
}

/** The page's URL with these filters and cursor. */
function pageUrl (query: Query, after: number | undefined): string {
  const params = new URLSearchParams()
  for (const key of ['type', 'from', 'to'] as const) {
    const value = query[key]
    if (value !== undefined && value !== '') params.set(key, value)
  }
  if (after !== undefined && after > 0) params.set('after', String(after))
  const search = params.toString()
  return search === '' ? '/console/events' : `/console/events?${search}`
}

function filterForm (query: Query): string {
  const field = (value: string | undefined): string => value ?? ''
  return html`<form method="get" action="/console/events" class="filters" aria-label="Filter the log">
<div class="field"><label for="f-type">Type</label><select id="f-type" name="type"><option value="">any type</option>!${eventTypes.map(type => html`<option value="${type}"!${query.type === type ? ' selected' : ''}>${type}</option>`)}</select></div>
<div class="field"><label for="f-from">From (UTC)</label><input id="f-from" name="from" type="datetime-local" step="1" value="${field(query.from)}"></div>
<div class="field"><label for="f-to">Before (UTC)</label><input id="f-to" name="to" type="datetime-local" step="1" value="${field(query.to)}"></div>
<div class="field"><label for="f-after">After position</label><input id="f-after" name="after" inputmode="numeric" pattern="[0-9]*" size="10" value="${field(query.after)}"></div>
<button type="submit">Show</button> <a href="/console/events">Clear</a>
</form>`
}

function verificationHtml (chain: ChainStatus): string {
  const verified = chain.verified.position === 0
    ? html`No start has verified the hash chain yet.`
    : html`The hash chain was last verified through position <strong>${chain.verified.position}</strong> at !${timeHtml(chain.verified.verifiedAt ?? '')} (each start checks what was appended since; <code>paynotify verify</code> checks the whole log).`
  const signed = chain.signed === null
    ? html` No signed checkpoint.`
    : html` Last signed checkpoint: position ${chain.signed.position} at !${timeHtml(chain.signed.signedAt)}.`
  return html`<p class="chain-status">!${verified}!${signed}</p>`
}

function rowHtml (row: LogRow, verifiedThrough: number): string {
  const check = row.hashMatches
    ? html`<span class="badge ok">hash holds</span>`
    : html`<span class="badge bad">hash broken</span>`
  const verified = row.position <= verifiedThrough ? html` <span class="badge">verified</span>` : ''
  return html`<tr id="p${row.position}"><td class="num">${row.position}</td><td>!${timeHtml(row.recordedAt)}</td><td>${row.type}</td><td>!${streamHtml(row.streamId)}</td><td>${row.gateway ?? ''}</td>
<td class="hashes"><dl><dt>hash</dt><dd><code class="hash">${row.hash}</code></dd><dt>previous</dt><dd><code class="hash">${row.prevHash}</code></dd></dl>!${check}!${verified}</td></tr>`
}

/**
 * GET /console/events: the global log by position, 50 at a time (cursor
 * `after`), filtered by type and time, each event with its hash and the
 * hash it chains onto, checked, and the last verification of the chain.
 */
export const eventsView: FastifyPluginAsync<ConsoleContext> = async (app, ctx) => {
  app.get<{ Querystring: Query }>('/console/events', { schema: { hide: true } }, async (request, reply) => {
    const session = sessionOf(request)
    const query: Query = {}
    for (const key of ['after', 'type', 'from', 'to'] as const) {
      const value = (request.query as Record<string, unknown>)[key]
      if (typeof value === 'string') query[key] = value
    }
    let read: { filter: LogFilter, after: number }
    try {
      read = readQuery(query)
    } catch (error) {
      if (!(error instanceof FilterError)) throw error
      return sendPage(reply.code(400), { title: 'Event log', section: 'events', session, body: html`!${notice('error', error.message)}!${filterForm(query)}` })
    }
    const chain = chainStatus(ctx.sqlite)
    const page = readLogPage(ctx.sqlite, read.filter, read.after, pageSize)
    const tail = ctx.log.tail.position
    const filtered = read.filter.type !== undefined || read.filter.from !== undefined || read.filter.to !== undefined
    const links: string[] = []
    if (page.previousAfter !== null) links.push(html`<a href="${pageUrl(query, page.previousAfter)}" rel="prev">Previous ${pageSize}</a>`)
    if (page.nextAfter !== null) links.push(html`<a href="${pageUrl(query, page.nextAfter)}" rel="next">Next ${pageSize}</a>`)
    if (read.after > 0) links.push(html`<a href="${pageUrl(query, undefined)}">First</a>`)
    if (!filtered && page.nextAfter !== null) links.push(html`<a href="${pageUrl(query, Math.max(0, tail - pageSize))}">Latest</a>`)
    const pager = links.length === 0 ? '' : html`<nav class="pager" aria-label="Pages">!${links}</nav>`
    const table = page.rows.length === 0
      ? html`<p class="muted">No event here${filtered ? ' matches the filter' : ''}.</p>`
      : html`<div class="table-wrap"><table class="event-log">
<caption>Events ${page.rows[0]!.position} to ${page.rows[page.rows.length - 1]!.position} of ${tail}, by position</caption>
<thead><tr><th scope="col" class="num">Position</th><th scope="col">Time</th><th scope="col">Type</th><th scope="col">Order or stream</th><th scope="col">Gateway</th><th scope="col">Hash chain</th></tr></thead>
<tbody>!${page.rows.map(row => rowHtml(row, chain.verified.position))}</tbody>
</table></div>`
    return sendPage(reply, { title: 'Event log', section: 'events', session, body: html`!${verificationHtml(chain)}!${filterForm(query)}!${pager}!${table}!${pager}` })
  })
}
