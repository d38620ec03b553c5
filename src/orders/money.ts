import { MalformedError } from '../errors.js'

const currencyPattern = /^[A-Z]{3}$/
// Digits before the point are capped so every amount stays a safe integer in minor units.
const decimalPattern = /^(0|[1-9]\d{0,14})(?:\.(\d{1,4}))?$/
const knownCurrencies = new Set(Intl.supportedValuesOf('currency'))
const exponents = new Map<string, number>()

/** ISO 4217 exponent (CNY 2, JPY 0, KWD 3) as Node's ICU knows it. */
export function currencyExponent (currency: string): number {
  let exponent = exponents.get(currency)
  if (exponent === undefined) {
    exponent = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2
    exponents.set(currency, exponent)
  }
  return exponent
}

/** Validates an ISO 4217 code (upper case, known to ICU). */
export function parseCurrency (value: unknown, field = 'currency'): string {
  if (typeof value !== 'string' || !currencyPattern.test(value) || !knownCurrencies.has(value)) {
    throw new MalformedError('must be an ISO 4217 currency code such as CNY', field)
  }
  return value
}

/**
 * Parses a decimal amount in major units ("100", "88.88") into integer minor
 * units, exactly: string arithmetic only, never floating point.
 */
export function parseDecimalAmount (value: unknown, currency: string, field = 'amount'): number {
  if (typeof value !== 'string') throw new MalformedError('must be a decimal string', field)
  const match = decimalPattern.exec(value)
  if (match === null) {
    throw new MalformedError('must be a non-negative decimal number such as 88.88 (no sign, exponent or leading zeros)', field)
  }
  const exponent = currencyExponent(currency)
  const fraction = match[2] ?? ''
  if (fraction.length > exponent) {
    throw new MalformedError(`${currency} allows at most ${exponent} decimal places`, field)
  }
  const minor = Number((match[1] ?? '0') + fraction.padEnd(exponent, '0'))
  if (!Number.isSafeInteger(minor)) throw new MalformedError('is too large', field)
  return minor
}

/** Validates an amount that is already in integer minor units (Stripe, WeChat Pay). */
export function parseMinorUnits (value: unknown, field = 'amount'): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new MalformedError('must be a non-negative integer in minor units', field)
  }
  return value
}

/** Formats minor units back as a decimal string in major units (for display only). */
export function formatMinorUnits (minor: number, currency: string): string {
  const exponent = currencyExponent(currency)
  if (exponent === 0) return String(minor)
  const digits = String(minor).padStart(exponent + 1, '0')
  return `${digits.slice(0, -exponent)}.${digits.slice(-exponent)}`
}
