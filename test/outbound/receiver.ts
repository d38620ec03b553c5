import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { Webhook } from 'standardwebhooks'

interface Teardown { teardown: (fn: () => unknown) => void }

/** The body of an order.* message, as issue 11 specifies it. */
export interface OrderMessage {
  type: string
  timestamp: string
  data: {
    order_id: string
    status: string
    previous_status: string | null
    paid_amount: number
    refunded_amount: number
    currency: string | null
    anomalies: string[]
    needs_review: boolean
    position: number
    version: number
  }
}

/** One request the receiver got. */
export interface ReceivedRequest {
  /** Arrival order over every request, from 0. */
  index: number
  /** Date.now() when its whole body had arrived: a measured time, compared with others, never waited for. */
  at: number
  path: string
  headers: IncomingHttpHeaders
  /** webhook-id, webhook-timestamp, and the entries of webhook-signature. */
  id: string
  timestamp: string
  signatures: string[]
  body: string
  /** The trusted secrets whose `standardwebhooks` Webhook.verify accepts the request; empty: refused with 401. */
  verifiedBy: string[]
  /** The body, as Webhook.verify parsed it (verified requests only). */
  message: OrderMessage | undefined
  /** What it was answered: a status, 'pending' while held, 'cut' when the client went away before an answer. */
  answer: number | 'pending' | 'cut'
}

/** How to answer one request. */
export interface Reply {
  status?: number
  headers?: Record<string, string>
  body?: string
  /** Answer only once this settles; `true`: never (the request ends when the client gives up, or at down()). */
  hold?: true | Promise<unknown>
}

/** Chooses each verified request's answer; the default answers 200. */
export type Script = (request: ReceivedRequest, receiver: Receiver) => Reply

/**
 * A merchant's endpoint on 127.0.0.1:<port from listen(0)> that checks every
 * request with the `standardwebhooks` library (the receiving side's own
 * code, not ours), records it, and answers as `script` says. Tests wait on
 * `until(predicate)`, which re-checks after every arrival and answer.
 */
export class Receiver {
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  readonly #waiters: Array<() => void> = []
  readonly requests: ReceivedRequest[] = []
  /** Secrets to verify with: every request is checked against each. */
  readonly secrets: string[] = []
  script: Script = () => ({ status: 200 })
  /** TCP connections accepted (a refused delivery makes none). */
  connections = 0
  port = 0

  constructor () {
    this.#server = createServer((request, response) => { this.#handle(request, response) })
    this.#server.on('connection', socket => {
      this.connections++
      this.#sockets.add(socket)
      socket.on('close', () => { this.#sockets.delete(socket) })
    })
  }

  get url (): string {
    return `http://127.0.0.1:${this.port}`
  }

  /** Verify with this secret too (an endpoint's, as its creation or rotation answered it). */
  trust (secret: string): void {
    this.secrets.push(secret)
  }

  /** Requests no trusted secret verifies: a test expects none. */
  get refused (): ReceivedRequest[] {
    return this.requests.filter(request => request.verifiedBy.length === 0)
  }

  /** Verified requests answered 2xx, in arrival order. */
  get delivered (): ReceivedRequest[] {
    return this.requests.filter(request => typeof request.answer === 'number' && request.answer >= 200 && request.answer < 300)
  }

  /** Every request carrying this webhook-id, in arrival order. */
  attemptsOf (messageId: string): ReceivedRequest[] {
    return this.requests.filter(request => request.id === messageId)
  }

  /** Resolves once `predicate` holds: checked now, and again after every arrival and answer. No deadline of its own. */
  async until (predicate: (receiver: Receiver) => boolean): Promise<void> {
    while (!predicate(this)) await new Promise<void>(resolve => { this.#waiters.push(resolve) })
  }

  async listen (port = 0): Promise<void> {
    this.#server.listen(port, '127.0.0.1')
    await once(this.#server, 'listening')
    this.port = (this.#server.address() as AddressInfo).port
  }

  /**
   * Stops listening and cuts every connection (held requests too): the
   * endpoint is down, and connecting to it is refused.
   */
  async down (): Promise<void> {
    if (!this.#server.listening) return
    const closed = once(this.#server, 'close')
    this.#server.close()
    for (const socket of this.#sockets) socket.destroy()
    await closed
  }

  /**
   * Listens again on the same port, so the endpoint's URL stands. (The port
   * came from listen(0); another process taking it in the moment it was
   * free would fail this loudly with EADDRINUSE, never silently.)
   */
  async up (): Promise<void> {
    await this.listen(this.port)
  }

  #wake (): void {
    for (const resolve of this.#waiters.splice(0)) resolve()
  }

  #handle (request: IncomingMessage, response: ServerResponse): void {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      const header = (name: string): string => {
        const value = request.headers[name]
        return typeof value === 'string' ? value : ''
      }
      const verifiedBy: string[] = []
      let message: OrderMessage | undefined
      for (const secret of this.secrets) {
        try {
          message = new Webhook(secret).verify(body, {
            'webhook-id': header('webhook-id'),
            'webhook-timestamp': header('webhook-timestamp'),
            'webhook-signature': header('webhook-signature')
          }) as OrderMessage
          verifiedBy.push(secret)
        } catch {}
      }
      const received: ReceivedRequest = {
        index: this.requests.length,
        at: Date.now(),
        path: request.url ?? '',
        headers: request.headers,
        id: header('webhook-id'),
        timestamp: header('webhook-timestamp'),
        signatures: header('webhook-signature').split(' ').filter(entry => entry !== ''),
        body,
        verifiedBy,
        message,
        answer: 'pending'
      }
      this.requests.push(received)
      const reply: Reply = verifiedBy.length === 0 ? { status: 401, body: 'signature not verified' } : this.script(received, this)
      const answer = (): void => {
        if (response.destroyed || received.answer === 'cut') return
        const status = reply.status ?? 200
        received.answer = status
        response.writeHead(status, reply.headers).end(reply.body ?? '')
        this.#wake()
      }
      response.on('close', () => {
        if (received.answer === 'pending') {
          received.answer = 'cut'
          this.#wake()
        }
      })
      if (reply.hold === undefined) answer()
      else if (reply.hold !== true) reply.hold.then(answer, answer)
      this.#wake()
    })
  }

  async close (): Promise<void> {
    await this.down()
  }
}

/** A receiver listening on 127.0.0.1:0, closed when the test ends. */
export async function startReceiver (t: Teardown, script?: Script): Promise<Receiver> {
  const receiver = new Receiver()
  if (script !== undefined) receiver.script = script
  await receiver.listen()
  t.teardown(async () => { await receiver.close() })
  return receiver
}
