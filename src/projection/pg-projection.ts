import type pg from 'pg'
import { EventType, unattributedStreamPrefix, type RecordedEvent } from '../orders/events.js'
import { anchorsOf, type OrderState } from '../orders/order-fold.js'
import { anchorsTo, dropDeliveriesSql, orderColumns, ordersProjection, type EndpointRow, type NewDelivery, type OrderRowState, type ProjectionStore, type ReportRow } from './projection-store.js'
import { OrderProjector, type ProjectorOptions } from './projector.js'

const reportType = EventType.UnattributedReportReceived
const pgField = (member: string): string => `(anchor.data::json ->> '${member}')`
const summaryColumns = 'order_id, state, status, paid_amount, refunded_amount, currency, anomalies, needs_review'

type Query = Pick<pg.PoolClient, 'query'>

/**
 * The order projection on PostgreSQL, in the append transaction as on
 * SQLite and by the same OrderProjector: before a batch is folded, project()
 * reads in a few statements everything the fold will ask for (the orders the
 * batch touches, the reports that join them, their last message versions,
 * the endpoints and the context another instance may have changed), the
 * projector runs on that in memory, and its writes go out in a few
 * statements after. A read the fold makes that was not loaded is a defect
 * and fails the batch (503), never a silent guess.
 */
export class PgProjection {
  readonly #store: PgProjectionStore
  readonly #projector: OrderProjector

  private constructor (store: PgProjectionStore, options: ProjectorOptions) {
    this.#store = store
    this.#projector = new OrderProjector(store, options)
  }

  static async open (db: Query, options: ProjectorOptions = {}): Promise<PgProjection> {
    const store = new PgProjectionStore()
    await store.loadShared(db)
    return new PgProjection(store, options)
  }

  /**
   * Reads what any instance may have changed since this one's last batch
   * (the context, the endpoints, the gateways with reports), under the head
   * lock and before the batch's events are written: as the SQLite projector
   * holds it in memory between batches.
   */
  async begin (client: Query): Promise<void> {
    await this.#store.loadShared(client)
    this.#projector.reload()
  }

  /** Projects the events a batch appended (after begin), on its transaction's connection. */
  async project (client: Query, events: readonly RecordedEvent[]): Promise<void> {
    if (events.length === 0) return
    await this.#store.loadFor(client, events, this.#projector.context.ordersRegistered)
    this.#projector.apply(events)
    await this.#store.flush(client)
  }
}

type Write =
  | { kind: 'message', message: Parameters<ProjectionStore['insertMessage']>[0], handle: number }
  | { kind: 'delivery', delivery: NewDelivery }
  | { kind: 'sql', sql: string, params: unknown[] }

class PgProjectionStore implements ProjectionStore {
  #checkpoint: { last_position: number, context: string } | undefined
  #endpoints: EndpointRow[] = []
  #gateways = new Set<string>()
  /** Orders loaded for this batch: a row, or null for an id with none. */
  #orders = new Map<string, OrderRowState | null>()
  #allOrders: Array<OrderRowState & { order_id: string }> | undefined
  #reports = new Map<string, ReportRow[]>()
  #allReports = false
  #anchored = new Map<string, string[]>()
  #versions = new Map<string, number | null>()
  #upserts = new Map<string, ReadonlyArray<string | number | null>>()
  #writes: Write[] = []

  /** What every batch starts from and any instance may have changed: the context, the endpoints, the gateways with reports. */
  async loadShared (db: Query): Promise<void> {
    const end = `${unattributedStreamPrefix.slice(0, -1)};`
    const { rows: [row] } = await db.query<{ checkpoint: { last_position: number, context: string } | null, endpoints: EndpointRow[], gateways: string[] }>(`SELECT
      (SELECT json_build_object('last_position', last_position, 'context', context) FROM projections WHERE name = $1) AS checkpoint,
      (SELECT coalesce(json_agg(json_build_object('id', id, 'events', events, 'enabled', enabled, 'created_position', created_position) ORDER BY id), '[]') FROM endpoints) AS endpoints,
      ARRAY(WITH RECURSIVE g (s) AS (
        (SELECT stream_id FROM events WHERE stream_id > $2 AND stream_id < $3 ORDER BY stream_id LIMIT 1)
        UNION ALL
        SELECT (SELECT stream_id FROM events WHERE stream_id > g.s AND stream_id < $3 ORDER BY stream_id LIMIT 1) FROM g WHERE g.s IS NOT NULL
      ) SELECT s FROM g WHERE s IS NOT NULL) AS gateways`, [ordersProjection, unattributedStreamPrefix, end])
    this.#checkpoint = row!.checkpoint ?? undefined
    this.#endpoints = row!.endpoints
    this.#gateways = new Set(row!.gateways.map(stream => stream.slice(unattributedStreamPrefix.length)))
  }

  /** Loads what folding `events` reads. */
  async loadFor (db: Query, events: readonly RecordedEvent[], ordersRegistered: boolean): Promise<void> {
    this.#orders.clear()
    this.#allOrders = undefined
    this.#reports.clear()
    this.#allReports = false
    this.#anchored.clear()
    this.#versions.clear()
    const ids = new Set<string>()
    const reportKeys: Array<[string, string]> = []
    const gateways = new Set(this.#gateways)
    let rederive = false
    for (const event of events) {
      if (event.type === 'EndpointChanged') continue
      if (event.type === reportType) {
        gateways.add(event.data.gateway)
        if (event.data.transactionId !== null) reportKeys.push([event.data.transactionId, event.data.gateway])
        continue
      }
      if (event.type === 'OrderPlaced' && !ordersRegistered) rederive = true
      ids.add(event.streamId)
    }
    if (reportKeys.length > 0) {
      const { rows } = await db.query<{ t: string, g: string, stream_id: string }>(`SELECT DISTINCT k.t, k.g, anchor.stream_id FROM unnest($1::text[], $2::text[]) AS k (t, g)
        JOIN events AS anchor ON ${anchorsTo('k.t', 'k.g', pgField)} ORDER BY anchor.stream_id`, [reportKeys.map(key => key[0]), reportKeys.map(key => key[1])])
      for (const [t, g] of reportKeys) this.#anchored.set(pairKey(t, g), [])
      for (const row of rows) {
        this.#anchored.get(pairKey(row.t, row.g))!.push(row.stream_id)
        ids.add(row.stream_id)
      }
    }
    const loaded = rederive
      ? (await db.query<OrderRowState & { order_id: string }>(`SELECT ${summaryColumns} FROM orders`)).rows
      : (await db.query<OrderRowState & { order_id: string }>(`SELECT ${summaryColumns} FROM orders WHERE order_id = ANY($1::text[])`, [[...ids]])).rows
    for (const id of ids) this.#orders.set(id, null)
    for (const row of loaded) this.#orders.set(row.order_id, row)
    if (rederive) this.#allOrders = loaded
    // The reports that may join the orders loaded: by the anchors of their facts and of the batch's events.
    if (gateways.size > 0) {
      if (rederive) {
        this.#allReports = true
        await this.#loadReports(db, 'TRUE', [])
      } else {
        const pairs = new Map<string, [string, string]>()
        const note = (transactionId: string | null | undefined, gateway: string): void => {
          if (typeof transactionId === 'string' && gateways.has(gateway)) pairs.set(pairKey(transactionId, gateway), [transactionId, gateway])
        }
        for (const row of loaded) for (const anchor of anchorsOf(Object.values((JSON.parse(row.state) as OrderState).facts))) note(anchor.transactionId, anchor.gateway)
        for (const event of events) {
          const data = event.data as { transactionId?: string | null, gateway?: string }
          if (typeof data.gateway === 'string') note(data.transactionId, data.gateway)
        }
        if (pairs.size > 0) {
          const keys = [...pairs.values()]
          for (const [t, g] of keys) this.#reports.set(pairKey(t, g), [])
          await this.#loadReports(db, '(data::json ->> \'transactionId\', data::json ->> \'gateway\') IN (SELECT * FROM unnest($2::text[], $3::text[]))', [keys.map(key => key[0]), keys.map(key => key[1])])
        }
      }
    }
    const orderIds = [...this.#orders.keys()]
    const versions = rederive
      ? await db.query<{ order_id: string, v: number }>('SELECT order_id, max(version) AS v FROM outbox GROUP BY order_id')
      : await db.query<{ order_id: string, v: number }>('SELECT order_id, max(version) AS v FROM outbox WHERE order_id = ANY($1::text[]) GROUP BY order_id', [orderIds])
    for (const id of orderIds) this.#versions.set(id, null)
    for (const row of versions.rows) this.#versions.set(row.order_id, row.v)
  }

  async #loadReports (db: Query, where: string, params: unknown[]): Promise<void> {
    const { rows } = await db.query<ReportRow & { t: string, g: string }>(`SELECT data::json ->> 'transactionId' AS t, data::json ->> 'gateway' AS g,
      position, type, schema_version, data, metadata, recorded_at FROM events WHERE type = $1 AND ${where} ORDER BY position`, [reportType, ...params])
    for (const { t, g, ...row } of rows) {
      const key = pairKey(t, g)
      const list = this.#reports.get(key)
      if (list !== undefined) list.push(row)
      else this.#reports.set(key, [row])
    }
  }

  /** Writes what the fold wrote, in the order it wrote it. */
  async flush (db: Query): Promise<void> {
    const writes = this.#writes
    this.#writes = []
    for (let i = 0; i < writes.length;) {
      const write = writes[i]!
      if (write.kind === 'sql') {
        await db.query(write.sql, write.params)
        i++
        continue
      }
      let end = i
      while (end < writes.length && writes[end]!.kind !== 'sql') end++
      await writeOutbox(db, writes.slice(i, end) as Array<Exclude<Write, { kind: 'sql' }>>)
      i = end
    }
    const upserts = [...this.#upserts.values()]
    this.#upserts.clear()
    if (upserts.length > 0) {
      const columns = orderColumns.map((column, i) => `$${i + 1}::${orderColumnTypes[column]}[]`)
      await db.query(`INSERT INTO orders (${orderColumns.join(', ')}) SELECT * FROM unnest(${columns.join(', ')})
        ON CONFLICT (order_id) DO UPDATE SET ${orderColumns.slice(1).map(column => `${column} = excluded.${column}`).join(', ')}`,
      orderColumns.map((_, i) => upserts.map(values => values[i])))
    }
    if (this.#checkpoint !== undefined) {
      await db.query(`INSERT INTO projections (name, last_position, context) VALUES ($1, $2, $3)
        ON CONFLICT (name) DO UPDATE SET last_position = excluded.last_position, context = excluded.context`, [ordersProjection, this.#checkpoint.last_position, this.#checkpoint.context])
    }
  }

  loadOrder (orderId: string): OrderRowState | undefined {
    const row = this.#orders.get(orderId)
    if (row === undefined) throw new Error(`the projection read order ${JSON.stringify(orderId)}, which it did not load`)
    return row ?? undefined
  }

  allOrders (): OrderRowState[] {
    if (this.#allOrders === undefined) throw new Error('the projection read every order without loading them')
    // As the table stands on SQLite at this point of the batch: with the rows this batch wrote.
    const rows = new Map(this.#allOrders.map(row => [row.order_id, row]))
    for (const [orderId, values] of this.#upserts) rows.set(orderId, rowOf(values))
    return [...rows.values()].sort((a, b) => Buffer.compare(Buffer.from(a.order_id), Buffer.from(b.order_id)))
  }

  upsertOrder (values: ReadonlyArray<string | number | null>): void {
    const orderId = values[0] as string
    // One row per order per statement (ON CONFLICT cannot touch a row twice): the last write wins, as it would on SQLite.
    this.#upserts.delete(orderId)
    this.#upserts.set(orderId, values)
  }

  readCheckpoint (): { last_position: number, context: string } | undefined {
    return this.#checkpoint
  }

  writeCheckpoint (position: number, context: string): void {
    this.#checkpoint = { last_position: position, context }
  }

  reportsByTransaction (transactionId: string, gateway: string): ReportRow[] {
    const key = pairKey(transactionId, gateway)
    const rows = this.#reports.get(key)
    if (rows !== undefined) return rows
    if (this.#allReports) return []
    throw new Error(`the projection read the reports of ${key}, which it did not load`)
  }

  streamsAnchoredTo (transactionId: string, gateway: string): string[] {
    const streams = this.#anchored.get(pairKey(transactionId, gateway))
    if (streams === undefined) throw new Error(`the projection read the orders anchored to ${pairKey(transactionId, gateway)}, which it did not load`)
    return streams
  }

  reportGateways (): Set<string> {
    return new Set(this.#gateways)
  }

  endpoints (): EndpointRow[] {
    return this.#endpoints
  }

  insertEndpoint (row: { id: string, url: string, events: string | null, description: string | null, enabled: number, createdPosition: number, at: string }): void {
    this.#sql(`INSERT INTO endpoints (id, url, events, description, enabled, disabled_reason, created_position, created_at, updated_at)
      VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $7)`, [row.id, row.url, row.events, row.description, row.enabled, row.createdPosition, row.at])
  }

  updateEndpoint (row: { id: string, url: string, events: string | null, description: string | null, enabled: number, at: string }): void {
    this.#sql(`UPDATE endpoints SET url = $1, events = $2, description = $3, enabled = $4,
      disabled_reason = CASE WHEN $4 = 1 THEN NULL ELSE disabled_reason END, updated_at = $5 WHERE id = $6`, [row.url, row.events, row.description, row.enabled, row.at, row.id])
  }

  disableEndpoint (id: string, reason: string | null, at: string): void {
    this.#sql('UPDATE endpoints SET enabled = 0, disabled_reason = $1, updated_at = $2 WHERE id = $3', [reason, at, id])
  }

  touchEndpoint (id: string, at: string): void {
    this.#sql('UPDATE endpoints SET updated_at = $1 WHERE id = $2', [at, id])
  }

  deleteEndpoint (id: string, at: string): void {
    this.#sql('DELETE FROM endpoints WHERE id = $1', [id])
    this.#sql(dropDeliveriesSql('$1', '$2'), [at, id])
  }

  lastMessageVersion (orderId: string): number | null {
    const version = this.#versions.get(orderId)
    if (version === undefined) throw new Error(`the projection read the last message version of order ${JSON.stringify(orderId)}, which it did not load`)
    return version
  }

  insertMessage (message: Parameters<ProjectionStore['insertMessage']>[0]): number {
    const handle = this.#writes.length
    this.#writes.push({ kind: 'message', message, handle })
    return handle
  }

  insertDelivery (delivery: NewDelivery): void {
    this.#writes.push({ kind: 'delivery', delivery })
  }

  #sql (sql: string, params: unknown[]): void {
    this.#writes.push({ kind: 'sql', sql, params })
  }
}

/** Writes a run of messages and their deliveries: the messages first (each takes the next seq, in order), then the deliveries with those seqs. */
async function writeOutbox (db: Query, writes: Array<Exclude<Write, { kind: 'sql' }>>): Promise<void> {
  const messages = writes.flatMap(write => write.kind === 'message' ? [write] : [])
  if (messages.length === 0) return
  const { rows } = await db.query<{ seq: number, message_id: string }>(`INSERT INTO outbox (message_id, type, order_id, position, version, payload, created_at)
    SELECT m, t, o, p, v, pl, c FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[]) WITH ORDINALITY AS u (m, t, o, p, v, pl, c, n)
    ORDER BY n RETURNING seq, message_id`,
  [messages.map(w => w.message.messageId), messages.map(w => w.message.type), messages.map(w => w.message.orderId), messages.map(w => w.message.position),
    messages.map(w => w.message.version), messages.map(w => w.message.payload), messages.map(w => w.message.createdAt)])
  const seqByMessage = new Map(rows.map(row => [row.message_id, row.seq]))
  const seqOf = new Map(messages.map(w => [w.handle, seqByMessage.get(w.message.messageId)!]))
  const deliveries = writes.flatMap(write => write.kind === 'delivery' ? [write.delivery] : [])
  if (deliveries.length === 0) return
  await db.query(`INSERT INTO outbound_deliveries (message_seq, endpoint_id, order_id, state, attempts, next_attempt_at, created_at, updated_at)
    SELECT s, e, o, 'pending', 0, d, c, c FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[]) WITH ORDINALITY AS u (s, e, o, d, c, n) ORDER BY n`,
  [deliveries.map(d => seqOf.get(d.message)!), deliveries.map(d => d.endpointId), deliveries.map(d => d.orderId), deliveries.map(d => d.due), deliveries.map(d => d.createdAt)])
}

const orderColumnTypes: Record<typeof orderColumns[number], string> = {
  order_id: 'text',
  status: 'text',
  needs_review: 'int',
  anomalies: 'text',
  expected_amount: 'bigint',
  expected_currency: 'text',
  paid_amount: 'bigint',
  refunded_amount: 'bigint',
  currency: 'text',
  gateway: 'text',
  gateway_trade_no: 'text',
  duplicate_count: 'bigint',
  version: 'bigint',
  last_position: 'bigint',
  first_seen_at: 'text',
  updated_at: 'text',
  state: 'text'
}

function rowOf (values: ReadonlyArray<string | number | null>): OrderRowState & { order_id: string } {
  const value = (column: typeof orderColumns[number]): string | number | null => values[orderColumns.indexOf(column)]!
  return {
    order_id: value('order_id') as string,
    state: value('state') as string,
    status: value('status') as string,
    paid_amount: value('paid_amount') as number,
    refunded_amount: value('refunded_amount') as number,
    currency: value('currency') as string | null,
    anomalies: value('anomalies') as string,
    needs_review: value('needs_review') as number
  }
}

function pairKey (transactionId: string, gateway: string): string {
  return `${gateway}|${transactionId}`
}
