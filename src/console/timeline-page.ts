import type SQLite from 'better-sqlite3'
import type { Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import { readStream, rowToEvent } from '../event-log/read.js'
import { readTimelinePage, type TimelineEntry, type TimelinePage } from '../event-log/timeline.js'
import type { RecordedEvent } from '../orders/events.js'
import { deliveryKey, factKey, type OrderState } from '../orders/order-fold.js'

/**
 * readTimelinePage (the admin API's) for the console, without folding the
 * events before the page. An event is a repeat exactly when it is not the
 * first of its delivery (then it repeats that delivery's first position), or
 * not the first report of its fact (then it repeats the fact's first
 * position, which the fold never changes once set). Those first positions
 * are in the order's stored fold state (orders.state), so one page costs the
 * same on any page: on 1M events, the order page showing the last page of an
 * order of 10,000 deliveries took 452 ms of server time folding the 9,950
 * before it, 24 ms reading them from the state (medians of 21 on the same
 * busy 2-core machine, bench/console.js). A newer state than the page read is as
 * good: first positions never move. test/console/timeline-page.test.ts holds
 * every page equal to readTimelinePage's; where the state cannot say (no
 * state row, a key it lacks), the page is readTimelinePage's.
 */
export async function readConsoleTimelinePage (sqlite: SQLite.Database, db: Kysely<Database>, orderId: string, cursor: number, limit: number): Promise<TimelinePage> {
  const stored = sqlite.prepare('SELECT state FROM orders WHERE order_id = ?').pluck().get(orderId) as string | undefined
  if (stored === undefined) return await readTimelinePage(sqlite, db, orderId, cursor, limit)
  const state = JSON.parse(stored) as OrderState
  const rows = await readStream(db, orderId, cursor, limit + 1)
  const entries: TimelineEntry[] = []
  for (const row of rows.slice(0, limit)) {
    const entry = classify(state, rowToEvent(row))
    if (entry === undefined) return await readTimelinePage(sqlite, db, orderId, cursor, limit)
    entries.push(entry)
  }
  const unstored = sqlite.prepare('SELECT coalesce(sum(unstored), 0) FROM deliveries WHERE stream_id = ?').pluck().get(orderId) as number
  return {
    entries,
    nextCursor: rows.length > limit ? entries[entries.length - 1]!.streamVersion : null,
    unknown: false,
    unstoredRepeats: unstored
  }
}

/** An event marked as the fold marks it, from the order's final state; undefined when the state does not know it. */
function classify (state: OrderState, event: RecordedEvent): TimelineEntry | undefined {
  const firstDelivery = state.deliveries[deliveryKey(event.metadata)]
  if (firstDelivery === undefined) return undefined
  if (firstDelivery !== event.position) return { ...event, outcome: 'duplicate', duplicateReason: 'delivery', duplicateOf: firstDelivery }
  let firstReport: number | undefined
  switch (event.type) {
    case 'OrderPlaced':
      firstReport = state.placed?.firstPosition
      break
    case 'PaymentPending':
    case 'PaymentSucceeded':
    case 'PaymentFailed':
    case 'PaymentRefunded':
    case 'RefundFailed':
    case 'PaymentClosed':
      firstReport = state.facts[factKey(event.type, event.data)]?.firstPosition
      break
    case 'UnattributedReportReceived':
      // Never in an order's own stream: the fold of the whole history decides.
      return undefined
    case 'EndpointChanged':
    case 'ReviewNoteRecorded':
      return { ...event, outcome: 'applied' }
    default:
      return assertNever(event)
  }
  if (firstReport === undefined) return undefined
  return firstReport === event.position
    ? { ...event, outcome: 'applied' }
    : { ...event, outcome: 'duplicate', duplicateReason: 'fact', duplicateOf: firstReport }
}

function assertNever (value: never): never {
  throw new Error(`unhandled event ${JSON.stringify(value)}`)
}
