/** Svix's schedule: the first attempt at once, then retries after 5 s, 5 m, 30 m, 2 h, 5 h, 10 h and 10 h. */
export const defaultRetrySchedule = '0,5s,5m,30m,2h,5h,10h,10h'

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/**
 * Parses PAYNOTIFY_OUTBOUND_RETRY_SCHEDULE: comma-separated delays, each a
 * whole number with ms, s, m, h or d (0 needs none). The first is the
 * first attempt's delay, each later one the wait after a failed attempt;
 * so its length is the number of attempts. Returns milliseconds, or throws
 * naming the bad entry.
 */
export function parseRetrySchedule (text: string): number[] {
  const entries = text.split(',').map(entry => entry.trim())
  if (entries.length > 50) throw new Error('has more than 50 entries')
  return entries.map(entry => {
    if (entry === '0') return 0
    const match = /^(\d{1,9})(ms|s|m|h|d)$/.exec(entry)
    if (match === null) throw new Error(`entry ${JSON.stringify(entry.slice(0, 20))} is not a delay such as 0, 500ms, 5s, 5m, 2h or 1d`)
    const ms = Number(match[1]) * units[match[2]!]!
    if (ms > 7 * units.d!) throw new Error(`entry ${entry} is longer than 7 days`)
    return ms
  })
}

/** Longest wait a Retry-After answer may impose (a day): longer would hold the order's later messages with it. */
export const maxRetryAfterMs = 86_400_000

/**
 * Milliseconds until the next attempt after `attemptsMade` failed attempts,
 * or null when that was the last (dead-letter). Jitter spreads retries of
 * many messages over ±10 % of the delay (`random` in [0, 1)); a Retry-After
 * answer sets the minimum.
 */
export function nextRetryDelay (schedule: readonly number[], attemptsMade: number, retryAfterMs: number | null, random: number): number | null {
  if (attemptsMade >= schedule.length) return null
  const base = schedule[attemptsMade]!
  const jittered = Math.round(base * (0.9 + 0.2 * random))
  return Math.max(jittered, Math.min(retryAfterMs ?? 0, maxRetryAfterMs))
}

/** A Retry-After header as milliseconds from `now`: delay-seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter (header: string | undefined, now: number): number | null {
  if (header === undefined) return null
  const trimmed = header.trim()
  if (/^\d{1,10}$/.test(trimmed)) return Number(trimmed) * 1000
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? null : Math.max(0, date - now)
}
