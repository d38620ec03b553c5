import t from 'tap'
import { defaultRetrySchedule, maxRetryAfterMs, nextRetryDelay, parseRetryAfter, parseRetrySchedule } from '../../src/outbound/schedule.js'

t.test('the default schedule is Svix\'s: at once, then 5 s, 5 m, 30 m, 2 h, 5 h, 10 h, 10 h', async t => {
  t.same(parseRetrySchedule(defaultRetrySchedule), [0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000])
})

t.test('a schedule names each delay with its unit; anything else is refused, naming the entry', async t => {
  t.same(parseRetrySchedule('0, 250ms,2s,1m,1h,1d'), [0, 250, 2000, 60_000, 3_600_000, 86_400_000])
  for (const [text, entry] of [['0,5', '"5"'], ['0,5x', '"5x"'], ['0,-5s', '"-5s"'], ['0,,5s', '""'], ['0,1.5s', '"1.5s"']] as const) {
    t.throws(() => parseRetrySchedule(text), { message: new RegExp(`entry ${entry.replace(/[.]/g, '\\.')} is not a delay`) }, text)
  }
  t.throws(() => parseRetrySchedule('0,8d'), /longer than 7 days/)
  t.throws(() => parseRetrySchedule(Array(51).fill('1s').join(',')), /more than 50 entries/)
})

t.test('the next delay follows the schedule with ±10 % jitter, Retry-After as a minimum, null after the last attempt', async t => {
  const schedule = [0, 1000, 60_000]
  t.equal(nextRetryDelay(schedule, 1, null, 0), 900, 'lowest jitter')
  t.equal(nextRetryDelay(schedule, 1, null, 0.5), 1000, 'middle')
  t.equal(nextRetryDelay(schedule, 2, null, 0.999999), 66_000, 'highest jitter')
  t.equal(nextRetryDelay(schedule, 1, 30_000, 0.5), 30_000, 'Retry-After longer than the schedule wins')
  t.equal(nextRetryDelay(schedule, 2, 1000, 0.5), 60_000, 'a shorter Retry-After does not hasten it')
  t.equal(nextRetryDelay(schedule, 1, 10 * maxRetryAfterMs, 0.5), maxRetryAfterMs, 'Retry-After is capped at a day')
  t.equal(nextRetryDelay(schedule, 3, null, 0.5), null, 'three attempts made of three: dead-letter')
})

t.test('Retry-After is read as seconds or as an HTTP date', async t => {
  const now = Date.parse('2026-12-07T12:00:00Z')
  t.equal(parseRetryAfter('120', now), 120_000)
  t.equal(parseRetryAfter(' 0 ', now), 0)
  t.equal(parseRetryAfter('Mon, 07 Dec 2026 12:01:00 GMT', now), 60_000)
  t.equal(parseRetryAfter('Mon, 07 Dec 2026 11:00:00 GMT', now), 0, 'a date in the past: no wait')
  t.equal(parseRetryAfter('soon', now), null)
  t.equal(parseRetryAfter(undefined, now), null)
})
