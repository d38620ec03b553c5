import { Readable } from 'node:stream'
import type { Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import { readEvents, rowToEvent, type EventQuery } from '../event-log/read.js'

// Rows read per query. A page is all the stream holds beyond what the socket has taken, so its
// size bounds the memory a reader that stops reading can cost: 64 rows of a 64 KiB body are
// ~5 MB of JSON. Smaller pages cost more queries: 1M events in pages of 64 take ~16k queries.
const pageSize = 64

/**
 * The log as NDJSON, one event per line (what GET /admin/events streams).
 * It reads a page only when the reader has taken the one before
 * (backpressure): a client that stops reading stops the reads, so memory
 * stays bounded by a page and the socket's buffers, whatever the log's size.
 * Each page is its own query, so no statement stays open on the connection
 * between pages.
 */
export class EventStream extends Readable {
  readonly #db: Kysely<Database>
  readonly #filter: Omit<EventQuery, 'limit'>
  #after: number
  #remaining: number
  #reading = false

  constructor (db: Kysely<Database>, filter: Omit<EventQuery, 'limit'>, max?: number) {
    super({ highWaterMark: 64 * 1024 })
    this.#db = db
    this.#filter = filter
    this.#after = filter.after ?? 0
    this.#remaining = max ?? Number.POSITIVE_INFINITY
  }

  override _read (): void {
    if (this.#reading) return
    this.#reading = true
    this.#readPage().catch((error: Error) => { this.destroy(error) })
  }

  async #readPage (): Promise<void> {
    const rows = this.#remaining <= 0 ? [] : await readEvents(this.#db, { ...this.#filter, after: this.#after, limit: Math.min(pageSize, this.#remaining) })
    if (this.destroyed) return
    // Cleared before push: push may ask for the next page at once (_read), and must get it.
    this.#reading = false
    if (rows.length === 0) {
      this.push(null)
      return
    }
    this.#after = rows[rows.length - 1]!.position
    this.#remaining -= rows.length
    let lines = ''
    for (const row of rows) lines += JSON.stringify(rowToEvent(row)) + '\n'
    // Whatever push answers, the next page is read only when Readable asks for it (_read).
    this.push(lines)
  }
}
