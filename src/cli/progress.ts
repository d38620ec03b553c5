import { createRequire } from 'node:module'
import type CliProgress from 'cli-progress'

// The bar is drawn only on a TTY: cli-progress (CommonJS, required synchronously so
// startProgress stays synchronous) is loaded then, not at every command's start.
const require = createRequire(import.meta.url)

export interface ProgressOptions {
  /** Command name, first word of every line: `rebuild: …`. */
  label: string
  /** What is counted, plural: `events`, `deliveries`. */
  unit?: string
  /** Expected count, when known (shows a percentage). */
  total?: number
  /** Where the bar and the periodic lines go; stderr keeps stdout for data (export, --json). */
  stream?: NodeJS.WriteStream
  /** Where finish() writes the summary line. */
  summaryStream?: NodeJS.WritableStream
  /** Plain-line period when the stream is not a TTY. */
  intervalMs?: number
  /** Overrides the TTY detection (tests, --no-progress). */
  tty?: boolean
}

export interface Progress {
  /** Adds `n` completed units (cheap: call it per event). */
  increment: (n?: number) => void
  /** Sets the completed count. */
  update: (done: number) => void
  setTotal: (total: number) => void
  readonly done: number
  readonly elapsedMs: number
  /**
   * Stops the bar and writes (and returns) the summary line:
   * `<label>: <done> <unit>[, <details>] in 1.23 s (45678 <unit>/s)`.
   */
  finish: (details?: string) => string
  /** Stops the bar without a summary (on error). */
  stop: () => void
}

/** Units per second, rounded; 0 when no time has passed. */
export function ratePerSecond (count: number, elapsedMs: number): number {
  return elapsedMs > 0 ? Math.round(count / (elapsedMs / 1000)) : 0
}

export function formatSummary (label: string, done: number, unit: string, elapsedMs: number, details?: string): string {
  const extra = details === undefined || details === '' ? '' : `, ${details}`
  return `${label}: ${done} ${unit}${extra} in ${(elapsedMs / 1000).toFixed(2)} s (${ratePerSecond(done, elapsedMs)} ${unit}/s)`
}

// Redraw or time checks at most once per this many units: a per-event call must stay nearly free.
const checkEvery = 512

/**
 * Progress for long commands: a cli-progress bar on a TTY, a plain line every
 * few seconds otherwise (CI logs, pipes), and one summary line at the end
 * with counts and units per second. Draws synchronously, so it also moves
 * during synchronous SQLite loops that never yield to timers.
 */
export function startProgress (options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr
  const unit = options.unit ?? 'events'
  const intervalMs = options.intervalMs ?? 2000
  const tty = options.tty ?? stream.isTTY === true
  let total = options.total
  let done = 0
  let sinceCheck = 0
  let stopped = false
  const started = performance.now()
  let lastLine = started

  const cliProgress = tty ? require('cli-progress') as typeof CliProgress : undefined
  const bar = cliProgress !== undefined
    ? new cliProgress.SingleBar({
      stream,
      format: total === undefined
        ? `${options.label} {value} ${unit} | {rate} ${unit}/s`
        : `${options.label} [{bar}] {percentage}% | {value}/{total} ${unit} | {rate} ${unit}/s | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      fps: 10
    }, cliProgress.Presets.shades_classic)
    : undefined
  bar?.start(total ?? 0, 0, { rate: 0 })

  const check = (): void => {
    sinceCheck = 0
    const now = performance.now()
    if (bar !== undefined) {
      bar.update(done, { rate: ratePerSecond(done, now - started) })
      return
    }
    if (now - lastLine < intervalMs) return
    lastLine = now
    const of = total === undefined || total === 0 ? '' : `/${total} (${Math.floor((done / total) * 100)}%)`
    stream.write(`${options.label}: ${done}${of} ${unit}, ${ratePerSecond(done, now - started)} ${unit}/s\n`)
  }

  const stop = (): void => {
    if (stopped) return
    stopped = true
    bar?.stop()
  }

  return {
    increment (n = 1) {
      done += n
      sinceCheck += n
      if (sinceCheck >= checkEvery) check()
    },
    update (value) {
      sinceCheck += Math.abs(value - done)
      done = value
      if (sinceCheck >= checkEvery) check()
    },
    setTotal (value) {
      total = value
      bar?.setTotal(value)
    },
    get done () { return done },
    get elapsedMs () { return performance.now() - started },
    finish (details) {
      const elapsed = performance.now() - started
      stop()
      const line = formatSummary(options.label, done, unit, elapsed, details)
      ;(options.summaryStream ?? process.stdout).write(line + '\n')
      return line
    },
    stop
  }
}
