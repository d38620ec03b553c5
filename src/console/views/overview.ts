import type { FastifyPluginAsync } from 'fastify'
import { html } from 'ghtml'
import type { RefusalSummary } from '../../http/refusals.js'
import { isOrderStream } from '../../orders/events.js'
import { countOrdersNeedingReview } from '../../orders/queries.js'
import { sendPage, sessionOf, type ConsoleContext } from '../context.js'
import { timeHtml } from '../format.js'
import {
  CallbackMinutes, chainStatus, lastEvent, minuteOf, ordersByStatus, recentEvents, checkWrites,
  type CallbacksPerMinute, type ChainStatus, type RecentEvent, type WriteCheck
} from '../overview-data.js'
import { liveView } from './live.js'

// Events the recent deliveries list shows.
const recentLimit = 20
// A commit older than this is shown as a warning: a service that takes callbacks commits often.
const quietAfterMs = 15 * 60_000

/** An order's stream links to its page; another stream (unattributed reports, endpoints) is shown as text. */
export function streamHtml (streamId: string): string {
  return isOrderStream(streamId)
    ? html`<a href="/console/orders/${encodeURIComponent(streamId)}">${streamId}</a>`
    : html`<span class="mono">${streamId}</span>`
}

/** The recent deliveries table: what GET /console/fragments/recent sends and the overview embeds. */
export function recentHtml (events: readonly RecentEvent[]): string {
  if (events.length === 0) return html`<p class="muted" data-announce="">The log is empty.</p>`
  const newest = events[0]!
  const announce = `Newest event: position ${newest.position}, ${newest.type}${newest.gateway === null ? '' : ` from ${newest.gateway}`}, ${newest.streamId}`
  return html`<div class="table-wrap"><table class="recent" data-announce="${announce}">
<caption>The last ${events.length} events, newest first</caption>
<thead><tr><th scope="col" class="num">Position</th><th scope="col">Time</th><th scope="col">Gateway</th><th scope="col">Type</th><th scope="col">Order or stream</th></tr></thead>
<tbody>!${events.map(event => html`<tr data-position="${event.position}"><td class="num"><a href="/console/events?after=${event.position - 1}">${event.position}</a></td><td>!${timeHtml(event.recordedAt)}</td><td>${event.gateway ?? ''}</td><td>${event.type}</td><td>!${streamHtml(event.streamId)}</td></tr>`)}</tbody>
</table></div>`
}

// Width classes of the per-minute bars (console.css): tenths of the busiest minute.
function barHtml (count: number, max: number): string {
  const tenths = max === 0 ? 0 : Math.max(count > 0 ? 1 : 0, Math.round(count / max * 10))
  return html`<span class="bar bar-${tenths}" aria-hidden="true"></span>`
}

function minutesHtml (data: CallbacksPerMinute, now: Date): string {
  const gateways = [...new Set(data.counts.map(c => c.gateway))].sort()
  const byMinute = new Map<string, Map<string, number>>()
  for (const { minute, gateway, count } of data.counts) {
    const row = byMinute.get(minute) ?? new Map<string, number>()
    row.set(gateway, count)
    byMinute.set(minute, row)
  }
  const minutes: string[] = []
  for (let i = 0; i < 60; i++) minutes.push(minuteOf(new Date(now.getTime() - i * 60_000)))
  const totals = new Map(minutes.map(minute => [minute, [...(byMinute.get(minute)?.values() ?? [])].reduce((a, b) => a + b, 0)]))
  const max = Math.max(0, ...totals.values())
  const all = [...totals.values()].reduce((a, b) => a + b, 0)
  const truncated = data.truncatedAt === null
    ? ''
    : html`<p class="warn-text">More events arrived than one look reads: the counts start at !${timeHtml(data.truncatedAt)}.</p>`
  if (all === 0) return html`<p class="muted">No callbacks since ${data.since.replace('T', ' ')} UTC.</p>`
  // A run of quiet minutes is one row: an hour of zeros says less than "none from 11:02 to 11:40".
  const rows: string[] = []
  for (let i = 0; i < minutes.length;) {
    const minute = minutes[i]!
    const row = byMinute.get(minute)
    if (row !== undefined) {
      rows.push(html`<tr><th scope="row">${minute.slice(11)}</th>!${gateways.map(g => html`<td class="num">${row.get(g) ?? 0}</td>`)}<td class="num">${totals.get(minute) ?? 0}</td><td class="bar-cell">!${barHtml(totals.get(minute) ?? 0, max)}</td></tr>`)
      i++
      continue
    }
    let j = i
    while (j + 1 < minutes.length && !byMinute.has(minutes[j + 1]!)) j++
    const span = j === i ? minute.slice(11) : `${minutes[j]!.slice(11)} to ${minute.slice(11)}`
    rows.push(html`<tr class="quiet"><th scope="row">${span}</th><td colspan="${gateways.length + 2}" class="muted">no callbacks</td></tr>`)
    i = j + 1
  }
  return html`!${truncated}<div class="table-wrap minutes"><table>
<caption>Callbacks per minute by gateway since ${data.since.replace('T', ' ')} UTC: ${all} in all, newest minute first</caption>
<thead><tr><th scope="col">Minute (UTC)</th>!${gateways.map(g => html`<th scope="col" class="num">${g}</th>`)}<th scope="col" class="num">Total</th><th scope="col"><span class="visually-hidden">Share of the busiest minute</span></th></tr></thead>
<tbody>!${rows}</tbody>
</table></div>`
}

function refusalsHtml (summary: RefusalSummary | undefined): string {
  if (summary === undefined) return html`<p class="muted">No refusal store: this service keeps no refused callbacks (PAYNOTIFY_REFUSALS_MAX=0).</p>`
  if (summary.total === 0) return html`<p class="muted">No callback refused since !${timeHtml(summary.since)}.</p>`
  const rows = (items: ReadonlyArray<{ name: string, count: number }>): string => items.map(item => html`<tr><td>${item.name}</td><td class="num">${item.count}</td></tr>`).join('')
  return html`<div class="table-wrap"><table><caption>${summary.total} refused since !${timeHtml(summary.since)}</caption>
<thead><tr><th scope="col">Reason</th><th scope="col" class="num">Refusals</th></tr></thead>
<tbody>!${rows(summary.byCode.map(c => ({ name: c.code, count: c.count })))}</tbody></table></div>
<div class="table-wrap"><table><caption class="visually-hidden">Refusals by gateway</caption>
<thead><tr><th scope="col">Gateway</th><th scope="col" class="num">Refusals</th></tr></thead>
<tbody>!${rows(summary.byGateway.map(g => ({ name: g.gateway ?? '(none, or past the names counted)', count: g.count })))}</tbody></table></div>
<p><a href="/console/refusals">The refused callbacks</a></p>`
}

function chainHtml (chain: ChainStatus): string {
  const verified = chain.verified.position === 0
    ? html`<dd>none yet (a start verifies what was appended since its last check)</dd>`
    : html`<dd>position ${chain.verified.position}, at !${timeHtml(chain.verified.verifiedAt ?? '')}</dd>`
  const signed = chain.signed === null
    ? html`<dd>no signed checkpoint</dd>`
    : html`<dd>position ${chain.signed.position}, at !${timeHtml(chain.signed.signedAt)}</dd>`
  return html`<dl class="facts"><dt>Verified through</dt>!${verified}<dt>Last signed</dt>!${signed}</dl>`
}

interface StoreHealth { writes: WriteCheck, writerPosition: number, readerPosition: number, lastCommitAt: Date | undefined }

function healthHtml (health: StoreHealth, now: Date): string {
  const writable = {
    writable: html`<span class="badge ok">takes writes</span>`,
    busy: html`<span class="badge">writer busy at this instant</span>`,
    refused: html`<span class="badge bad">refuses writes</span>`
  }[health.writes]
  const inStep = health.writerPosition === health.readerPosition
    ? html`position ${health.writerPosition}`
    : html`writer at ${health.writerPosition}, reads at ${health.readerPosition}`
  let commit: string
  if (health.lastCommitAt === undefined) commit = html`<span class="muted">none since the service started</span>`
  else {
    const quiet = now.getTime() - health.lastCommitAt.getTime() > quietAfterMs
    commit = html`!${timeHtml(health.lastCommitAt.toISOString())}!${quiet ? html` <span class="badge warn">quiet</span>` : ''}`
  }
  return html`<dl class="facts"><dt>Database</dt><dd>!${writable}</dd><dt>Log tail</dt><dd>!${inStep}</dd><dt>Last commit</dt><dd>!${commit}</dd></dl>`
}

/**
 * GET /console/: the last hour at a glance (callbacks per minute by
 * gateway, orders by status, the review queue, the chain, the store) and
 * the recent deliveries, kept current by console-assets/live.js over
 * GET /console/live.
 */
export const overviewView: FastifyPluginAsync<ConsoleContext> = async (app, ctx) => {
  await app.register(liveView, ctx)

  const minutes = new CallbackMinutes(ctx.sqlite)
  // When this process last committed: the store's health without touching the disk.
  let lastCommitAt: Date | undefined
  const stopObserving = ctx.log.observeCommits(() => { lastCommitAt = ctx.now() })
  app.addHook('onClose', async () => { stopObserving() })

  app.get('/console/fragments/recent', { schema: { hide: true } }, async (_request, reply) => {
    return await reply.type('text/html; charset=utf-8').send(recentHtml(recentEvents(ctx.sqlite, recentLimit)))
  })

  /** The first row of cards: cheap reads only (the primary key, the partial review index, one-row tables), so it can follow every commit. */
  const summaryHtml = async (now: Date): Promise<string> => {
    const { sqlite } = ctx
    const last = lastEvent(sqlite)
    const review = await countOrdersNeedingReview(ctx.db)
    const health: StoreHealth = { writes: checkWrites(sqlite), writerPosition: ctx.log.tail.position, readerPosition: last?.position ?? 0, lastCommitAt }
    return html`<div class="cards">
<section class="card" aria-labelledby="last-event"><h2 id="last-event">Last event</h2>!${last === undefined
    ? html`<p class="muted">The log is empty.</p>`
    : html`<p>!${timeHtml(last.recordedAt)}</p><p class="muted">position ${last.position}</p>`}</section>
<section class="card" aria-labelledby="anomalies"><h2 id="anomalies">Open anomalies</h2><p><a href="/console/review"><span class="big-number">${review}</span> ${review === 1 ? 'order needs' : 'orders need'} review</a></p></section>
<section class="card" aria-labelledby="chain"><h2 id="chain">Hash chain</h2>!${chainHtml(chainStatus(sqlite))}</section>
<section class="card" aria-labelledby="store"><h2 id="store">Store health</h2>!${healthHtml(health, now)}</section>
</div>`
  }

  app.get('/console/fragments/summary', { schema: { hide: true } }, async (_request, reply) => {
    return await reply.type('text/html; charset=utf-8').send(await summaryHtml(ctx.now()))
  })

  app.get('/console/', { schema: { hide: true } }, async (request, reply) => {
    const now = ctx.now()
    const { sqlite } = ctx
    const statuses = ordersByStatus(sqlite)
    const orderCount = statuses.reduce((sum, s) => sum + s.count, 0)
    const body = html`
<div data-live-src="/console/fragments/summary">!${await summaryHtml(now)}</div>
<div class="cards">
<section class="card" aria-labelledby="statuses"><h2 id="statuses">Orders by status</h2>!${orderCount === 0
    ? html`<p class="muted">No orders yet.</p>`
    : html`<div class="table-wrap"><table><caption class="visually-hidden">Orders by status</caption><thead><tr><th scope="col">Status</th><th scope="col" class="num">Orders</th></tr></thead>
<tbody>!${statuses.map(s => html`<tr><td><a href="/console/orders?status=${s.status}">${s.status}</a></td><td class="num">${s.count}</td></tr>`)}</tbody>
<tfoot><tr><th scope="row">All</th><td class="num">${orderCount}</td></tr></tfoot></table></div>`}</section>
<section class="card" aria-labelledby="refusals"><h2 id="refusals">Refusals by reason</h2>!${refusalsHtml(ctx.refusals?.summary(now.getTime() - 59 * 60_000))}</section>
</div>
<section aria-labelledby="recent"><h2 id="recent">Recent deliveries</h2>
<p id="live-status" class="visually-hidden" role="status" aria-live="polite"></p>
<div data-live-src="/console/fragments/recent" data-live-announce="live-status">!${recentHtml(recentEvents(sqlite, recentLimit))}</div>
</section>
<section aria-labelledby="minutes"><h2 id="minutes">Callbacks in the last hour</h2>
<p class="muted">Counted when the page loaded; reload for the latest minute.</p>
!${minutesHtml(minutes.read(now), now)}
</section>`
    return sendPage(reply, { title: 'Overview', section: 'overview', session: sessionOf(request), scripts: ['live.js'], body })
  })
}
