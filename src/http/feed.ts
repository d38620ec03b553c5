import { Readable } from 'node:stream'
import type { EventEmitter } from 'node:events'
import type SQLite from 'better-sqlite3'

// Messages read per query: a reader that stops reading holds at most this many in memory, plus the socket's buffers.
const pageSize = 100
// A comment line this often keeps proxies from closing an idle feed.
const heartbeatMs = 15_000
// Looked for at least this often even without a commit signal (another process's writes, a missed wake-up).
const pollMs = 1000

interface FeedRow { seq: number, type: string, payload: string }

/**
 * The outbox as server-sent events, from after `after` on, live: each
 * message once, `id:` its seq (so Last-Event-ID resumes without repeats),
 * `event:` its type, `data:` the body endpoints receive. Reads a page only
 * when the socket took the previous one (backpressure); when caught up it
 * waits for a commit (or a poll), sending a comment now and then.
 */
export class FeedStream extends Readable {
  readonly #page: SQLite.Statement<[number, number, number], FeedRow>
  readonly #commits: EventEmitter
  readonly #durablePosition: () => number
  #after: number
  #reading = false
  #wake: (() => void) | undefined
  #lastSent = Date.now()

  /** `durablePosition`: the log's last position on disk; later messages wait for their sync (dispatcher.ts). */
  constructor (sqlite: SQLite.Database, commits: EventEmitter, after: number, durablePosition: () => number) {
    super({ highWaterMark: 64 * 1024 })
    // seq follows position (each message is written in its event's transaction): the bound never skips one.
    this.#page = sqlite.prepare('SELECT seq, type, payload FROM outbox WHERE seq > ? AND position <= ? ORDER BY seq LIMIT ?')
    this.#commits = commits
    this.#durablePosition = durablePosition
    this.#after = after
  }

  override _read (): void {
    if (this.#reading) return
    this.#reading = true
    this.#next().catch((error: Error) => { this.destroy(error) })
  }

  override _destroy (error: Error | null, callback: (error?: Error | null) => void): void {
    this.#wake?.()
    callback(error)
  }

  async #next (): Promise<void> {
    for (;;) {
      if (this.destroyed) return
      const rows = this.#page.all(this.#after, this.#durablePosition(), pageSize)
      if (rows.length > 0) {
        let text = ''
        for (const row of rows) text += `id: ${row.seq}\nevent: ${row.type}\ndata: ${row.payload}\n\n`
        this.#after = rows[rows.length - 1]!.seq
        this.#lastSent = Date.now()
        this.#reading = false
        this.push(text)
        return
      }
      await this.#waitForCommit()
      if (Date.now() - this.#lastSent >= heartbeatMs) {
        this.#lastSent = Date.now()
        this.#reading = false
        this.push(': keep-alive\n\n')
        return
      }
    }
  }

  async #waitForCommit (): Promise<void> {
    await new Promise<void>(resolve => {
      const done = (): void => {
        clearTimeout(timer)
        this.#commits.off('committed', done)
        this.#wake = undefined
        resolve()
      }
      const timer = setTimeout(done, pollMs)
      this.#commits.on('committed', done)
      this.#wake = done
    })
  }
}
