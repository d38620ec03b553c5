import type SQLite from 'better-sqlite3'
import { chainHash, genesisHash } from './hash.js'
import { rawBodyRef, rawBodySha256 } from './raw-bodies.js'
import { iterateRows } from './read.js'

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
  let { position: expectedPrev, hash: prev } = from
  let checked = 0
  for (const row of iterateRows(sqlite, from.position)) {
    if (row.position !== expectedPrev + 1) {
      return { ok: false, checked, lastPosition: expectedPrev, lastHash: prev, firstBreak: { kind: 'gap', position: row.position, expected: expectedPrev + 1 } }
    }
    const expected = chainHash(prev, row)
    if (expected !== row.hash) {
      return { ok: false, checked, lastPosition: expectedPrev, lastHash: prev, firstBreak: { kind: 'hash', position: row.position, expected, actual: row.hash } }
    }
    const body = rawBodyRef(row.metadata)
    if (body !== undefined && (row.raw_body === null || row.raw_body === undefined || rawBodySha256(row.raw_body, row.raw_encoding === 'base64' ? 'base64' : 'utf8') !== body)) {
      return { ok: false, checked, lastPosition: expectedPrev, lastHash: prev, firstBreak: { kind: 'body', position: row.position, sha256: body } }
    }
    prev = row.hash
    expectedPrev = row.position
    checked++
    if (onProgress !== undefined && checked % 10000 === 0) onProgress(checked)
  }
  return { ok: true, checked, lastPosition: expectedPrev, lastHash: prev }
}
