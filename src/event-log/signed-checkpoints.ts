import type SQLite from 'better-sqlite3'
import type { SignedCheckpointsTable } from '../db/database.js'
import { verifyCheckpointSignature, type CheckpointSigner } from './checkpoint-signature.js'
import type { Tail } from './event-log.js'

/**
 * Positions per row of signed_checkpoints. Every commit signs its tail, and
 * the row of the tail's block is replaced, so the table holds one row per
 * 1,024 positions (about 230 bytes: a few per cent of the events' own size
 * at worst) and always the latest tail. A range export then carries a
 * signature at least every 1,024 lines.
 */
export const checkpointBlockSize = 1024

export type SignedCheckpoint = SignedCheckpointsTable

/** A signed checkpoint as an export line carries it, on the line of its position. */
export interface LineCheckpoint {
  publicKey: string
  signature: string
}

/** The `checkpoint` member of a signed export line (with its leading comma), or nothing. */
export function formatCheckpoint (checkpoint: LineCheckpoint | undefined): string {
  return checkpoint === undefined ? '' : `,"checkpoint":{"publicKey":"${checkpoint.publicKey}","signature":"${checkpoint.signature}"}`
}

/** Something a signed checkpoint proves wrong about the log, or a part of it no signature covers. */
export type SignatureProblem =
  /** The signature does not verify under the key it names: made up, or the row was edited. */
  | { kind: 'forged', position: number, publicKey: string }
  /** A valid signature, by a key other than the trusted one. */
  | { kind: 'other-key', position: number, publicKey: string, trusted: string }
  /** The log holds another hash at a signed position (or no row there): history up to it was rewritten or cut. */
  | { kind: 'rewritten', position: number, signed: string, actual: string | null }
  /** Positions after the last trusted signature. */
  | { kind: 'unsigned', first: number, last: number }

/**
 * Returns a function that signs a tail and records it, for the writers
 * (EventLog, import) to call inside the transaction that appended it, so no
 * committed event is ever left without a signature over it.
 */
export function checkpointRecorder (sqlite: SQLite.Database, signer: CheckpointSigner): (tail: Tail, signedAt: string) => void {
  const upsert = sqlite.prepare(`INSERT INTO signed_checkpoints (block, position, hash, public_key, signature, signed_at) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (block) DO UPDATE SET position = excluded.position, hash = excluded.hash, public_key = excluded.public_key,
      signature = excluded.signature, signed_at = excluded.signed_at`)
  return (tail, signedAt) => {
    if (tail.position > 0) upsert.run(...signedCheckpointValues(signer, tail, signedAt))
  }
}

/** The signed_checkpoints row of a tail (position > 0), in column order: block, position, hash, public_key, signature, signed_at. */
export function signedCheckpointValues (signer: CheckpointSigner, tail: Tail, signedAt: string): [number, number, string, string, string, string] {
  return [Math.floor((tail.position - 1) / checkpointBlockSize), tail.position, tail.hash, signer.publicKey, signer.sign(tail.position, tail.hash), signedAt]
}

/** True when the database has the table (a log written before migration 2026-12-07-03, opened read-only, has not). */
export function hasSignedCheckpoints (sqlite: SQLite.Database): boolean {
  return sqlite.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'signed_checkpoints'").get() !== undefined
}

export function latestSignedCheckpoint (sqlite: SQLite.Database): SignedCheckpoint | undefined {
  return sqlite.prepare('SELECT * FROM signed_checkpoints ORDER BY position DESC LIMIT 1').get() as SignedCheckpoint | undefined
}

/** The signed checkpoints between two positions, by position (export attaches them to their lines). */
export function signedCheckpointsBetween (sqlite: SQLite.Database, first: number, last: number): Map<number, SignedCheckpoint> {
  if (!hasSignedCheckpoints(sqlite)) return new Map()
  const rows = sqlite.prepare('SELECT * FROM signed_checkpoints WHERE position BETWEEN ? AND ? ORDER BY position').all(first, last) as SignedCheckpoint[]
  return new Map(rows.map(row => [row.position, row]))
}

/**
 * Checks one signed checkpoint against the log: it verifies under the key
 * it names, that key is the trusted one (when one is given), and the log
 * still holds the signed hash at that position.
 */
export function checkSignedCheckpoint (sqlite: SQLite.Database, checkpoint: SignedCheckpoint, trusted: string | undefined): SignatureProblem | undefined {
  const { position, hash, public_key: publicKey, signature } = checkpoint
  if (!verifyCheckpointSignature(publicKey, position, hash, signature)) return { kind: 'forged', position, publicKey }
  if (trusted !== undefined && publicKey !== trusted) return { kind: 'other-key', position, publicKey, trusted }
  const actual = sqlite.prepare('SELECT hash FROM events WHERE position = ?').pluck().get(position) as string | undefined
  return actual === hash ? undefined : { kind: 'rewritten', position, signed: hash, actual: actual ?? null }
}

export interface SignatureReport {
  /** The key signatures were required to carry; undefined: each was checked against the key it names. */
  trusted: string | undefined
  /** Signed checkpoints that verified and cover the log up to coveredThrough. */
  valid: number
  /** Valid signatures by other keys than the trusted one (a key used before a rotation), not counted as proof. */
  ignored: number
  /** The highest position a valid signature covers (0: none). */
  coveredThrough: number
  /** The keys of the valid signatures (more than one only without a trusted key). */
  keys: string[]
  /** The first signed checkpoint that proves the log wrong. */
  problem?: SignatureProblem
  /** Positions after coveredThrough up to the tail. */
  unsigned?: { first: number, last: number }
}

/**
 * Checks every signed checkpoint of a database whose hash chain already
 * verified (verify-chain.ts) up to `tail`. The latest valid signature covers
 * every position up to it, through the chain; positions after it are
 * reported as unsigned, which is a failure when a trusted key is known (the
 * service signs every commit). Stops at the first checkpoint that proves
 * the log wrong.
 */
export function verifySignedCheckpoints (sqlite: SQLite.Database, tail: Tail, trusted: string | undefined): SignatureReport {
  const report: SignatureReport = { trusted, valid: 0, ignored: 0, coveredThrough: 0, keys: [] }
  if (hasSignedCheckpoints(sqlite)) {
    for (const checkpoint of sqlite.prepare('SELECT * FROM signed_checkpoints ORDER BY position').iterate() as IterableIterator<SignedCheckpoint>) {
      const problem = checkSignedCheckpoint(sqlite, checkpoint, trusted)
      if (problem?.kind === 'other-key') {
        report.ignored++
        continue
      }
      if (problem !== undefined) {
        report.problem = problem
        return report
      }
      report.valid++
      report.coveredThrough = checkpoint.position
      if (!report.keys.includes(checkpoint.public_key)) report.keys.push(checkpoint.public_key)
    }
  }
  if (report.coveredThrough < tail.position) report.unsigned = { first: report.coveredThrough + 1, last: tail.position }
  return report
}

/** One line for a SignatureProblem, naming the position and what it means. */
export function describeSignatureProblem (problem: SignatureProblem): string {
  switch (problem.kind) {
    case 'forged':
      return `the signed checkpoint at position ${problem.position} does not verify with the key it names (${problem.publicKey}): it was forged or edited`
    case 'other-key':
      return `the signed checkpoint at position ${problem.position} is signed with ${problem.publicKey}, not with the trusted key ${problem.trusted}`
    case 'rewritten':
      return problem.actual === null
        ? `position ${problem.position} was signed but is missing now: the log was cut short`
        : `position ${problem.position} does not hold the hash that was signed there: history up to it was rewritten`
    case 'unsigned':
      return `positions ${problem.first}-${problem.last} are not covered by a signed checkpoint (signatures removed, or events written without the key)`
    default: {
      const never: never = problem
      return never
    }
  }
}
