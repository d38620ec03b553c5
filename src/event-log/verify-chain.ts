import type SQLite from 'better-sqlite3'
import { chainHash, genesisHash } from './hash.js'
import { rawBodyRef, rawBodySha256 } from './raw-bodies.js'
import { iterateRows, type EventRow } from './read.js'

export type ChainBreak =
  | { kind: 'gap', position: number, expected: number }
  | { kind: 'hash', position: number, expected: string, actual: string }
  /** The raw body the position's metadata names by hash is missing, or its bytes have another hash. */
  | { kind: 'body', position: number, sha256: string }

export interface ChainReport {
  ok: boolean
  checked: number
  lastPosition: number
  lastHash: string
  firstBreak?: ChainBreak
}

/**
 * Recomputes the hash chain from `from` (a position already known good, with
 * its hash) to the end, and names the first position that does not match:
 * an edited row breaks its own hash, an inserted or deleted row breaks the
 * positions or the next hash. The chain covers a raw body stored by hash
 * through that hash, so each such body is hashed again here: an edited or
 * missing body breaks the position that refers to it.
 */
export function verifyChain (sqlite: SQLite.Database, from = { position: 0, hash: genesisHash }, onProgress?: (checked: number) => void): ChainReport {
  const verifier = new ChainVerifier(from, onProgress)
  for (const row of iterateRows(sqlite, from.position)) {
    if (!verifier.add(row)) break
  }
  return verifier.report()
}

/** verifyChain over rows read asynchronously, in position order from after `from` (PostgreSQL: pg-read.ts). */
export async function verifyChainRows (rows: AsyncIterable<EventRow>, from = { position: 0, hash: genesisHash }, onProgress?: (checked: number) => void): Promise<ChainReport> {
  const verifier = new ChainVerifier(from, onProgress)
  for await (const row of rows) {
    if (!verifier.add(row)) break
  }
  return verifier.report()
}

/** The chain check of one row after another, whatever reads them. */
class ChainVerifier {
  #expectedPrev: number
  #prev: string
  #checked = 0
  #break: ChainBreak | undefined
  readonly #onProgress: ((checked: number) => void) | undefined

  constructor (from: { position: number, hash: string }, onProgress?: (checked: number) => void) {
    this.#expectedPrev = from.position
    this.#prev = from.hash
    this.#onProgress = onProgress
  }

  /** Checks the next row; false once a row breaks the chain (the rest is not checked). */
  add (row: EventRow): boolean {
    if (row.position !== this.#expectedPrev + 1) {
      this.#break = { kind: 'gap', position: row.position, expected: this.#expectedPrev + 1 }
      return false
    }
    const expected = chainHash(this.#prev, row)
    if (expected !== row.hash) {
      this.#break = { kind: 'hash', position: row.position, expected, actual: row.hash }
      return false
    }
    const body = rawBodyRef(row.metadata)
    if (body !== undefined && (row.raw_body === null || row.raw_body === undefined || rawBodySha256(row.raw_body, row.raw_encoding === 'base64' ? 'base64' : 'utf8') !== body)) {
      this.#break = { kind: 'body', position: row.position, sha256: body }
      return false
    }
    this.#prev = row.hash
    this.#expectedPrev = row.position
    this.#checked++
    if (this.#onProgress !== undefined && this.#checked % 10000 === 0) this.#onProgress(this.#checked)
    return true
  }

  report (): ChainReport {
    const report = { ok: this.#break === undefined, checked: this.#checked, lastPosition: this.#expectedPrev, lastHash: this.#prev }
    return this.#break === undefined ? report : { ...report, firstBreak: this.#break }
  }
}
