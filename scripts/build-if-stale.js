// `npm start` and `npm test` run this first: it builds dist/ (`npm run build`) only when a
// source changed since the last build, which it tells from the times alone. `tsc -b` makes
// the same decision, but loading the compiler to make it costs a second or more per start.
// Stale: any file or folder under src/, or a tsconfig, newer than dist/.tsbuildinfo (which
// every `tsc -b` rewrites); a folder's time changes when a file is added or deleted.
// Without src/ (an installed package) there is nothing to build.
// Usage: node scripts/build-if-stale.js [--dry]   (--dry prints the decision, builds nothing)
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const dry = process.argv.includes('--dry')
const buildInfo = join(root, 'dist', '.tsbuildinfo')

/** The first input newer than `since`, or undefined. */
function newerInput (since) {
  const pending = [join(root, 'src')]
  for (const file of ['tsconfig.json', 'tsconfig.build.json']) {
    if (statSync(join(root, file)).mtimeMs > since) return join(root, file)
  }
  while (pending.length > 0) {
    const dir = pending.pop()
    if (statSync(dir).mtimeMs > since) return dir
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) pending.push(path)
      else if (statSync(path).mtimeMs > since) return path
    }
  }
  return undefined
}

if (existsSync(join(root, 'src'))) {
  const reason = existsSync(buildInfo) ? newerInput(statSync(buildInfo).mtimeMs) : buildInfo
  if (dry) {
    process.stdout.write(reason === undefined ? 'up to date\n' : `stale: ${relative(root, reason)}\n`)
  } else if (reason !== undefined) {
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' })
  }
} else if (dry) {
  process.stdout.write('no sources\n')
}
