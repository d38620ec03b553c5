import type { Kysely } from 'kysely'

/**
 * The last log position whose hash chain was verified, so a start checks only
 * what was appended since (issue 5). Frozen once landed.
 */
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.createTable('chain_checkpoints')
    .addColumn('name', 'text', col => col.primaryKey())
    .addColumn('position', 'integer', col => col.notNull())
    .addColumn('hash', 'text', col => col.notNull())
    .addColumn('verified_at', 'text', col => col.notNull())
    .execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('chain_checkpoints').execute()
}
