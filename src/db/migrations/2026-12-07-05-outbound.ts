import { sql, type Kysely } from 'kysely'

/**
 * Outbound delivery to the merchant's own services (issue 11). Frozen once landed.
 *
 * endpoints: the projection of the log's EndpointChanged events (the writer
 * keeps it in the append transaction, projection/endpoints-projection.ts).
 * endpoint_secrets: each endpoint's signing secrets, sealed (AES-256-GCM)
 * under a key the database does not hold; never in the log or an export.
 * outbox: every order.* message, written in the transaction of the event
 * that caused it; `seq` is its position in the feed.
 * outbound_deliveries: one row per message and endpoint it is sent to,
 * written with the message; the dispatcher moves its state.
 * outbound_attempts: every attempt. jobs: long admin operations (recover).
 */
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.createTable('endpoints')
    .addColumn('id', 'text', col => col.primaryKey())
    .addColumn('url', 'text', col => col.notNull())
    .addColumn('events', 'text')
    .addColumn('description', 'text')
    .addColumn('enabled', 'integer', col => col.notNull())
    .addColumn('disabled_reason', 'text')
    .addColumn('created_position', 'integer', col => col.notNull())
    .addColumn('created_at', 'text', col => col.notNull())
    .addColumn('updated_at', 'text', col => col.notNull())
    .execute()
  await db.schema.createTable('endpoint_secrets')
    .addColumn('id', 'integer', col => col.primaryKey())
    .addColumn('endpoint_id', 'text', col => col.notNull())
    .addColumn('sealed', 'text', col => col.notNull())
    .addColumn('created_at', 'text', col => col.notNull())
    .addColumn('expires_at', 'text')
    .execute()
  await sql`CREATE INDEX endpoint_secrets_by_endpoint ON endpoint_secrets (endpoint_id, id)`.execute(db)
  await db.schema.createTable('outbox')
    .addColumn('seq', 'integer', col => col.primaryKey())
    .addColumn('message_id', 'text', col => col.notNull().unique())
    .addColumn('type', 'text', col => col.notNull())
    .addColumn('order_id', 'text', col => col.notNull())
    .addColumn('position', 'integer', col => col.notNull())
    .addColumn('version', 'integer', col => col.notNull())
    .addColumn('payload', 'text', col => col.notNull())
    .addColumn('created_at', 'text', col => col.notNull())
    .execute()
  // Each order's messages in version order: the writer numbers the next one from the last.
  await sql`CREATE INDEX outbox_by_order ON outbox (order_id, version)`.execute(db)
  await db.schema.createTable('outbound_deliveries')
    .addColumn('id', 'integer', col => col.primaryKey())
    .addColumn('message_seq', 'integer', col => col.notNull())
    .addColumn('endpoint_id', 'text', col => col.notNull())
    .addColumn('order_id', 'text', col => col.notNull())
    .addColumn('state', 'text', col => col.notNull())
    .addColumn('attempts', 'integer', col => col.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'integer', col => col.notNull())
    .addColumn('created_at', 'text', col => col.notNull())
    .addColumn('updated_at', 'text', col => col.notNull())
    .addColumn('last_status', 'integer')
    .addColumn('last_error', 'text')
    .execute()
  await sql`CREATE UNIQUE INDEX outbound_deliveries_once ON outbound_deliveries (message_seq, endpoint_id)`.execute(db)
  // The dispatcher's two questions, over active deliveries only: which are due, and is an earlier one of the same order still active (FIFO).
  await sql`CREATE INDEX outbound_deliveries_due ON outbound_deliveries (next_attempt_at) WHERE state IN ('pending', 'failed')`.execute(db)
  await sql`CREATE INDEX outbound_deliveries_fifo ON outbound_deliveries (endpoint_id, order_id, message_seq) WHERE state IN ('pending', 'failed')`.execute(db)
  await sql`CREATE INDEX outbound_deliveries_by_endpoint ON outbound_deliveries (endpoint_id, message_seq)`.execute(db)
  await db.schema.createTable('outbound_attempts')
    .addColumn('id', 'integer', col => col.primaryKey())
    .addColumn('delivery_id', 'integer', col => col.notNull())
    .addColumn('endpoint_id', 'text', col => col.notNull())
    .addColumn('message_seq', 'integer', col => col.notNull())
    .addColumn('attempted_at', 'text', col => col.notNull())
    .addColumn('duration_ms', 'integer', col => col.notNull())
    .addColumn('request_headers', 'text', col => col.notNull())
    .addColumn('status', 'integer')
    .addColumn('response_body', 'text')
    .addColumn('error', 'text')
    .execute()
  await sql`CREATE INDEX outbound_attempts_by_endpoint ON outbound_attempts (endpoint_id, id)`.execute(db)
  await sql`CREATE INDEX outbound_attempts_by_delivery ON outbound_attempts (delivery_id, id)`.execute(db)
  await db.schema.createTable('jobs')
    .addColumn('id', 'text', col => col.primaryKey())
    .addColumn('kind', 'text', col => col.notNull())
    .addColumn('state', 'text', col => col.notNull())
    .addColumn('params', 'text', col => col.notNull())
    .addColumn('total', 'integer', col => col.notNull())
    .addColumn('done', 'integer', col => col.notNull())
    .addColumn('error', 'text')
    .addColumn('created_at', 'text', col => col.notNull())
    .addColumn('finished_at', 'text')
    .execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  for (const table of ['jobs', 'outbound_attempts', 'outbound_deliveries', 'outbox', 'endpoint_secrets', 'endpoints']) {
    await db.schema.dropTable(table).execute()
  }
}
