import type { Kysely } from 'kysely'

/**
 * Checkpoints of the hash chain signed with the service's Ed25519 key
 * (event-log/signed-checkpoints.ts), so whoever can write the database but
 * not the key cannot rewrite history unseen. One row per block of positions:
 * each commit replaces its block's row with its own tail, so the table keeps
 * the last signed position of every block and the latest one. Frozen once
 * landed.
 */
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.createTable('signed_checkpoints')
    .addColumn('block', 'integer', col => col.primaryKey())
    .addColumn('position', 'integer', col => col.notNull().unique())
    .addColumn('hash', 'text', col => col.notNull())
    .addColumn('public_key', 'text', col => col.notNull())
    .addColumn('signature', 'text', col => col.notNull())
    .addColumn('signed_at', 'text', col => col.notNull())
    .execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('signed_checkpoints').execute()
}
