import { streamIdPattern } from '../orders/events.js'
import { verifyCheckpointSignature } from './checkpoint-signature.js'
import { checkExportedEvent } from './event-schemas.js'
import { chainHash, genesisHash, type ChainedRow } from './hash.js'
import { formatCheckpoint, type LineCheckpoint } from './signed-checkpoints.js'
import { rawBodySha256, withRawBody, type RawBody } from './raw-bodies.js'
import type { EventRow } from './read.js'

/**
 * One line of an export (`paynotify export`, the admin NDJSON stream, the
 * samples in events/): a stored event with the hash of the event before it,
 * so every line can be checked on its own and a partial export still
 * carries its proof.
 */
export interface ExportedEvent {
  position: number
  streamId: string
  streamVersion: number
  type: string
  schemaVersion: number
  data: unknown
  metadata: unknown
  recordedAt: string
  /** Absent in the admin NDJSON stream: then the line is checked against the line before it. */
  prevHash?: string
  hash: string
  /** Present on a line whose position the service signed: the signature covers this line and every line chained before it. */
  checkpoint?: LineCheckpoint
}

export type { LineCheckpoint } from './signed-checkpoints.js'

/** A parsed line: the stored row it stands for (data and metadata as stored text) and its chain links. */
export interface ImportedRow extends ChainedRow {
  /** The raw body the line carried in metadata.raw, when the row stores it by hash (raw-bodies.ts). */
  body?: RawBody | undefined
  /** As given in the line, or (set by ChainChecker) the hash of the line before it. */
  prevHash: string | undefined
  hash: string
  /** 1-based line number in the file, for messages. */
  line: number
  /** Its signature, already checked against the key it names. */
  checkpoint?: LineCheckpoint | undefined
}

/**
 * Formats a stored row as an export line (with its newline). data and
 * metadata are spliced in as stored: they are already single-line JSON, and
 * not re-serializing them keeps export fast and the bytes exactly those the
 * hash covers. A raw body the row stores by hash (read with it) goes back
 * first in metadata.raw, so the line can be re-delivered.
 */
export function formatExportLine (row: EventRow, prevHash: string, checkpoint?: LineCheckpoint): string {
  return `{"position":${row.position},"streamId":${JSON.stringify(row.stream_id)},"streamVersion":${row.stream_version},` +
    `"type":${JSON.stringify(row.type)},"schemaVersion":${row.schema_version},"data":${row.data},"metadata":${withRawBody(row.metadata, row.raw_body)},` +
    `"recordedAt":${JSON.stringify(row.recorded_at)},"prevHash":"${prevHash}","hash":"${row.hash}"${formatCheckpoint(checkpoint)}}\n`
}

/** A line that cannot be imported; `line` is 1-based. */
export class ExportLineError extends Error {
  readonly line: number

  constructor (line: number, message: string) {
    super(`line ${line}: ${message}`)
    this.line = line
  }
}

const hexHash = /^[0-9a-f]{64}$/
const typeName = /^[A-Z][A-Za-z]{0,63}$/
const isoTime = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/

function positiveInteger (value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0
}

function isObject (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/**
 * Parses one export line and checks it on its own: every field present and
 * well-formed, and `hash = chainHash(prevHash, row)` when the line carries
 * its prevHash (ChainChecker checks the others). data and metadata are
 * re-serialized the way the log stores them; an export of a stored row gives
 * the stored text back, and anything else fails the hash check. A raw body
 * the log stores by hash (metadata.raw.bodySha256) is taken out of the
 * metadata and must have that hash: the chain covers it only through it.
 */
export function parseExportLine (text: string, line: number): ImportedRow {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new ExportLineError(line, 'is not valid JSON')
  }
  if (!isObject(value)) throw new ExportLineError(line, 'must be a JSON object')
  const field = (name: string, ok: boolean, expected: string): void => {
    if (!ok) throw new ExportLineError(line, `${name} must be ${expected}`)
  }
  const v = value
  field('position', positiveInteger(v.position), 'a positive integer')
  field('streamId', typeof v.streamId === 'string' && streamIdPattern.test(v.streamId), 'an order id or ~unattributed:<gateway>')
  field('streamVersion', positiveInteger(v.streamVersion), 'a positive integer')
  field('type', typeof v.type === 'string' && typeName.test(v.type), 'an event type name')
  field('schemaVersion', positiveInteger(v.schemaVersion), 'a positive integer')
  field('data', isObject(v.data), 'a JSON object')
  field('metadata', isObject(v.metadata), 'a JSON object')
  field('recordedAt', typeof v.recordedAt === 'string' && isoTime.test(v.recordedAt), 'an ISO-8601 UTC time')
  field('prevHash', v.prevHash === undefined || (typeof v.prevHash === 'string' && hexHash.test(v.prevHash)), '64 lower-case hex characters')
  field('hash', typeof v.hash === 'string' && hexHash.test(v.hash), '64 lower-case hex characters')
  // The whole line against the catalogue (events/schemas): data of its type and version, metadata, the checkpoint.
  const problem = checkExportedEvent(v)
  if (problem !== null) throw new ExportLineError(line, `position ${v.position as number} (${v.type as string}): ${problem}`)
  const checkpoint = v.checkpoint as LineCheckpoint | undefined
  if (checkpoint !== undefined && !verifyCheckpointSignature(checkpoint.publicKey, v.position as number, v.hash as string, checkpoint.signature)) {
    throw new ExportLineError(line, `position ${v.position as number}: its checkpoint signature does not verify with ${checkpoint.publicKey} (forged, or the line was edited)`)
  }
  const { metadata, body } = storedMetadata(v.metadata as Record<string, unknown>, line)
  const row: ImportedRow = {
    position: v.position as number,
    stream_id: v.streamId as string,
    stream_version: v.streamVersion as number,
    type: v.type as string,
    schema_version: v.schemaVersion as number,
    data: JSON.stringify(v.data),
    metadata: JSON.stringify(metadata),
    body,
    recorded_at: v.recordedAt as string,
    prevHash: v.prevHash as string | undefined,
    hash: v.hash as string,
    line,
    checkpoint
  }
  if (row.prevHash === undefined) return row
  if (row.position === 1 && row.prevHash !== genesisHash) throw new ExportLineError(line, 'position 1 must follow the genesis hash')
  checkHash(row, row.prevHash)
  return row
}

/** A line's metadata as the log stores it: a body stored by hash taken out of raw, after checking it has that hash. */
function storedMetadata (metadata: Record<string, unknown>, line: number): { metadata: Record<string, unknown>, body: RawBody | undefined } {
  const raw = metadata.raw
  if (!isObject(raw) || raw.bodySha256 === undefined) return { metadata, body: undefined }
  const { body: text, ...stored } = raw
  if (typeof raw.bodySha256 !== 'string' || !hexHash.test(raw.bodySha256)) throw new ExportLineError(line, 'metadata.raw.bodySha256 must be 64 lower-case hex characters')
  if (raw.encoding !== 'utf8' && raw.encoding !== 'base64') throw new ExportLineError(line, 'metadata.raw.encoding must be utf8 or base64')
  if (typeof text !== 'string') throw new ExportLineError(line, 'metadata.raw.body must be the raw body whose hash is metadata.raw.bodySha256')
  if (rawBodySha256(text, raw.encoding) !== raw.bodySha256 || Buffer.byteLength(text, raw.encoding) !== raw.bodySize) {
    throw new ExportLineError(line, 'metadata.raw.body does not match metadata.raw.bodySha256 and bodySize (the line was edited)')
  }
  // The rest keeps its key order: the stored JSON is the line's metadata without the body.
  return { metadata: { ...metadata, raw: stored }, body: { sha256: raw.bodySha256, encoding: raw.encoding, text } }
}

function checkHash (row: ImportedRow, prevHash: string): void {
  if (chainHash(prevHash, row) !== row.hash) {
    throw new ExportLineError(row.line, `hash does not match the content of position ${row.position} (the line was edited)`)
  }
}

/** What a whole file is, once every line has passed ChainChecker. */
export interface ExportSummary {
  lines: number
  first: ImportedRow | undefined
  last: ImportedRow | undefined
  /** Positions follow each other with no gap: the file is one unbroken piece of a log. */
  contiguous: boolean
  /** Every line belongs to one order. */
  singleStream: boolean
  /** The first line carries no prevHash and is not position 1: its link to the log before it is unproven. */
  unanchored: boolean
  signatures: SignatureCoverage
}

/**
 * Which lines of a file a signed checkpoint vouches for. A signature on a
 * line covers it and every line chained before it without a gap; a file of
 * one order (positions apart) or a range cut after its last signed line
 * leaves lines uncovered.
 */
export interface SignatureCoverage {
  /** The key every signature had to carry (--public-key), or undefined: any key that verifies counts. */
  pinned: string | undefined
  /** The keys of the signatures that count (at most a few). */
  keys: string[]
  covered: number
  uncovered: number
  /** The first uncovered line, for messages. */
  firstUncovered?: { line: number, position: number }
  /** Signatures by another key than the pinned one (not counted). */
  ignored: number
}

export interface ChainCheckerOptions {
  /** Only signatures by this public key count, and every line must be covered by one (checked by requireSigned). */
  publicKey?: string | undefined
}

/**
 * Checks the links between lines, in constant memory: positions strictly
 * increase (a reordered file fails), a line right after its predecessor
 * chains to it (a replaced line fails), a file of several orders has no gaps
 * (a deleted line fails: exports of a position or time range are unbroken),
 * and a one-order file has consecutive stream versions (an export of one
 * order holds all its events). It also counts which lines a signed
 * checkpoint covers.
 */
export class ChainChecker {
  #lines = 0
  #first: ImportedRow | undefined
  #last: ImportedRow | undefined
  #contiguous = true
  #singleStream = true
  #gap: { line: number, message: string } | undefined
  #unanchored = false
  readonly #coverage: SignatureCoverage
  /** Lines since the last counted signature, all chained to each other: the next signature covers them. */
  #pending = 0
  #pendingFrom: { line: number, position: number } | undefined

  constructor (options: ChainCheckerOptions = {}) {
    this.#coverage = { pinned: options.publicKey, keys: [], covered: 0, uncovered: 0, ignored: 0 }
  }

  /** Checks the next line (already parsed by parseExportLine); throws ExportLineError. */
  add (row: ImportedRow): void {
    const { line } = row
    const last = this.#last
    this.#lines++
    let proven = true
    if (row.prevHash === undefined) {
      // A line without prevHash (the admin NDJSON stream) is proven by the line before it.
      const prevHash = row.position === 1 ? genesisHash : last !== undefined && row.position === last.position + 1 ? last.hash : undefined
      if (prevHash !== undefined) {
        checkHash(row, prevHash)
        row.prevHash = prevHash
      } else if (last === undefined) {
        this.#unanchored = true
        // Its hash is not recomputed from its content: a signature after it covers the lines after it, not it.
        proven = false
      } else {
        throw new ExportLineError(line, `has no prevHash and the line before is not position ${row.position - 1}, so it cannot be checked`)
      }
    }
    if (last !== undefined) {
      if (row.position <= last.position) {
        throw new ExportLineError(line, `position ${row.position} after position ${last.position}: lines are out of order`)
      }
      if (row.position === last.position + 1 && row.prevHash !== last.hash) {
        throw new ExportLineError(line, `position ${row.position} does not chain to position ${last.position} on the line before`)
      }
      if (row.stream_id !== this.#first!.stream_id) this.#singleStream = false
      if (row.position !== last.position + 1) {
        this.#contiguous = false
        this.#gap ??= { line, message: `position ${row.position} follows position ${last.position}: position ${last.position + 1} is missing or out of order` }
      }
      if (this.#singleStream && row.stream_version !== last.stream_version + 1) {
        throw new ExportLineError(line, `order ${row.stream_id} version ${row.stream_version} follows version ${last.stream_version}: a line is missing or out of order`)
      }
      if (!this.#singleStream && this.#gap !== undefined) {
        throw new ExportLineError(this.#gap.line, `${this.#gap.message} (a file of several orders must be an unbroken range of positions)`)
      }
      // Lines before a gap can no longer be covered by a signature after it.
      if (row.position !== last.position + 1) this.#leaveUncovered()
    }
    this.#first ??= row
    this.#last = row
    if (!proven) {
      this.#pendingFrom = { line, position: row.position }
      this.#pending = 1
      this.#leaveUncovered()
      return
    }
    this.#pendingFrom ??= { line, position: row.position }
    this.#pending++
    if (row.checkpoint !== undefined) this.#countSignature(row.checkpoint)
  }

  #countSignature (checkpoint: LineCheckpoint): void {
    const coverage = this.#coverage
    if (coverage.pinned !== undefined && checkpoint.publicKey !== coverage.pinned) {
      coverage.ignored++
      return
    }
    if (!coverage.keys.includes(checkpoint.publicKey) && coverage.keys.length < 4) coverage.keys.push(checkpoint.publicKey)
    coverage.covered += this.#pending
    this.#pending = 0
    this.#pendingFrom = undefined
  }

  #leaveUncovered (): void {
    const coverage = this.#coverage
    coverage.uncovered += this.#pending
    coverage.firstUncovered ??= this.#pendingFrom
    this.#pending = 0
    this.#pendingFrom = undefined
  }

  summary (): ExportSummary {
    this.#leaveUncovered()
    return {
      lines: this.#lines,
      first: this.#first,
      last: this.#last,
      contiguous: this.#contiguous,
      singleStream: this.#singleStream,
      unanchored: this.#unanchored,
      signatures: { ...this.#coverage, keys: [...this.#coverage.keys] }
    }
  }
}

/**
 * With a pinned key, every line must be covered by a checkpoint signed with
 * it: throws ExportLineError naming the first line that is not.
 */
export function requireSigned (summary: ExportSummary): void {
  const { pinned, uncovered, firstUncovered } = summary.signatures
  if (pinned === undefined || uncovered === 0 || firstUncovered === undefined) return
  throw new ExportLineError(firstUncovered.line, `position ${firstUncovered.position} and ${uncovered - 1} more line(s) are not covered by a checkpoint signed with ${pinned} ` +
    '(a forged or re-signed file, one order\'s lines, or lines after the last signed one)')
}

/** One line saying how far the file's signatures vouch for it. */
export function describeCoverage (summary: ExportSummary): string {
  const { pinned, keys, covered, uncovered, firstUncovered, ignored } = summary.signatures
  const by = pinned !== undefined ? `the pinned key ${pinned}` : `${keys.join(', ')} (not pinned: pass --public-key to require it)`
  const rest = uncovered === 0 ? '' : `; ${uncovered} line(s) from position ${firstUncovered!.position} are not covered`
  const others = ignored === 0 ? '' : `; ${ignored} signature(s) by other keys ignored`
  if (covered === 0) return `signatures: none of ${summary.lines} line(s) covered by a signed checkpoint${pinned === undefined ? '' : ` with the pinned key ${pinned}`}${others}`
  return `signatures: ${covered} of ${summary.lines} line(s) covered by checkpoints signed with ${by}${rest}${others}`
}
