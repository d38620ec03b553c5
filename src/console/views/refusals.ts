import type { FastifyPluginAsync } from 'fastify'
import { html } from 'ghtml'
import { maxBodyBytes, type Refusal, type RefusalStore } from '../../http/refusals.js'
import { sendPage, sessionOf, type ConsoleContext } from '../context.js'
import { notice } from '../layout.js'

const pageSize = 25

interface RefusalsQuery { gateway?: string, code?: string, before?: number }

/**
 * /console/refusals: the last refused callbacks the in-memory store keeps
 * (http/refusals.ts), newest first, filtered by gateway and reason, paged by
 * the store's id cursor. Headers arrive redacted; the body's head, the
 * message and every header came from outside and are rendered as text.
 */
export const refusalsView: FastifyPluginAsync<ConsoleContext> = async (app, context) => {
  const { refusals } = context
  app.get<{ Querystring: RefusalsQuery }>('/console/refusals', {
    schema: {
      hide: true,
      querystring: {
        type: 'object',
        properties: { gateway: { type: 'string', maxLength: 32 }, code: { type: 'string', maxLength: 64 }, before: { type: 'integer', minimum: 1 } }
      }
    }
  }, async (request, reply) => {
    const session = sessionOf(request)
    if (refusals === undefined) {
      return sendPage(reply, { title: 'Refusals', section: 'refusals', session, body: notice('note', 'Refused callbacks are not kept in this service (PAYNOTIFY_REFUSALS_MAX=0).') })
    }
    const gateway = emptyAsUndefined(request.query.gateway)
    const code = emptyAsUndefined(request.query.code)
    const page = refusals.list({ gateway, code, before: request.query.before, limit: pageSize })
    return sendPage(reply, { title: 'Refusals', section: 'refusals', session, body: refusalsPage(refusals, page, { gateway, code, before: request.query.before }) })
  })
}

function emptyAsUndefined (value: string | undefined): string | undefined {
  return value === '' ? undefined : value
}

function refusalsPage (store: RefusalStore, page: { refusals: Refusal[], nextCursor: number | null }, query: RefusalsQuery): string {
  const stats = store.stats()
  // The choices are what the store holds now (at most maxEntries), plus what is asked for.
  const kept = store.list({ limit: store.maxEntries }).refusals
  const gateways = choices(kept.map(refusal => refusal.gateway ?? ''), query.gateway)
  const codes = choices(kept.map(refusal => refusal.code), query.code)
  const filters = html`<form method="get" action="/console/refusals" class="filters">
<div class="field"><label for="refusal-gateway">Gateway</label><select id="refusal-gateway" name="gateway"><option value="">any</option>!${gateways.map(name => html`<option value="${name}"!${name === query.gateway ? ' selected' : ''}>${name}</option>`).join('')}</select></div>
<div class="field"><label for="refusal-code">Reason</label><select id="refusal-code" name="code"><option value="">any</option>!${codes.map(name => html`<option value="${name}"!${name === query.code ? ' selected' : ''}>${name}</option>`).join('')}</select></div>
<button type="submit">Filter</button>
</form>
<p class="muted">Kept in memory, apart from the event log: ${stats.entries} of at most ${stats.maxEntries} (${stats.recorded} refused since the service started, ${stats.evicted} dropped, oldest first). Headers that carry signatures or tokens are redacted; the body is its first ${maxBodyBytes} bytes, as text.</p>`
  const filtered = query.gateway !== undefined || query.code !== undefined
  const list = page.refusals.length === 0
    ? notice('note', query.before !== undefined ? 'No older refusals.' : filtered ? 'No refusal kept matches these filters.' : 'No callback has been refused since the service started.')
    : page.refusals.map(refusalSection).join('')
  const params = (extra: Record<string, string>): string => {
    const search = new URLSearchParams()
    if (query.gateway !== undefined) search.set('gateway', query.gateway)
    if (query.code !== undefined) search.set('code', query.code)
    for (const [key, value] of Object.entries(extra)) search.set(key, value)
    const text = search.toString()
    return text === '' ? '/console/refusals' : `/console/refusals?${text}`
  }
  const pager = query.before === undefined && page.nextCursor === null
    ? ''
    : html`<nav class="pager" aria-label="Pages">!${query.before === undefined ? '' : html`<a href="${params({})}">Newest</a>`}!${page.nextCursor === null ? '' : html`<a href="${params({ before: String(page.nextCursor) })}">Older</a>`}</nav>`
  return filters + list + pager
}

function choices (values: readonly string[], asked: string | undefined): string[] {
  const set = new Set(values.filter(value => value !== ''))
  if (asked !== undefined) set.add(asked)
  return [...set].sort()
}

function refusalSection (refusal: Refusal): string {
  const headerNames = Object.keys(refusal.headers)
  return html`<section class="refusal card" aria-labelledby="refusal-${refusal.id}">
<h2 id="refusal-${refusal.id}"><span class="badge bad">${refusal.code}</span> ${refusal.gateway ?? '(no gateway)'} · <time datetime="${refusal.at}">${refusal.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time></h2>
<dl class="facts">
<dt>Reason</dt><dd class="outside">${refusal.message}</dd>
<dt>Answered</dt><dd>${refusal.statusCode}</dd>
<dt>From</dt><dd class="mono">${refusal.address}</dd>
<dt>Body</dt><dd>${refusal.bodyRead ? `${refusal.bodySize} bytes${refusal.bodyTruncated ? `, the first ${maxBodyBytes} shown` : ''}` : 'not read (refused before it)'}</dd>
</dl>
<details><summary>Headers (${headerNames.length}${refusal.headersTruncated ? ', some cut' : ''})</summary>
<div class="table-wrap"><table class="refusal-headers"><thead><tr><th scope="col">Name</th><th scope="col">Value</th></tr></thead>
<tbody>!${headerNames.map(name => html`<tr><td class="mono">${name}</td><td class="mono outside">${refusal.headers[name]}</td></tr>`).join('')}</tbody></table></div>
</details>
!${refusal.bodyRead && refusal.body !== '' ? html`<details open><summary>Body</summary><pre class="refused-body">${refusal.body}</pre></details>` : ''}
</section>`
}
