import type SQLite from 'better-sqlite3'
import type { CheckpointSigner } from './checkpoint-signature.js'
import { genesisHash } from './hash.js'
import { checkpointRecorder, checkSignedCheckpoint, describeSignatureProblem, latestSignedCheckpoint, type SignatureProblem } from './signed-checkpoints.js'
import { verifyChain, type ChainReport } from './verify-chain.js'

const checkpointName = 'events'

export interface ChainCheckpoint {
  position: number
  hash: string
}

/** A checkpoint that no longer matches the log: its row is gone (truncated) or carries another hash. */
export interface CheckpointMismatch {
  kind: 'checkpoint'
  position: number
  expected: string
  actual: string | null
}

export interface StartChainCheck {
  ok: boolean
  /** Where checking started: the last verified position (genesis on a first start). */
  from: ChainCheckpoint
  report: ChainReport
  checkpointMismatch?: CheckpointMismatch
  /** What the signed checkpoints prove wrong (checked only when the chain holds). */
  signatureProblem?: SignatureProblem
  /** The position this start signed on the key's first use (a log written before it had a key). */
  signedOnFirstUse?: number
}

/** The service's key, for the start-time check of the signed checkpoints. */
export interface StartSigning {
  signer: CheckpointSigner
  /** The key was generated on this start: a log with no signature at all is then signed as it stands (trust on first use). */
  firstUse: boolean
}

/** The last verified position and its hash, or genesis when no start has verified anything yet. */
export function readChainCheckpoint (sqlite: SQLite.Database): ChainCheckpoint {
  const row = sqlite.prepare('SELECT position, hash FROM chain_checkpoints WHERE name = ?').get(checkpointName) as ChainCheckpoint | undefined
  return row ?? { position: 0, hash: genesisHash }
}

/**
 * Verifies the hash chain from the last verified position to the end of the
 * log and, when it holds, moves the checkpoint to the end. Rows before the
 * checkpoint are not re-hashed (that is what makes a start cheap on a large
 * log; `paynotify verify` checks everything), but the checkpoint's own row
 * must still carry the hash recorded there, which catches a log truncated or
 * rewritten behind the service's back.
 *
 * Whoever can write the database can also rewrite every hash and this
 * checkpoint. With `signing`, the latest signed checkpoint must then verify
 * with the service's own key and match the log, and nothing may follow it:
 * the writer signs every commit, so an unsigned tail means signatures were
 * removed or events were added without the key.
 */
export function checkChainSinceCheckpoint (sqlite: SQLite.Database, now: Date, signing?: StartSigning): StartChainCheck {
  const from = readChainCheckpoint(sqlite)
  if (from.position > 0) {
    const row = sqlite.prepare('SELECT hash FROM events WHERE position = ?').get(from.position) as { hash: string } | undefined
    if (row?.hash !== from.hash) {
      const report: ChainReport = { ok: false, checked: 0, lastPosition: from.position, lastHash: from.hash }
      return { ok: false, from, report, checkpointMismatch: { kind: 'checkpoint', position: from.position, expected: from.hash, actual: row?.hash ?? null } }
    }
  }
  const report = verifyChain(sqlite, from)
  if (report.ok && report.lastPosition > from.position) {
    sqlite.prepare(`INSERT INTO chain_checkpoints (name, position, hash, verified_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (name) DO UPDATE SET position = excluded.position, hash = excluded.hash, verified_at = excluded.verified_at`)
      .run(checkpointName, report.lastPosition, report.lastHash, now.toISOString())
  }
  if (!report.ok || signing === undefined) return { ok: report.ok, from, report }
  const tail = { position: report.lastPosition, hash: report.lastHash }
  const latest = latestSignedCheckpoint(sqlite)
  if (latest === undefined) {
    if (tail.position === 0) return { ok: true, from, report }
    if (!signing.firstUse) return { ok: false, from, report, signatureProblem: { kind: 'unsigned', first: 1, last: tail.position } }
    checkpointRecorder(sqlite, signing.signer)(tail, now.toISOString())
    return { ok: true, from, report, signedOnFirstUse: tail.position }
  }
  const problem = checkSignedCheckpoint(sqlite, latest, signing.signer.publicKey) ??
    (latest.position < tail.position ? { kind: 'unsigned', first: latest.position + 1, last: tail.position } : undefined)
  return problem === undefined ? { ok: true, from, report } : { ok: false, from, report, signatureProblem: problem }
}

/** One line naming where and how the chain broke, for the refusal message. */
export function describeChainBreak (check: StartChainCheck): string {
  if (check.signatureProblem !== undefined) return describeSignatureProblem(check.signatureProblem)
  if (check.checkpointMismatch !== undefined) {
    const { position, actual } = check.checkpointMismatch
    return actual === null
      ? `position ${position} was verified before but is missing now (log truncated)`
      : `position ${position} was verified before but its hash changed`
  }
  const broken = check.report.firstBreak
  if (broken === undefined) return 'chain intact'
  switch (broken.kind) {
    case 'gap': return `position ${broken.expected} is missing (next row is ${broken.position})`
    case 'hash': return `position ${broken.position} does not match its hash (edited, inserted or reordered)`
    case 'body': return `the raw body of position ${broken.position} is missing or does not match its hash`
  }
}
