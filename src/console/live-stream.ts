import { Readable } from 'node:stream'
import type { CommitObservable } from '../event-log/event-log.js'

/** The log as the live stream sees it: its commits, and where its tail is after them. */
export type LiveSource = CommitObservable & { readonly tail: { position: number } }

// Messages a client has not read yet, at most: hours of commits and heartbeats.
const maxBufferedBytes = 64 * 1024

export interface LiveStreamOptions {
  /** Least time between two commit messages: a busy log sends one per interval, not one per batch. */
  minIntervalMs: number
  /** A comment this often keeps proxies from closing a quiet stream. */
  heartbeatMs: number
}

/**
 * Server-sent events for a console page: `event: commit` with the log's
 * tail position after commits, at most one per minIntervalMs (the last
 * commit of an interval is never lost: a message is sent when it ends), and
 * a comment every heartbeatMs. It holds nothing but two timers and a
 * listener, all let go when it is destroyed (the client went away) or ended.
 */
export class LiveStream extends Readable {
  readonly #source: LiveSource
  readonly #options: LiveStreamOptions
  readonly #stopObserving: () => void
  readonly #heartbeat: NodeJS.Timeout
  #throttle: NodeJS.Timeout | undefined
  #lastSentAt = 0
  #sentPosition: number

  constructor (source: LiveSource, options: LiveStreamOptions) {
    super()
    this.#source = source
    this.#options = options
    this.#sentPosition = source.tail.position
    this.#stopObserving = source.observeCommits(() => { this.#committed() })
    this.#heartbeat = setInterval(() => { this.#write(': keep-alive\n\n') }, options.heartbeatMs)
    // Sent at once so the answer's headers leave now (fastify writes them with the first chunk).
    this.#write(`retry: 5000\n: position ${this.#sentPosition}\n\n`)
  }

  override _read (): void {}

  /** Ends the stream (the service is closing): the browser reconnects when it can. */
  finish (): void {
    this.#release()
    this.push(null)
  }

  override _destroy (error: Error | null, callback: (error?: Error | null) => void): void {
    this.#release()
    callback(error)
  }

  #release (): void {
    this.#stopObserving()
    clearInterval(this.#heartbeat)
    clearTimeout(this.#throttle)
    this.#throttle = undefined
  }

  #committed (): void {
    if (this.#throttle !== undefined) return
    const wait = this.#lastSentAt + this.#options.minIntervalMs - Date.now()
    if (wait <= 0) {
      this.#send()
      return
    }
    this.#throttle = setTimeout(() => {
      this.#throttle = undefined
      this.#send()
    }, wait)
  }

  #send (): void {
    const position = this.#source.tail.position
    if (position === this.#sentPosition || this.destroyed) return
    this.#sentPosition = position
    this.#lastSentAt = Date.now()
    this.#write(`event: commit\ndata: ${JSON.stringify({ position })}\n\n`)
  }

  #write (text: string): void {
    // A client that stopped reading is let go rather than buffered for (maxBufferedBytes / ~60 B/s).
    if (this.readableLength > maxBufferedBytes) {
      this.destroy()
      return
    }
    this.push(text)
  }
}
