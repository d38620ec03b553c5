import { createHash, createHmac, timingSafeEqual } from 'node:crypto'

/** Constant-time string equality (hashing first makes lengths equal, so length leaks nothing). */
export function safeEqual (a: string | Buffer, b: string | Buffer): boolean {
  const da = createHash('sha256').update(a).digest()
  const db = createHash('sha256').update(b).digest()
  return timingSafeEqual(da, db)
}

export function hmacSha256 (key: string | Buffer, message: string | Buffer): Buffer {
  return createHmac('sha256', key).update(message).digest()
}

export function sha256Hex (value: string | Buffer): string {
  return createHash('sha256').update(value).digest('hex')
}

/** True when `timestampSeconds` is within `toleranceSeconds` of `now`, either way. */
export function withinTolerance (timestampSeconds: number, now: Date, toleranceSeconds = 300): boolean {
  return Number.isFinite(timestampSeconds) && Math.abs(now.getTime() / 1000 - timestampSeconds) <= toleranceSeconds
}
