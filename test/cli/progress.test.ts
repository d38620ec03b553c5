import { PassThrough } from 'node:stream'
import t from 'tap'
import { formatSummary, startProgress } from '../../src/cli/progress.js'

/** A stream that records what is written, posing as a terminal or not. */
function capture (isTTY: boolean): { stream: NodeJS.WriteStream, text: () => string } {
  const stream = new PassThrough() as unknown as NodeJS.WriteStream
  let written = ''
  stream.on('data', (chunk: Buffer) => { written += chunk.toString('utf8') })
  Object.assign(stream, { isTTY, columns: 120 })
  return { stream, text: () => written }
}

t.test('the summary line: counts, seconds and units per second', async t => {
  t.equal(formatSummary('rebuild', 100000, 'events', 2000, '25000 orders'), 'rebuild: 100000 events, 25000 orders in 2.00 s (50000 events/s)')
  t.equal(formatSummary('replay', 3, 'requests', 0), 'replay: 3 requests in 0.00 s (0 requests/s)')
})

t.test('without a TTY: plain periodic lines, then the summary', async t => {
  const out = capture(false)
  const summary = capture(false)
  const progress = startProgress({ label: 'export', total: 2048, stream: out.stream, summaryStream: summary.stream, intervalMs: 0 })
  for (let i = 0; i < 2048; i++) progress.increment()
  t.equal(progress.done, 2048)
  const line = progress.finish('positions 1-2048')
  await new Promise(resolve => setImmediate(resolve))
  const lines = out.text().trimEnd().split('\n')
  t.equal(lines.length, 4, 'one line per 512 events with a zero interval')
  t.match(lines[0], /^export: 512\/2048 \(25%\) events, \d+ events\/s$/)
  t.match(lines[3], /^export: 2048\/2048 \(100%\) events/)
  t.match(line, /^export: 2048 events, positions 1-2048 in [\d.]+ s \(\d+ events\/s\)$/)
  t.equal(summary.text(), `${line}\n`)
  t.notOk(out.text().includes('\u001b'), 'no terminal escapes in a log')
})

t.test('the default interval keeps a short run quiet', async t => {
  const out = capture(false)
  const progress = startProgress({ label: 'verify', stream: out.stream, summaryStream: capture(false).stream })
  progress.update(5000)
  progress.stop()
  progress.stop()
  await new Promise(resolve => setImmediate(resolve))
  t.equal(out.text(), '')
})

t.test('on a TTY: a bar that redraws during synchronous work and is cleared at the end', async t => {
  const out = capture(true)
  const summary = capture(false)
  const progress = startProgress({ label: 'rebuild', unit: 'events', total: 10_000, stream: out.stream, summaryStream: summary.stream })
  const started = Date.now()
  // A synchronous loop (as rebuild's is) never lets timers run: the bar must draw from increment().
  for (let i = 0; i < 10_000; i++) {
    progress.increment()
    if (i % 2000 === 0) while (Date.now() - started < (i / 2000 + 1) * 250);
  }
  progress.finish()
  await new Promise(resolve => setImmediate(resolve))
  t.match(out.text(), /rebuild \[[█░]+\] \d+% \| \d+\/10000 events \| \d+ events\/s/)
  t.ok((out.text().match(/\/10000 events/g) ?? []).length >= 3, 'redrawn while busy')
  t.match(summary.text(), /^rebuild: 10000 events in [\d.]+ s/)
})
