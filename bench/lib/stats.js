/** Min, median and max of a list of numbers (the shape every figure in RESULTS.md takes). */
export function summarize (values) {
  const sorted = [...values].sort((a, b) => a - b)
  const n = sorted.length
  if (n === 0) return { min: NaN, median: NaN, max: NaN, runs: 0 }
  const median = n % 2 === 1 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
  return { min: sorted[0], median, max: sorted[n - 1], runs: n }
}

/** Ratio of two summaries: median over median, plus the worst and best pairing of runs. */
export function ratio (a, b) {
  return { min: a.min / b.max, median: a.median / b.median, max: a.max / b.min }
}

export function formatNumber (value, digits = 0) {
  if (!Number.isFinite(value)) return 'n/a'
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

/** "min / median / max" with one format for all three. */
export function formatSummary (summary, digits = 0, unit = '') {
  if (summary === undefined) return 'n/a'
  const f = v => formatNumber(v, digits) + unit
  return `${f(summary.min)} / **${f(summary.median)}** / ${f(summary.max)}`
}
