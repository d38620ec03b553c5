import type { Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import { AppError, MalformedError } from '../errors.js'
import { orderIdPattern, type EventMetadata, type RecordedEvent, type ReviewNoteRecorded, type ReviewNoteRecordedData } from './events.js'
import type { Anomaly, OrderView } from './order-fold.js'
import { findOrder } from './queries.js'

/** The longest note, in characters (code points, as JSON Schema's maxLength counts them). */
export const maxNoteLength = 500

// Characters a note never holds: C0 and C1 controls and DEL, the line and paragraph separators, the
// bidirectional embeddings, overrides and isolates (text that reads one way and shows another), and
// lone surrogates (with the u flag a pair is one code point, so only a lone half matches).
const forbidden = '\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069\\ud800-\\udfff'

/**
 * A note as the log keeps it: 1-500 allowed characters, trimmed (no
 * whitespace at either end). events/schemas/ReviewNoteRecorded.v1.json has
 * this pattern (test/orders/review-notes.test.ts holds them equal).
 */
export const notePattern = new RegExp(`^(?!\\s)(?![\\s\\S]*\\s$)[^${forbidden}]{1,${maxNoteLength}}$`, 'u')

const forbiddenCharacter = new RegExp(`[${forbidden}]`, 'u')

/** Who recorded a note: the admin request (API or console), its id and the client's address. */
export type ReviewActor = ReviewNoteRecordedData['actor']

/** What recordReviewNote needs of the log: the service's EventAppender (in-process or the writer thread) fits. */
export interface ReviewNoteAppender {
  append: (events: ReadonlyArray<ReviewNoteRecorded & { streamId: string, metadata: EventMetadata }>) => Promise<RecordedEvent[]>
}

export interface ReviewNoteResult {
  /** The note's position in the log. */
  position: number
  recordedAt: string
  /** The anomalies it resolved: the order's, as they stood. */
  resolves: Anomaly[]
  /** The order's view once the note is in it. */
  order: OrderView
}

/**
 * The note as it is stored: `note` trimmed, then refused (400, naming
 * `note`) when empty, longer than maxNoteLength, or holding a character
 * notePattern forbids.
 */
export function normalizeNote (note: string): string {
  const text = note.trim()
  if (text === '') throw new MalformedError('must not be empty', 'note')
  // Code points, as the schema counts; the cheap UTF-16 length first (it is never smaller).
  if (text.length > maxNoteLength && [...text].length > maxNoteLength) throw new MalformedError(`must be at most ${maxNoteLength} characters`, 'note')
  if (forbiddenCharacter.test(text)) throw new MalformedError('must not contain control, line-separator or bidirectional-override characters', 'note')
  return text
}

// Notes of one order, per log, run one after another: of two admins resolving the same
// anomalies at once, the second is told there is nothing left to review.
const inFlight = new WeakMap<ReviewNoteAppender, Map<string, Promise<unknown>>>()

async function oneAtATime<T> (eventLog: ReviewNoteAppender, orderId: string, work: () => Promise<T>): Promise<T> {
  let running = inFlight.get(eventLog)
  if (running === undefined) inFlight.set(eventLog, running = new Map())
  const current = (running.get(orderId) ?? Promise.resolve()).then(work, work)
  running.set(orderId, current)
  try {
    return await current
  } finally {
    if (running.get(orderId) === current) running.delete(orderId)
  }
}

/**
 * Records an admin's review note on an order as a ReviewNoteRecorded event
 * in the order's stream: it resolves the anomalies the order has now, so the
 * order leaves the review queue until a new anomaly appears. It never changes
 * money state. The admin API (POST /admin/orders/:id/review-notes) and the
 * console both record notes through this.
 *
 * Refuses (AppError, with its HTTP status) a note normalizeNote refuses
 * (400 malformed), an order with no events (404 order_not_found), and an
 * order with no anomaly left to review (409 nothing_to_review). Resolves
 * once the note is durable, with the order's view after it.
 */
export async function recordReviewNote (
  eventLog: ReviewNoteAppender,
  db: Kysely<Database>,
  orderId: string,
  note: string,
  actor: ReviewActor,
  now: () => Date = () => new Date()
): Promise<ReviewNoteResult> {
  const text = normalizeNote(note)
  if (!orderIdPattern.test(orderId)) throw new AppError(404, 'order_not_found', 'no such order')
  if (actor.requestId.length < 1 || actor.requestId.length > 128 || actor.address.length > 64) {
    throw new Error('a review note\'s actor needs a request id of 1-128 characters and an address of at most 64')
  }
  return await oneAtATime(eventLog, orderId, async () => {
    const before = await findOrder(db, orderId)
    if (before === undefined) throw new AppError(404, 'order_not_found', `no order ${orderId}`)
    if (!before.needsReview) throw new AppError(409, 'nothing_to_review', `order ${orderId} has no anomaly left to review`)
    const data: ReviewNoteRecordedData = { orderId, note: text, resolves: [...before.anomalies].sort(), actor: { requestId: actor.requestId, address: actor.address } }
    const [recorded] = await eventLog.append([{
      streamId: orderId,
      type: 'ReviewNoteRecorded',
      data,
      // The actor kind stands where a gateway would (as EndpointChanged's do); one request records one note.
      metadata: { gateway: 'admin', deliveryId: `review:${actor.requestId}`, receivedAt: now().toISOString(), requestId: actor.requestId }
    }])
    if (recorded === undefined) throw new Error(`the review note of request ${actor.requestId} was not stored`)
    const order = await findOrder(db, orderId)
    return { position: recorded.position, recordedAt: recorded.recordedAt, resolves: data.resolves, order: order! }
  })
}
