// `npm run bench`: every benchmark of issue 4 in turn, each in a process of
// its own, then bench/RESULTS.md from all their results. Builds first and
// installs bench/peers when it is missing, so it runs from a clean clone
// after `npm install`.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { root } from './lib/machine.js'
import { writeReport } from './lib/report.js'

const run = (command, args, cwd = root) => execFileSync(command, args, { cwd, stdio: 'inherit' })

run('npm', ['run', 'build'])
if (!existsSync(join(root, 'bench', 'peers', 'node_modules', '@event-driven-io', 'emmett-sqlite'))) {
  run('npm', ['install', '--no-audit', '--no-fund'], join(root, 'bench', 'peers'))
}
let failed = false
for (const script of ['ingest.js', 'peer-append.js', 'rebuild.js', 'profile.js', 'alipay-flood.js', 'stream-backpressure.js', 'outbound.js', 'metrics.js', 'refusals.js', 'startup.js']) {
  try {
    run(process.execPath, [join(root, 'bench', script)])
  } catch (error) {
    failed = true
    process.stderr.write(`[bench] ${script} failed: ${error.message}\n`)
  }
}
writeReport()
process.stderr.write(`[bench] wrote ${join(root, 'bench', 'RESULTS.md')}\n`)
if (failed) process.exitCode = 1
