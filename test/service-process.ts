import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import type { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'

/** The built CLI (`npm run build` first, as `npm test` does). */
export const cliPath = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url))

export interface Exit { code: number | null, signal: NodeJS.Signals | null }

interface Teardown { teardown: (fn: () => unknown) => void }

export interface ServiceProcess {
  child: ChildProcess
  /** http://127.0.0.1:<port>, as the service said it listens. */
  url: string
  port: number
  stdout: () => string
  stderr: () => string
  /** Everything the process wrote so far, stdout and stderr interleaved as they arrived. */
  output: () => string
  /** Resolves once the process has exited. */
  exited: Promise<Exit>
  /** Sends `signal` (SIGTERM: a graceful stop) and resolves with the exit. */
  stop: (signal?: NodeJS.Signals) => Promise<Exit>
}

/**
 * The address a line of the service's output announces, if it is the
 * "listening" line: the plain `paynotify listening on http://…` or a JSON log
 * line whose `msg` says it listens, with the address in `msg` or in an
 * `address`/`url` field.
 */
export function listeningAddress (line: string): string | undefined {
  const trimmed = line.trim()
  if (trimmed.startsWith('{')) {
    let record: unknown
    try {
      record = JSON.parse(trimmed)
    } catch {
      return undefined
    }
    if (typeof record !== 'object' || record === null) return undefined
    const { msg, address, url } = record as Record<string, unknown>
    if (typeof msg !== 'string' || !/\blistening\b/.test(msg)) return undefined
    for (const field of [address, url]) if (typeof field === 'string' && /^https?:\/\/[^\s/]+$/.test(field)) return field
    return addressIn(msg)
  }
  return addressIn(trimmed)
}

function addressIn (text: string): string | undefined {
  return /\blistening (?:on|at) (https?:\/\/[^\s/,)"]+)/.exec(text)?.[1]
}

interface Launched {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  output: () => string
  exited: Promise<Exit>
  /** Resolves with the address once the service announces it; never settles otherwise. */
  listening: Promise<string>
}

/** Where and how the process runs, beyond its environment and arguments. */
export interface LaunchOptions {
  /** Its working directory (the default ./data is relative to it). */
  cwd?: string
  /** Another build's CLI (a test's deliberately broken copy of dist/); the built one by default. */
  cli?: string
}

function launch (t: Teardown, env: NodeJS.ProcessEnv, args: string[], options: LaunchOptions = {}): Launched {
  const child = spawn(process.execPath, [options.cli ?? cliPath, ...args], { env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  // 'close' rather than 'exit': it comes once stdout and stderr are drained, so the output is whole.
  const exited = once(child, 'close').then(([code, signal]) => ({ code, signal }) as Exit)
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited.catch(() => {})
  })
  let stdout = ''
  let stderr = ''
  let output = ''
  let announce: (url: string) => void = () => {}
  const listening = new Promise<string>(resolve => { announce = resolve })
  // The announcement may come on either stream (a plain line on stderr, a JSON log line on stdout).
  const watchLines = (stream: Readable, record: (chunk: string) => void): void => {
    let partial = ''
    stream.setEncoding('utf8').on('data', (chunk: string) => {
      record(chunk)
      output += chunk
      const lines = (partial + chunk).split('\n')
      partial = lines.pop()!
      for (const line of lines) {
        const url = listeningAddress(line)
        if (url !== undefined) announce(url)
      }
    })
  }
  watchLines(child.stdout!, chunk => { stdout += chunk })
  watchLines(child.stderr!, chunk => { stderr += chunk })
  return { child, stdout: () => stdout, stderr: () => stderr, output: () => output, exited, listening }
}

/**
 * Runs `paynotify serve` (or `args`) as a child process and resolves once it
 * announces its address (on stdout or stderr); rejects, with what it wrote, if it exits
 * first. No deadline of its own: a start that hangs is caught by tap's
 * timeout, and the test's teardown kills the process whatever happened.
 * Give it PAYNOTIFY_PORT=0: the port is the one the service bound and printed.
 */
export async function startService (t: Teardown, env: NodeJS.ProcessEnv, args: string[] = ['serve'], options: LaunchOptions = {}): Promise<ServiceProcess> {
  const { listening, ...launched } = launch(t, env, args, options)
  const outcome = await Promise.race([
    listening.then(url => ({ url })),
    launched.exited.then(exit => ({ exit }))
  ])
  if ('exit' in outcome) {
    throw new Error(`the service exited (${outcome.exit.code ?? outcome.exit.signal}) before listening:\n${launched.output()}`)
  }
  return {
    ...launched,
    url: outcome.url,
    port: Number(new URL(outcome.url).port),
    stop: async (signal = 'SIGTERM') => {
      launched.child.kill(signal)
      return await launched.exited
    }
  }
}

export interface Refusal {
  exit: Exit
  stdout: string
  stderr: string
  /** Whether it listened after all (then it was killed at once: the refusal the test expected did not happen). */
  listened: boolean
}

/**
 * Runs a start that should be refused (bad configuration, a broken log, a
 * port or database in use) and resolves with its exit and output. Should it
 * listen instead, it is killed on that event, so the test fails at once on
 * the exit code rather than waiting for a timeout.
 */
export async function startRefused (t: Teardown, env: NodeJS.ProcessEnv, args: string[] = ['serve']): Promise<Refusal> {
  const { child, listening, exited, stdout, stderr } = launch(t, env, args)
  let listened = false
  listening.then(() => { listened = true; child.kill('SIGKILL') }, () => {})
  const exit = await exited
  return { exit, stdout: stdout(), stderr: stderr(), listened }
}
