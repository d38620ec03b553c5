import http from 'node:http'
import https from 'node:https'
import { isIP } from 'node:net'
import { hostOf, isPublicAddress, publicOnlyLookup } from './endpoint-url.js'

/** How much of an answer is kept with its attempt. */
export const responseExcerptBytes = 4096
// Read beyond the excerpt (and dropped) so the connection can be reused; a longer answer closes it.
const drainLimitBytes = 64 * 1024

export interface SendOptions {
  timeoutMs: number
  /** PAYNOTIFY_OUTBOUND_ALLOW_PRIVATE: connect to loopback and private addresses too. */
  allowPrivate: boolean
}

/** What one attempt got: an answer (status and its first 4 KiB), or the error that stopped it. */
export interface SendResult {
  status: number | null
  body: string | null
  retryAfter: string | undefined
  error: string | null
  durationMs: number
}

/**
 * Sends agents: keep-alive connections per origin, so a busy endpoint is
 * not paying a TCP (and TLS) handshake per message.
 */
export class Sender {
  readonly #options: SendOptions
  readonly #http: http.Agent
  readonly #https: https.Agent

  constructor (options: SendOptions, maxSockets: number) {
    this.#options = options
    const lookup = options.allowPrivate ? undefined : publicOnlyLookup
    this.#http = new http.Agent({ keepAlive: true, maxSockets, lookup } as http.AgentOptions)
    this.#https = new https.Agent({ keepAlive: true, maxSockets, lookup } as https.AgentOptions)
  }

  /**
   * POSTs `body` with `headers`. Redirects are not followed (a 3xx is an
   * answer like any other); the whole attempt, answer included, has
   * timeoutMs. Never throws.
   */
  async send (target: string, headers: Record<string, string>, body: string): Promise<SendResult> {
    const started = performance.now()
    const done = (result: Omit<SendResult, 'durationMs'>): SendResult => ({ ...result, durationMs: Math.round(performance.now() - started) })
    let url: URL
    try {
      url = new URL(target)
    } catch {
      return done({ status: null, body: null, retryAfter: undefined, error: 'invalid url' })
    }
    const host = hostOf(url)
    // A host given as an address never reaches the agent's lookup: judged here.
    if (!this.#options.allowPrivate && isIP(host) !== 0 && !isPublicAddress(host)) {
      return done({ status: null, body: null, retryAfter: undefined, error: `refused: ${host} is not a public address` })
    }
    if (url.protocol !== 'https:' && !(this.#options.allowPrivate && url.protocol === 'http:')) {
      return done({ status: null, body: null, retryAfter: undefined, error: 'refused: not https' })
    }
    const payload = Buffer.from(body)
    const signal = AbortSignal.timeout(this.#options.timeoutMs)
    return await new Promise(resolve => {
      const client = url.protocol === 'https:' ? https : http
      const request = client.request(url, {
        method: 'POST',
        agent: url.protocol === 'https:' ? this.#https : this.#http,
        headers: { ...headers, 'content-length': String(payload.length) },
        signal
      }, response => {
        const chunks: Buffer[] = []
        let kept = 0
        let seen = 0
        response.on('data', (chunk: Buffer) => {
          seen += chunk.length
          if (kept < responseExcerptBytes) {
            const part = chunk.subarray(0, responseExcerptBytes - kept)
            chunks.push(part)
            kept += part.length
          }
          if (seen > drainLimitBytes) response.destroy()
        })
        const finish = (): void => {
          const retryAfter = response.headers['retry-after']
          resolve(done({ status: response.statusCode ?? null, body: Buffer.concat(chunks).toString('utf8'), retryAfter, error: null }))
        }
        response.on('end', finish)
        // Cut after the status arrived (too long an answer, the deadline): the status still stands.
        response.on('close', () => { if (!response.complete) finish() })
        response.on('error', () => {})
      })
      request.on('error', error => {
        const code = (error as NodeJS.ErrnoException).code
        const reason = signal.aborted ? `timeout after ${this.#options.timeoutMs} ms` : `${code ?? 'error'}: ${error.message}`
        resolve(done({ status: null, body: null, retryAfter: undefined, error: reason.slice(0, 300) }))
      })
      request.end(payload)
    })
  }

  close (): void {
    this.#http.destroy()
    this.#https.destroy()
  }
}
