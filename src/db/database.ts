import { closeSync, openSync } from 'node:fs'
import SQLite from 'better-sqlite3'
import { Kysely, SqliteDialect, type Generated } from 'kysely'
import { prepareDatabaseDirectory } from './data-directory.js'

/** Every table, in one place (kysely style). */
export interface Database {
  events: EventsTable
  orders: OrdersTable
  projections: ProjectionsTable
  chain_checkpoints: ChainCheckpointsTable
  signed_checkpoints: SignedCheckpointsTable
  raw_bodies: RawBodiesTable
  deliveries: DeliveriesTable
  endpoints: EndpointsTable
  endpoint_secrets: EndpointSecretsTable
  outbox: OutboxTable
  outbound_deliveries: OutboundDeliveriesTable
  outbound_attempts: OutboundAttemptsTable
  jobs: JobsTable
}

export interface EventsTable {
  position: number
  stream_id: string
  stream_version: number
  type: string
  schema_version: number
  data: string
  metadata: string
  recorded_at: string
  hash: string
}

export interface OrdersTable {
  order_id: string
  status: string
  needs_review: number
  anomalies: string
  expected_amount: number | null
  expected_currency: string | null
  paid_amount: number
  refunded_amount: number
  currency: string | null
  gateway: string | null
  gateway_trade_no: string | null
  duplicate_count: number
  version: number
  last_position: number
  first_seen_at: string | null
  updated_at: string | null
  /** The fold state as JSON, so the next event applies without reading the stream again. */
  state: string
}

export interface ProjectionsTable {
  name: string
  last_position: Generated<number>
  /** JSON of the projection's ViewContext. */
  context: string
}

/** The last position whose hash chain a start verified (event-log/chain-checkpoint.ts). */
export interface ChainCheckpointsTable {
  name: string
  position: number
  hash: string
  verified_at: string
}

/** The chain's tail as the writer signed it, one row per block of positions (event-log/signed-checkpoints.ts). */
export interface SignedCheckpointsTable {
  block: number
  position: number
  hash: string
  /** `ed25519:` and the raw key in base64url. */
  public_key: string
  /** Ed25519 over `paynotify-checkpoint-v1\n<position>\n<hash>`, base64url. */
  signature: string
  signed_at: string
}

/** Raw request bodies, each stored once by the sha256 of its bytes (event-log/raw-bodies.ts). */
export interface RawBodiesTable {
  sha256: string
  encoding: 'utf8' | 'base64'
  /** The body as text: itself when it is UTF-8, else base64. */
  body: string
}

/** Per order and delivery id: events stored (kept by a trigger) and repeats acked but not stored (the cap). */
export interface DeliveriesTable {
  stream_id: string
  gateway: string
  delivery_id: string
  stored: number
  unstored: Generated<number>
  last_unstored_at: string | null
}

/** Outbound endpoints: the projection of the log's EndpointChanged events (projection/endpoints-projection.ts). */
export interface EndpointsTable {
  id: string
  url: string
  /** JSON array of order.* types; null for every type. */
  events: string | null
  description: string | null
  enabled: number
  disabled_reason: string | null
  /** Log position of its EndpointChanged `created`: it receives the messages of later positions only. */
  created_position: number
  created_at: string
  updated_at: string
}

/** An endpoint's signing secrets, sealed under a key kept outside the database (outbound/sealed-secrets.ts). */
export interface EndpointSecretsTable {
  id: Generated<number>
  endpoint_id: string
  sealed: string
  created_at: string
  /** Set when a newer secret replaced it: it keeps signing beside the new one until then. */
  expires_at: string | null
}

/** Every order.* message, written in the transaction of the event that caused it (projection/outbox.ts). */
export interface OutboxTable {
  /** The message's position in the feed (GET /admin/feed `id:`). */
  seq: Generated<number>
  /** `webhook-id`: the same on every attempt. */
  message_id: string
  type: string
  order_id: string
  /** Log position of the event that caused it. */
  position: number
  /** Per order, one more than its previous change's: the messages of one change share it. */
  version: number
  /** The body, exactly as sent. */
  payload: string
  created_at: string
}

export const DeliveryState = {
  Pending: 'pending',
  /** An attempt failed and another is scheduled. */
  Failed: 'failed',
  Delivered: 'delivered',
  /** Dead-lettered: the last attempt failed, or the answer said not to retry. */
  Dead: 'dead'
} as const
export type DeliveryState = typeof DeliveryState[keyof typeof DeliveryState]

/** One message to one endpoint. */
export interface OutboundDeliveriesTable {
  id: Generated<number>
  message_seq: number
  endpoint_id: string
  order_id: string
  state: DeliveryState
  attempts: Generated<number>
  /** Epoch milliseconds. */
  next_attempt_at: number
  created_at: string
  updated_at: string
  last_status: number | null
  last_error: string | null
}

export interface OutboundAttemptsTable {
  id: Generated<number>
  delivery_id: number
  endpoint_id: string
  message_seq: number
  attempted_at: string
  duration_ms: number
  /** JSON object of the headers sent. */
  request_headers: string
  status: number | null
  /** The first 4 KiB of the answer. */
  response_body: string | null
  error: string | null
}

export interface JobsTable {
  id: string
  kind: string
  state: 'running' | 'done' | 'failed' | 'interrupted'
  params: string
  total: number
  done: number
  error: string | null
  created_at: string
  finished_at: string | null
}

export type SynchronousMode = 'FULL' | 'NORMAL'

export interface DatabaseOptions {
  synchronous?: SynchronousMode
  /** Milliseconds to wait for another connection's lock before SQLITE_BUSY. */
  busyTimeoutMs?: number
  readonly?: boolean
}

export interface OpenDatabase {
  sqlite: SQLite.Database
  db: Kysely<Database>
  close: () => Promise<void>
}

/**
 * Opens one SQLite connection with the pragmas every connection needs, and a
 * Kysely instance over the same connection. One connection is enough: writes
 * run synchronously in one transaction per batch, so reads never see a half
 * batch.
 */
export function openDatabase (path: string, options: DatabaseOptions = {}): OpenDatabase {
  if (path !== ':memory:' && !options.readonly) {
    prepareDatabaseDirectory(path)
    createPrivately(path)
  }
  const sqlite = new SQLite(path, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false })
  configureConnection(sqlite, options)
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) })
  return { sqlite, db, close: async () => { await db.destroy() } }
}

/**
 * Creates a missing database file with mode 0600 before SQLite opens it:
 * the log holds every raw callback and the admin's view of every order.
 * SQLite gives the -wal and -shm files it creates the mode of the database
 * file, so they are private too (test/db/file-modes.test.ts).
 */
function createPrivately (path: string): void {
  try {
    closeSync(openSync(path, 'wx', 0o600))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
  }
}

/**
 * A second connection to a database file for the outbound dispatcher's
 * attempt records, at synchronous=NORMAL: a record lost with the page cache
 * only means the message goes again (at least once, same webhook-id), and
 * the HTTP thread does not wait for an fsync per batch of attempts.
 */
export function openDispatcherConnection (path: string, busyTimeoutMs: number): SQLite.Database {
  const sqlite = new SQLite(path, { fileMustExist: true })
  configureConnection(sqlite, { synchronous: 'NORMAL', busyTimeoutMs })
  return sqlite
}

export function configureConnection (sqlite: SQLite.Database, options: DatabaseOptions = {}): void {
  sqlite.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5000)}`)
  if (!options.readonly) sqlite.pragma('journal_mode = WAL')
  // FULL: an ack means the WAL frame is fsynced; NORMAL can lose the last commits on power loss.
  sqlite.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`)
  sqlite.pragma('foreign_keys = ON')
}
