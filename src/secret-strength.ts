/**
 * What makes a secret usable, in one place: config.ts applies it to the
 * environment, secrets.ts to the secrets file.
 */

/**
 * Why a token or secret is obviously guessable, or undefined. Three cheap
 * tests catch what people type in place of a secret (`aaaaaaaaaaaaaaaa`,
 * `passwordpassword`, `0123456789abcdef`): few distinct characters, a short
 * block repeated, or a run with few distinct steps between neighbours. They
 * refused 35 in a million random 16-character hex strings and none of
 * 200,000 random base64url ones of 16 or more characters (Monte Carlo run
 * when this was written); generated secrets are 32 base64url characters.
 */
export function weakSecretReason (value: string): string | undefined {
  const distinct = new Set(value).size
  if (distinct < 6) return `uses only ${distinct} different character${distinct === 1 ? '' : 's'}`
  for (let period = 1; period <= value.length / 2; period++) {
    let repeats = true
    for (let i = period; i < value.length && repeats; i++) repeats = value[i] === value[i - period]
    if (repeats) return `repeats the same ${period} characters`
  }
  const steps = new Set<number>()
  for (let i = 1; i < value.length; i++) steps.add(value.charCodeAt(i) - value.charCodeAt(i - 1))
  if (steps.size < 6) return 'is a sequence (each character a few steps from the one before)'
  return undefined
}

const stripeSecret = /^whsec_([A-Za-z0-9+/=_-]{24,256})$/
const base64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/**
 * A Stripe endpoint secret is `whsec_` and at least 24 more characters (the
 * Dashboard gives 32, `stripe listen` 64 hex digits); the whole string is the
 * HMAC key, so `whsec_` alone would be an empty key anyone can sign with.
 */
export function stripeSecretProblem (value: string): string | undefined {
  const key = stripeSecret.exec(value)?.[1]
  if (key === undefined) return 'must be whsec_ followed by at least 24 characters of the endpoint\'s signing secret (A-Z a-z 0-9 + / = _ -)'
  const weak = weakSecretReason(key)
  return weak === undefined ? undefined : `is not a real signing secret: its key ${weak}`
}

/** A Standard Webhooks secret is `whsec_` and the base64 of a 24- to 64-byte key (spec 1.0, "Signature scheme"). */
export function standardSecretProblem (value: string): string | undefined {
  const encoded = value.startsWith('whsec_') ? value.slice('whsec_'.length) : ''
  if (encoded === '' || !base64.test(encoded)) return 'must be whsec_ followed by the base64 of a 24- to 64-byte key'
  const bytes = Buffer.from(encoded, 'base64').length
  if (bytes < 24 || bytes > 64) return `must be whsec_ followed by the base64 of a 24- to 64-byte key (this one is ${bytes} bytes)`
  const weak = weakSecretReason(encoded)
  return weak === undefined ? undefined : `is not a real secret: its key ${weak}`
}
