import { execFile } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tap from 'tap'

/** A program outside npm that a test runs (PHP, a browser, a database server). */
export interface SystemProgram {
  /** What it is, for messages: `php with the curl extension`. */
  name: string
  /** A shell command that exits 0 when the program is there and usable. */
  check: string
  /** The Debian/Ubuntu packages that provide it. */
  packages: string[]
}

/** PHP's command-line interpreter with curl, as the seed's sender needs it. */
export const phpWithCurl: SystemProgram = {
  name: 'php with the curl extension',
  check: 'php -m 2>/dev/null | grep -qx curl',
  packages: ['php-cli', 'php-curl']
}

/** Debian's Chromium, the browser the console's tests drive through playwright-core (never a downloaded one). */
export const chromium: SystemProgram = {
  name: 'chromium',
  // Runs it, not just finds it: a binary with a missing shared library fails here, not mid-test.
  check: 'chromium --version >/dev/null 2>&1',
  packages: ['chromium']
}

export interface ProvideOptions {
  /** Whether installing is allowed here (default: running as root with apt-get on PATH). */
  canInstall?: boolean
  /** The shell command that installs the packages (default: apt-get update, then apt-get install -y, as .ci/run does). */
  installCommand?: string
}

interface ShellRun { code: number, stderr: string }

async function shell (script: string): Promise<ShellRun> {
  return await new Promise(resolve => {
    execFile('sh', ['-c', script], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, maxBuffer: 64 << 20 }, (error, _stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stderr })
    })
  })
}

const quote = (word: string): string => `'${word.replaceAll("'", "'\\''")}'`

function aptInstall (packages: string[]): string {
  const names = packages.map(quote).join(' ')
  // Wait for a dpkg lock held by anyone else rather than fail on it.
  return `apt-get update -qq && apt-get install -y -qq -o DPkg::Lock::Timeout=600 ${names} >/dev/null`
}

async function canInstallHere (): Promise<boolean> {
  return process.getuid?.() === 0 && (await shell('command -v apt-get >/dev/null')).code === 0
}

/**
 * Makes a system program a test needs available, as CI does: when it is
 * missing and this process may install it (root, with apt-get), it installs
 * the packages (`apt-get update`, then `apt-get install -y`); test files
 * that run at once take turns (flock), and each checks again once it holds
 * the lock. Returns undefined when the program is usable, otherwise one line
 * naming what to install. The test file's timeout is extended while apt-get
 * runs: a download's time is not the test's.
 */
export async function provideSystemProgram (program: SystemProgram, options: ProvideOptions = {}): Promise<string | undefined> {
  if ((await shell(program.check)).code === 0) return undefined
  const packages = program.packages.join(' ')
  if (!(options.canInstall ?? await canInstallHere())) {
    return `${program.name} is missing: install ${packages} (as root: apt-get install -y ${packages}), or run the tests as root on Debian/Ubuntu to have them installed`
  }
  const install = options.installCommand ?? aptInstall(program.packages)
  const lock = quote(join(tmpdir(), 'paynotify-system-programs.lock'))
  const script = `{ ${program.check}; } || { ${install}; }`
  const hasFlock = (await shell('command -v flock >/dev/null')).code === 0
  tap.setTimeout(30 * 60_000)
  let run: ShellRun
  try {
    run = await shell(hasFlock ? `flock ${lock} sh -c ${quote(script)}` : script)
  } finally {
    tap.setTimeout(Number(process.env.TAP_TIMEOUT ?? 30) * 1000)
  }
  if (run.code === 0 && (await shell(program.check)).code === 0) return undefined
  const why = run.stderr.trim().split('\n').pop()?.trim() ?? ''
  return `${program.name} is missing and installing ${packages} failed${why === '' ? '' : ` (${why})`}: install ${packages} by hand`
}

/** For a test that needs a system program: true when it is ready; otherwise the test fails at once with one line saying what to install. */
export async function requireSystemProgram (t: { fail: (message: string) => unknown }, program: SystemProgram, options?: ProvideOptions): Promise<boolean> {
  const missing = await provideSystemProgram(program, options)
  if (missing === undefined) return true
  t.fail(missing)
  return false
}
