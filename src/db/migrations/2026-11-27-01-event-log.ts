import { sql, type Kysely } from 'kysely'

/** The append-only event log (DESIGN §2). Frozen once landed: changes go in a new migration. */
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.createTable('events')
    .addColumn('position', 'integer', col => col.primaryKey())
    .addColumn('stream_id', 'text', col => col.notNull())
    .addColumn('stream_version', 'integer', col => col.notNull())
    .addColumn('type', 'text', col => col.notNull())
    .addColumn('schema_version', 'integer', col => col.notNull())
    .addColumn('data', 'text', col => col.notNull())
    .addColumn('metadata', 'text', col => col.notNull())
    .addColumn('recorded_at', 'text', col => col.notNull())
    .addColumn('hash', 'text', col => col.notNull())
    .addUniqueConstraint('events_stream_version_unique', ['stream_id', 'stream_version'])
    .execute()
  await db.schema.createIndex('events_type_position').on('events').columns(['type', 'position']).execute()
  await db.schema.createIndex('events_recorded_at').on('events').column('recorded_at').execute()
  await sql`CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are immutable: UPDATE refused'); END`.execute(db)
  await sql`CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are immutable: DELETE refused'); END`.execute(db)
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('events').execute()
}
