import type SQLite from 'better-sqlite3'
import { chainHash, genesisHash } from './hash.js'
import { iterateRows } from './read.js'

export type ChainBreak =
  | { kind: 'gap', position: number, expected: number }
  | { kind: 'hash', position: number, expected: string, actual: string }

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
 * positions or the next hash.
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
    prev = row.hash
    expectedPrev = row.position
    checked++
    if (onProgress !== undefined && checked % 10000 === 0) onProgress(checked)
  }
  return { ok: true, checked, lastPosition: expectedPrev, lastHash: prev }
}
