import { createHash } from 'node:crypto'

/** The hash before position 1. */
export const genesisHash = '0'.repeat(64)

/** The stored columns of one event that the chain covers. */
export interface ChainedRow {
  position: number
  stream_id: string
  stream_version: number
  type: string
  schema_version: number
  data: string
  metadata: string
  recorded_at: string
}

/**
 * hash = sha256(prev_hash ‖ canonical event). The canonical event is the
 * stored columns joined by newlines: data and metadata are single-line JSON
 * exactly as stored and the other fields cannot hold a newline, so the
 * encoding is unambiguous without re-serializing anything.
 */
export function chainHash (prevHash: string, row: ChainedRow): string {
  return createHash('sha256')
    .update(`${prevHash}\n${row.position}\n${row.stream_id}\n${row.stream_version}\n${row.type}\n${row.schema_version}\n${row.recorded_at}\n${row.data}\n${row.metadata}`)
    .digest('hex')
}
