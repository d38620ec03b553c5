import type pg from 'pg'
import { StoreUnavailableError } from '../errors.js'
import type { RecordedEvent } from '../orders/events.js'
import type { CheckpointSigner } from './checkpoint-signature.js'
import { deliveryKey } from './deliveries.js'
import { QueuedEventWriter, type PreparedEvent, type Tail, type WrittenBatch } from './event-log.js'
import type { RawBody } from './raw-bodies.js'
import { sequenceAppends, type EventRow, type SequenceStore } from './sequence.js'
import { signedCheckpointValues } from './signed-checkpoints.js'

export interface PgEventLogOptions {
  /** Most events written in one transaction. */
  maxBatchSize?: number
  clock?: () => Date
  /** Signs the tail of every batch in its transaction; without it the log is unsigned. */
  signer?: CheckpointSigner
  /** Projects every batch in its transaction (projection/pg-projection.ts); without it only the log is written. */
  projection?: {
    /** Under the head lock, before the batch's events are written. */
    begin: (client: pg.PoolClient) => Promise<void>
    /** After they are written, in the same transaction. */
    project: (client: pg.PoolClient, events: readonly RecordedEvent[]) => Promise<void>
  }
}

/** The head row: the chain's tail and the time of its last event. */
interface Head { position: number, hash: string, recorded_at: string | null }

/**
 * The event log on PostgreSQL, shared by any number of instances. Each
 * instance group-commits its own queue (QueuedEventWriter); every batch is
 * one transaction that starts by locking the single `log_head` row
 * (SELECT … FOR UPDATE) and ends by moving it (a compare-and-set), so:
 * - appends from all instances are serialized, and positions are given in
 *   commit order: a transaction gets its positions only after the previous
 *   holder of the lock committed and became visible, so a reader following
 *   the log by position sees 1..k and never a later position before an
 *   earlier one (no high-water mark, no gap detection);
 * - positions are dense: they come from the head row, not a sequence, and a
 *   rolled-back batch never moved the head, so the next batch reuses them;
 * - one hash chain runs across instances, and delivery dedup is exact: the
 *   deliveries rows are read and counted under the same lock.
 * Nothing resolves before COMMIT has returned. Any failure rolls the batch
 * back and rejects its callers with StoreUnavailableError (503).
 */
export class PgEventLog extends QueuedEventWriter {
  readonly #pool: pg.Pool
  readonly #clock: () => Date
  readonly #signer: CheckpointSigner | undefined
  readonly #projection: PgEventLogOptions['projection']
  #tail: Tail
  #batches = 0

  private constructor (pool: pg.Pool, tail: Tail, options: PgEventLogOptions) {
    super(options.maxBatchSize)
    this.#pool = pool
    this.#clock = options.clock ?? (() => new Date())
    this.#signer = options.signer
    this.#projection = options.projection
    this.#tail = tail
  }

  /** Opens the log on a migrated database; `pool` is its own (batches run one at a time on one connection). */
  static async open (pool: pg.Pool, options: PgEventLogOptions = {}): Promise<PgEventLog> {
    return new PgEventLog(pool, await readHead(pool), options)
  }

  /** The last tail this instance knows: its own last commit, or the head it read (refreshTail). */
  get tail (): Tail {
    return { ...this.#tail }
  }

  /** Number of transactions committed or attempted. */
  get batches (): number {
    return this.#batches
  }

  /** Reads the head as every instance's commits left it. */
  async refreshTail (): Promise<Tail> {
    const head = await readHead(this.#pool)
    if (head.position > this.#tail.position) this.#tail = head
    return this.tail
  }

  /** Writes what is queued, then refuses new appends. */
  async close (): Promise<void> {
    this.flush()
    this.closed = true
    await this.drained()
  }

  /**
   * A connection with a transaction begun. A pooled connection the server
   * closed while it sat idle (a restart, pg_terminate_backend) fails at
   * BEGIN, before anything is written: it is dropped and a new one tried once.
   */
  async #begin (): Promise<pg.PoolClient> {
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient
      try {
        client = await this.#pool.connect()
      } catch (cause) {
        throw new StoreUnavailableError('the event store could not commit; retry later', { cause })
      }
      try {
        await client.query('BEGIN')
        return client
      } catch (cause) {
        client.release(cause as Error)
        if (attempt === 2) throw new StoreUnavailableError('the event store could not commit; retry later', { cause })
      }
    }
  }

  protected async writeBatch (appends: ReadonlyArray<readonly PreparedEvent[]>): Promise<WrittenBatch> {
    this.#batches++
    const started = performance.now()
    const client = await this.#begin()
    try {
      const { rows: [head] } = await client.query<Head>('SELECT position, hash, recorded_at FROM log_head WHERE id = 1 FOR UPDATE')
      if (head === undefined) throw new Error('log_head has no row: the database was not migrated by paynotify')
      // The time only rises with position, whatever the instances' clocks say.
      const now = this.#clock().toISOString()
      const recordedAt = head.recorded_at !== null && head.recorded_at > now ? head.recorded_at : now
      await this.#projection?.begin(client)
      const batch = new BatchWriter(appends)
      await batch.read(client)
      const sequenced = sequenceAppends(appends, { position: head.position, hash: head.hash }, recordedAt, batch)
      await batch.write(client, recordedAt)
      await this.#projection?.project(client, sequenced.all)
      if (sequenced.tail.position > head.position) {
        if (this.#signer !== undefined) {
          await client.query(`INSERT INTO signed_checkpoints (block, position, hash, public_key, signature, signed_at) VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (block) DO UPDATE SET position = excluded.position, hash = excluded.hash, public_key = excluded.public_key,
              signature = excluded.signature, signed_at = excluded.signed_at`, signedCheckpointValues(this.#signer, sequenced.tail, recordedAt))
        }
        const moved = await client.query('UPDATE log_head SET position = $1, hash = $2, recorded_at = $3 WHERE id = 1 AND position = $4',
          [sequenced.tail.position, sequenced.tail.hash, recordedAt, head.position])
        if (moved.rowCount !== 1) throw new Error('log_head moved under its lock')
      }
      await client.query('COMMIT')
      client.release()
      if (sequenced.tail.position > this.#tail.position) this.#tail = sequenced.tail
      const events = appends.reduce((sum, events) => sum + events.length, 0)
      return {
        appends: sequenced.perCaller.map((events, caller) => ({ events, repeats: sequenced.repeats[caller]! })),
        report: { events, seconds: (performance.now() - started) / 1000 }
      }
    } catch (cause) {
      // A connection that failed mid-transaction is not reused: release(error) closes it.
      await client.query('ROLLBACK').catch(() => {})
      client.release(cause as Error)
      throw new StoreUnavailableError('the event store could not commit; retry later', { cause })
    }
  }
}

async function readHead (pool: pg.Pool): Promise<Tail> {
  const { rows: [head] } = await pool.query<Head>('SELECT position, hash FROM log_head WHERE id = 1')
  if (head === undefined) throw new Error('log_head has no row: the database was not migrated by paynotify')
  return { position: head.position, hash: head.hash }
}

/**
 * One batch's reads and writes on PostgreSQL: the stream versions and
 * delivery counts it needs are read in two statements under the head lock,
 * sequenceAppends runs against them in memory, and its rows are written in
 * a few statements (unnest over arrays), whatever the batch's size.
 */
class BatchWriter implements SequenceStore {
  readonly #appends: ReadonlyArray<readonly PreparedEvent[]>
  readonly #versions = new Map<string, number>()
  /** Per delivery key: events stored, before this batch and in it. */
  readonly #counts = new Map<string, number>()
  /** Per delivery key: [stream, gateway, delivery id, stored in this batch, unstored in this batch]. */
  readonly #deliveries = new Map<string, [string, string, string, number, number]>()
  readonly #rows: EventRow[] = []
  readonly #bodies = new Map<string, RawBody>()

  constructor (appends: ReadonlyArray<readonly PreparedEvent[]>) {
    this.#appends = appends
  }

  async read (client: pg.PoolClient): Promise<void> {
    const streams = new Set<string>()
    const keys: [string[], string[], string[]] = [[], [], []]
    for (const events of this.#appends) {
      for (const event of events) {
        streams.add(event.streamId)
        const key = deliveryKey(event.metadata)
        if (key === undefined) continue
        const id = this.#keyOf(event.streamId, key.gateway, key.deliveryId)
        if (this.#deliveries.has(id)) continue
        this.#deliveries.set(id, [event.streamId, key.gateway, key.deliveryId, 0, 0])
        keys[0].push(event.streamId)
        keys[1].push(key.gateway)
        keys[2].push(key.deliveryId)
      }
    }
    const versions = await client.query<{ stream_id: string, v: number }>(
      'SELECT stream_id, max(stream_version) AS v FROM events WHERE stream_id = ANY($1::text[]) GROUP BY stream_id', [[...streams]])
    for (const row of versions.rows) this.#versions.set(row.stream_id, row.v)
    if (keys[0].length === 0) return
    const counts = await client.query<{ stream_id: string, gateway: string, delivery_id: string, stored: number }>(
      `SELECT d.stream_id, d.gateway, d.delivery_id, d.stored FROM deliveries d
        JOIN unnest($1::text[], $2::text[], $3::text[]) AS k (stream_id, gateway, delivery_id)
          ON d.stream_id = k.stream_id AND d.gateway = k.gateway AND d.delivery_id = k.delivery_id`, keys)
    for (const row of counts.rows) this.#counts.set(this.#keyOf(row.stream_id, row.gateway, row.delivery_id), row.stored)
  }

  storedCount (event: PreparedEvent): number {
    const id = this.#eventKey(event)
    return id === undefined ? 0 : this.#counts.get(id) ?? 0
  }

  stored (event: PreparedEvent): void {
    const id = this.#eventKey(event)
    if (id === undefined) return
    this.#counts.set(id, (this.#counts.get(id) ?? 0) + 1)
    this.#deliveries.get(id)![3]++
  }

  unstored (event: PreparedEvent): void {
    const id = this.#eventKey(event)
    if (id !== undefined) this.#deliveries.get(id)![4]++
  }

  streamVersion (streamId: string): number {
    return this.#versions.get(streamId) ?? 0
  }

  insert (row: EventRow, body: RawBody | undefined): void {
    this.#rows.push(row)
    if (body !== undefined) this.#bodies.set(body.sha256, body)
  }

  async write (client: pg.PoolClient, recordedAt: string): Promise<void> {
    if (this.#bodies.size > 0) {
      const bodies = [...this.#bodies.values()]
      // bytea: the body's text as the bytes SQLite stores it as (UTF-8, or base64 text for a binary body).
      await client.query(`INSERT INTO raw_bodies (sha256, encoding, body)
        SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[]) ON CONFLICT (sha256) DO NOTHING`,
      [bodies.map(body => body.sha256), bodies.map(body => body.encoding), bodies.map(body => Buffer.from(body.text, 'utf8'))])
    }
    if (this.#rows.length > 0) {
      const rows = this.#rows
      await client.query(`INSERT INTO events (position, stream_id, stream_version, type, schema_version, data, metadata, recorded_at, hash)
        SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::int[], $6::text[], $7::text[], $8::text[], $9::text[])`,
      [rows.map(r => r.position), rows.map(r => r.stream_id), rows.map(r => r.stream_version), rows.map(r => r.type), rows.map(r => r.schema_version),
        rows.map(r => r.data), rows.map(r => r.metadata), rows.map(r => r.recorded_at), rows.map(r => r.hash)])
    }
    const stored = [...this.#deliveries.values()].filter(d => d[3] > 0)
    if (stored.length > 0) {
      await client.query(`INSERT INTO deliveries (stream_id, gateway, delivery_id, stored)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
        ON CONFLICT (stream_id, gateway, delivery_id) DO UPDATE SET stored = deliveries.stored + excluded.stored`,
      [stored.map(d => d[0]), stored.map(d => d[1]), stored.map(d => d[2]), stored.map(d => d[3])])
    }
    const unstored = [...this.#deliveries.values()].filter(d => d[4] > 0)
    if (unstored.length > 0) {
      await client.query(`UPDATE deliveries d SET unstored = d.unstored + k.n, last_unstored_at = $5
        FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS k (stream_id, gateway, delivery_id, n)
        WHERE d.stream_id = k.stream_id AND d.gateway = k.gateway AND d.delivery_id = k.delivery_id`,
      [unstored.map(d => d[0]), unstored.map(d => d[1]), unstored.map(d => d[2]), unstored.map(d => d[4]), recordedAt])
    }
  }

  #eventKey (event: PreparedEvent): string | undefined {
    const key = deliveryKey(event.metadata)
    return key === undefined ? undefined : this.#keyOf(event.streamId, key.gateway, key.deliveryId)
  }

  #keyOf (streamId: string, gateway: string, deliveryId: string): string {
    return JSON.stringify([streamId, gateway, deliveryId])
  }
}
