import { sql, type Kysely } from 'kysely'

/**
 * REPLACE (and INSERT OR REPLACE) deletes the conflicting row without firing
 * DELETE triggers (SQLite fires them only with recursive_triggers on), so it
 * could overwrite an event past events_no_update/events_no_delete. Refuse any
 * insert that would take an existing position or stream version. Frozen once
 * landed.
 */
export async function up (db: Kysely<any>): Promise<void> {
  await sql`CREATE TRIGGER events_no_replace BEFORE INSERT ON events
    WHEN EXISTS (SELECT 1 FROM events WHERE position = NEW.position)
      OR EXISTS (SELECT 1 FROM events WHERE stream_id = NEW.stream_id AND stream_version = NEW.stream_version)
    BEGIN SELECT RAISE(ABORT, 'events are immutable: REPLACE refused'); END`.execute(db)
}

export async function down (db: Kysely<any>): Promise<void> {
  await sql`DROP TRIGGER events_no_replace`.execute(db)
}
