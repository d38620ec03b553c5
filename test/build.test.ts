import { execFile } from 'node:child_process'
import { cpSync, symlinkSync, utimesSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { tempDir } from './helpers.js'

// `npm start` (prestart) and `npm test` run `npm run build`, which is `tsc -b`: a build that finds
// every output newer than its inputs compiles nothing, so a start with no source changed goes
// straight to the service instead of spending seconds in the compiler.

const root = fileURLToPath(new URL('..', import.meta.url))
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')

/** What `npm run build` would do in `dir`, without writing anything (`tsc -b --dry`). */
async function dryBuild (dir: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile(process.execPath, [tsc, '-b', 'tsconfig.build.json', '--dry', '--verbose'], { cwd: dir }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`tsc -b --dry failed: ${stdout}${stderr}`))
      else resolve(stdout)
    })
  })
}

t.test('the build is up to date after `npm run build`, and a changed source makes it build again', async t => {
  t.match(await dryBuild(root), /Project '[^']*tsconfig\.build\.json' is up to date/, 'npm test built dist/ just now: nothing left to compile')

  // A copy with the same times, so the real dist/ is never rebuilt under the tests that run it.
  const dir = tempDir(t)
  for (const entry of ['src', 'dist', 'tsconfig.json', 'tsconfig.build.json', 'package.json']) {
    cpSync(join(root, entry), join(dir, entry), { recursive: true, preserveTimestamps: true })
  }
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'))
  t.match(await dryBuild(dir), /is up to date/, 'the copy is as fresh as the original')

  const now = new Date()
  utimesSync(join(dir, 'src', 'errors.ts'), now, now)
  const stale = await dryBuild(dir)
  t.match(stale, /is out of date because output '[^']*' is older than input 'src\/errors\.ts'/)
  t.match(stale, /A non-dry build would build project/)
})
