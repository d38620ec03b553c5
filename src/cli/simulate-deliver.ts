/**
 * The I/O half of `paynotify simulate`: POSTs callbacks with bounded
 * concurrency and retries every one that was not acked, on a compressed
 * version of the gateway's retry schedule, until acked or out of attempts.
 */

/** The schedule's gap before `retry` (1 for the first retry) with each gateway minute lasting `minuteMs`; past its end the last gap repeats. */
export function retryDelayMs (retry: number, minuteMs: number, schedule: readonly number[]): number {
  const minutes = schedule[Math.min(retry, schedule.length) - 1] ?? schedule[0] ?? 0
  return minutes * minuteMs
}

export interface Outgoing {
  /** Built at each attempt, with that attempt's time: a signature carrying a time is fresh on every retry. */
  request: (now: Date) => { body: string, headers: Record<string, string> }
}

export interface DeliverOptions {
  url: string
  concurrency: number
  /** Attempts per delivery, the first included (Alipay makes 8). */
  maxAttempts: number
  /** Gaps between attempts, in the gateway's minutes. */
  retryMinutes: readonly number[]
  /** Milliseconds one minute of the retry schedule lasts. */
  minuteMs: number
  timeoutMs: number
  /** Whether an answer is the ack the gateway waits for. */
  isAck: (statusCode: number, body: string) => boolean
  /** Called after every attempt, for progress. */
  onAttempt?: (result: AttemptResult) => void
}

export interface AttemptResult {
  acked: boolean
  /** `200 success`, `503`, or the network error code. */
  answer: string
  /** True when this delivery is now done (acked or out of attempts). */
  settled: boolean
}

export interface DeliveryOutcome<T> {
  item: T
  attempts: number
  acked: boolean
  /** The last answer seen. */
  answer: string
}

async function attempt (item: Outgoing, options: DeliverOptions): Promise<{ acked: boolean, answer: string }> {
  try {
    const { body, headers } = item.request(new Date())
    const response = await fetch(options.url, {
      method: 'POST',
      headers,
      body,
      signal: AbortSignal.timeout(options.timeoutMs)
    })
    const text = await response.text()
    const acked = options.isAck(response.status, text)
    // Only the status and a short ack-sized body: error bodies are not echoed at length.
    return { acked, answer: text.length <= 16 && /^[\x20-\x7e]*$/.test(text) ? `${response.status} ${text}`.trim() : String(response.status) }
  } catch (error) {
    // fetch wraps network failures: the cause names them (ECONNREFUSED, bad port …); a timeout is its own error.
    const cause = (error as { cause?: { code?: unknown, message?: unknown } }).cause
    const reason = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : (error as Error).name
    return { acked: false, answer: reason }
  }
}

/**
 * Delivers every item, at most `concurrency` requests in flight. A delivery
 * waiting for its retry does not hold a slot, as a real gateway's retry queue
 * does not block its other notifications. Resolves when every item is acked
 * or has used `maxAttempts`; outcomes are in the input order.
 */
export async function deliverAll<T extends Outgoing> (items: readonly T[], options: DeliverOptions): Promise<Array<DeliveryOutcome<T>>> {
  const outcomes: Array<DeliveryOutcome<T>> = items.map(item => ({ item, attempts: 0, acked: false, answer: '' }))
  const ready: number[] = items.map((_, i) => i)
  let active = 0
  let sleeping = 0
  return await new Promise(resolve => {
    const pump = (): void => {
      while (active < options.concurrency && ready.length > 0) {
        const index = ready.shift()!
        const outcome = outcomes[index]!
        active++
        outcome.attempts++
        // attempt() never rejects: every failure is an answer to retry on.
        attempt(outcome.item, options).then(({ acked, answer }) => {
          active--
          outcome.acked = acked
          outcome.answer = answer
          const settled = acked || outcome.attempts >= options.maxAttempts
          options.onAttempt?.({ acked, answer, settled })
          if (!settled) {
            sleeping++
            setTimeout(() => {
              sleeping--
              ready.push(index)
              pump()
            }, retryDelayMs(outcome.attempts, options.minuteMs, options.retryMinutes))
          }
          pump()
        })
      }
      if (active === 0 && sleeping === 0 && ready.length === 0) resolve(outcomes)
    }
    pump()
  })
}
