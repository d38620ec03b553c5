import { execFile } from 'node:child_process'
import { cpSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { tempDir } from './helpers.js'

// `npm start` (prestart) and `npm test` run scripts/build-if-stale.js, which runs `npm run build`
// (`tsc -b`) only when a source is newer than the last build: a start with no source changed goes
// straight to the service instead of spending a second or more loading the compiler. Its decision
// must be the one `tsc -b` itself makes.

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

/** What scripts/build-if-stale.js would do in `dir` (`--dry`). */
async function staleCheck (dir: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile(process.execPath, [join(dir, 'scripts', 'build-if-stale.js'), '--dry'], { cwd: dir }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`build-if-stale --dry failed: ${stdout}${stderr}`))
      else resolve(stdout.trim())
    })
  })
}

/** Copies `entries` of the checkout into `dir` with their times, folders' included (cpSync keeps files' only). */
function copyWithTimes (dir: string, entries: string[]): void {
  for (const entry of entries) cpSync(join(root, entry), join(dir, entry), { recursive: true, preserveTimestamps: true })
  const folders = entries.flatMap(entry => statSync(join(root, entry)).isDirectory()
    ? [entry, ...readdirSync(join(root, entry), { recursive: true, withFileTypes: true }).filter(e => e.isDirectory()).map(e => relative(root, join(e.parentPath, e.name)))]
    : [])
  for (const folder of folders) {
    const { atime, mtime } = statSync(join(root, folder))
    utimesSync(join(dir, folder), atime, mtime)
  }
}

t.test('the build is up to date after `npm run build`, and a changed source makes it build again', async t => {
  t.match(await dryBuild(root), /Project '[^']*tsconfig\.build\.json' is up to date/, 'npm test built dist/ just now: nothing left to compile')

  // A copy with the same times, so the real dist/ is never rebuilt under the tests that run it.
  const dir = tempDir(t)
  copyWithTimes(dir, ['src', 'dist', 'scripts', 'tsconfig.json', 'tsconfig.build.json', 'package.json'])
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'))
  t.match(await dryBuild(dir), /is up to date/, 'the copy is as fresh as the original')
  t.equal(await staleCheck(dir), 'up to date', 'npm start would not build either')

  // Later than anything the copy holds, whatever the file system's time resolution.
  const later = new Date(Date.now() + 60_000)
  utimesSync(join(dir, 'src', 'errors.ts'), later, later)
  const stale = await dryBuild(dir)
  t.match(stale, /is out of date because output '[^']*' is older than input 'src\/errors\.ts'/)
  t.match(stale, /A non-dry build would build project/)
  t.equal(await staleCheck(dir), 'stale: src/errors.ts', 'npm start builds too, naming the same source')
})

t.test('a new source file, a deleted one or a changed tsconfig makes npm start build', async t => {
  const dir = tempDir(t)
  copyWithTimes(dir, ['src', 'dist', 'scripts', 'tsconfig.json', 'tsconfig.build.json'])
  t.equal(await staleCheck(dir), 'up to date')
  const later = new Date(Date.now() + 60_000)
  utimesSync(join(dir, 'tsconfig.json'), later, later)
  t.equal(await staleCheck(dir), 'stale: tsconfig.json')

  const built = statSync(join(dir, 'dist', '.tsbuildinfo')).mtime
  utimesSync(join(dir, 'tsconfig.json'), built, built)
  rmSync(join(dir, 'src', 'errors.ts'))
  // The folder's time is the deletion's: set it past the build, whatever the clock's resolution.
  utimesSync(join(dir, 'src'), later, later)
  t.equal(await staleCheck(dir), 'stale: src', 'a deleted source changes its folder')

  rmSync(join(dir, 'dist', '.tsbuildinfo'))
  t.equal(await staleCheck(dir), 'stale: dist/.tsbuildinfo', 'never built: build')
})
