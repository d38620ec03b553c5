import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'

/** How messages name an input: `-` is stdin. */
export function inputName (file: string): string {
  return file === '-' ? 'stdin' : file
}

/** Why `file` cannot be read as an export (a usage error), or undefined. `-` is stdin. */
export function unreadableInput (file: string): string | undefined {
  if (file === '-') return undefined
  try {
    return statSync(file).isDirectory() ? `${file} is a directory` : undefined
  } catch {
    return `no file ${file}`
  }
}

/**
 * Import and replay read an export twice: every line is checked before the
 * first is written, then read again to write it. Stdin (`-`), a pipe and a
 * process substitution (`<(…)`) can be read only once (a second pass finds
 * nothing), so they are copied once to a private temporary file (0600: an
 * export holds raw requests) that both passes read. A regular file is read
 * in place.
 */
export async function withRereadableInput<T> (file: string, use: (path: string) => Promise<T>): Promise<T> {
  if (file !== '-' && statSync(file).isFile()) return await use(file)
  const dir = mkdtempSync(join(tmpdir(), 'paynotify-input-'))
  try {
    const copy = join(dir, 'input.ndjson')
    await pipeline(file === '-' ? process.stdin : createReadStream(file), createWriteStream(copy, { mode: 0o600 }))
    return await use(copy)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
