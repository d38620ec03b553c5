import { sql, type Kysely } from 'kysely'

/**
 * Bounded storage of repeats (issue 10). Frozen once landed.
 *
 * raw_bodies: every raw request body once, keyed by the sha256 of its bytes.
 * Events appended from now on keep `raw.bodySha256` and `raw.bodySize` in
 * their metadata instead of the body (event-log/raw-bodies.ts), so the chain
 * covers the body through its hash; older events keep theirs inline. Rows are
 * immutable like events: a body already stored is never replaced (RAISE
 * IGNORE makes a second insert of the same hash a no-op, REPLACE included).
 *
 * deliveries: per order and delivery id (gateway + deliveryId, the fold's
 * delivery key), how many events the log holds (`stored`: filled here from
 * the events already stored, then counted by the event log and import as
 * they append) and how many repeats were acked but not appended because the
 * cap was reached (`unstored`, counted by the event log).
 */
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.createTable('raw_bodies')
    .addColumn('sha256', 'text', col => col.primaryKey())
    .addColumn('encoding', 'text', col => col.notNull())
    .addColumn('body', 'text', col => col.notNull())
    .execute()
  await sql`CREATE TRIGGER raw_bodies_no_update BEFORE UPDATE ON raw_bodies
    BEGIN SELECT RAISE(ABORT, 'raw bodies are immutable: UPDATE refused'); END`.execute(db)
  await sql`CREATE TRIGGER raw_bodies_no_delete BEFORE DELETE ON raw_bodies
    BEGIN SELECT RAISE(ABORT, 'raw bodies are immutable: DELETE refused'); END`.execute(db)
  await sql`CREATE TRIGGER raw_bodies_once BEFORE INSERT ON raw_bodies
    WHEN EXISTS (SELECT 1 FROM raw_bodies WHERE sha256 = NEW.sha256)
    BEGIN SELECT RAISE(IGNORE); END`.execute(db)

  await sql`CREATE TABLE deliveries (
    stream_id TEXT NOT NULL,
    gateway TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    stored INTEGER NOT NULL,
    unstored INTEGER NOT NULL DEFAULT 0,
    last_unstored_at TEXT,
    PRIMARY KEY (stream_id, gateway, delivery_id)
  ) WITHOUT ROWID`.execute(db)
  // json_valid first: a row written behind the service's back may hold anything, and must not make the migration fail.
  await sql`INSERT INTO deliveries (stream_id, gateway, delivery_id, stored)
    SELECT stream_id, gateway, delivery_id, count(*) FROM (
      SELECT stream_id,
        CASE WHEN json_type(metadata, '$.gateway') = 'text' THEN json_extract(metadata, '$.gateway') ELSE '' END AS gateway,
        CASE WHEN json_type(metadata, '$.deliveryId') = 'text' THEN json_extract(metadata, '$.deliveryId') END AS delivery_id
      FROM events WHERE json_valid(metadata)
    ) WHERE delivery_id IS NOT NULL GROUP BY stream_id, gateway, delivery_id`.execute(db)
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('deliveries').execute()
  await db.schema.dropTable('raw_bodies').execute()
}
