import { createHash } from 'node:crypto'
import type SQLite from 'better-sqlite3'
import type { EventMetadata, RawRequest } from '../orders/events.js'

// How raw request bodies are stored (issue 10): a body of minBodyStoredApart bytes or more is
// stored once, in raw_bodies, keyed by the sha256 of its bytes. The metadata an event stores
// keeps the rest of its raw request plus `bodySha256` and `bodySize`, so a repeat of a delivery
// costs one small row however large its body, and the hash chain still covers the body: through
// bodySha256, which verify checks against the stored body. Whatever reads events for a person or
// a file (export, the admin API, replay) puts the body back first in `raw`, where events with a
// smaller body, and every event stored before this, have it inline.

/**
 * Smaller bodies stay inline in their event. Storing a body apart costs ~19 µs per append (an
 * insert under a random sha256 key) where the whole event row costs ~10 µs: every body apart
 * took EventLog from 35 to 62 µs CPU per append, this threshold back to 39 (50,000 appends of a
 * 180-byte callback in transactions of 50, synchronous=NORMAL). Too much for a gateway's usual
 * 0.2-3 kB callback, whose 31 stored repeats cost under 128 kB; a body padded toward the 64 KiB
 * limit is stored once.
 */
export const minBodyStoredApart = 4096

/** metadata.raw as the events table stores it for events appended since bodies are stored by hash. */
export type StoredRawRequest = Omit<RawRequest, 'body' | 'bodySha256' | 'bodySize'> & { bodySha256: string, bodySize: number }

/** A raw_bodies row. */
export interface RawBody {
  sha256: string
  encoding: RawRequest['encoding']
  /** The body as RawRequest.body holds it: the text itself (utf8), or base64. */
  text: string
}

export const insertRawBodySql = 'INSERT INTO raw_bodies (sha256, encoding, body) VALUES (?, ?, ?)'

/** Hex sha256 of the bytes a body's text stands for. */
export function rawBodySha256 (text: string, encoding: RawRequest['encoding']): string {
  return createHash('sha256').update(text, encoding === 'base64' ? 'base64' : 'utf8').digest('hex')
}

/**
 * An event's metadata as the log stores it, and the body to store beside it.
 * Metadata without a raw body, or with one under minBodyStoredApart bytes,
 * is returned as it is (the body inline).
 */
export function splitRawBody (metadata: EventMetadata): { metadata: EventMetadata, body: RawBody | undefined } {
  const raw = metadata.raw
  if (raw === undefined || typeof raw.body !== 'string') return { metadata, body: undefined }
  const { body: text, encoding, contentType, headers } = raw
  const size = Buffer.byteLength(text, encoding === 'base64' ? 'base64' : 'utf8')
  if (size < minBodyStoredApart) {
    // An inline body never names a hash: only a body stored apart does (rawBodyRef).
    return raw.bodySha256 === undefined && raw.bodySize === undefined ? { metadata, body: undefined } : { metadata: { ...metadata, raw: { body: text, encoding, contentType, headers } }, body: undefined }
  }
  const sha256 = rawBodySha256(text, encoding)
  const stored: StoredRawRequest = { encoding, contentType, headers, bodySha256: sha256, bodySize: size }
  // The spread keeps `raw` where it was among the keys: the stored JSON has one key order whoever wrote it.
  return { metadata: { ...metadata, raw: stored as unknown as RawRequest }, body: { sha256, encoding, text } }
}

const refKey = '"bodySha256":"'

/**
 * The body hash a stored metadata JSON refers to, found without parsing it:
 * in JSON text a quote inside a string is escaped, so `"bodySha256":"` can
 * only be that key, and the stored raw request writes it after its headers.
 */
export function rawBodyRef (metadataJson: string): string | undefined {
  const at = metadataJson.indexOf(refKey)
  return at === -1 ? undefined : metadataJson.slice(at + refKey.length, at + refKey.length + 64)
}

/** rawBodyRef in SQL, over a metadata column: the join key into raw_bodies (NULL for metadata without one). */
export function rawBodyRefSql (column: string): string {
  return `CASE WHEN instr(${column}, '${refKey}') > 0 THEN substr(${column}, instr(${column}, '${refKey}') + ${refKey.length}, 64) END`
}

const rawKey = '"raw":{'

/**
 * Stored metadata JSON with its body put back, first in `raw` (as older
 * events have it): `"raw":{` is that key for the same reason as above.
 * With no body (an event without one, or a body missing from the database),
 * the JSON as stored.
 */
export function withRawBody (metadataJson: string, text: string | null | undefined): string {
  if (text === null || text === undefined) return metadataJson
  return metadataJson.split(rawKey).join(`${rawKey}"body":${JSON.stringify(text)},`)
}

/** withRawBody in SQL: `metadata` and a nullable `body` column. json_quote escapes as JSON.stringify does. */
export function withRawBodySql (metadata: string, body: string): string {
  return `CASE WHEN ${body} IS NULL THEN ${metadata} ELSE replace(${metadata}, '${rawKey}', '${rawKey}"body":' || json_quote(${body}) || ',') END`
}

/**
 * The events of a database, each with its raw body, as a FROM clause (events
 * as `e`; `raw_body` and `raw_encoding` to select). A database the migration
 * that added raw_bodies has not reached yet (verify and export open it
 * read-only, unmigrated) holds every body inline.
 */
export function eventsWithBodiesSql (sqlite: SQLite.Database): { from: string, body: string, encoding: string } {
  const stored = sqlite.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'raw_bodies'").get() !== undefined
  return stored
    ? { from: `events e LEFT JOIN raw_bodies b ON b.sha256 = ${rawBodyRefSql('e.metadata')}`, body: 'b.body', encoding: 'b.encoding' }
    : { from: 'events e', body: 'NULL', encoding: 'NULL' }
}
