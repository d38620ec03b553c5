import type { Kysely } from 'kysely'

/** The order projection and projection checkpoints (DESIGN §4). Rebuildable from the log at any time. */
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.createTable('orders')
    .addColumn('order_id', 'text', col => col.primaryKey())
    .addColumn('status', 'text', col => col.notNull())
    .addColumn('needs_review', 'integer', col => col.notNull())
    .addColumn('anomalies', 'text', col => col.notNull())
    .addColumn('expected_amount', 'integer')
    .addColumn('expected_currency', 'text')
    .addColumn('paid_amount', 'integer', col => col.notNull())
    .addColumn('refunded_amount', 'integer', col => col.notNull())
    .addColumn('currency', 'text')
    .addColumn('gateway', 'text')
    .addColumn('gateway_trade_no', 'text')
    .addColumn('duplicate_count', 'integer', col => col.notNull())
    .addColumn('version', 'integer', col => col.notNull())
    .addColumn('last_position', 'integer', col => col.notNull())
    .addColumn('first_seen_at', 'text')
    .addColumn('updated_at', 'text')
    .addColumn('state', 'text', col => col.notNull())
    .execute()
  await db.schema.createIndex('orders_status').on('orders').columns(['status', 'order_id']).execute()
  await db.schema.createIndex('orders_gateway').on('orders').columns(['gateway', 'order_id']).execute()
  await db.schema.createTable('projections')
    .addColumn('name', 'text', col => col.primaryKey())
    .addColumn('last_position', 'integer', col => col.notNull().defaultTo(0))
    .addColumn('context', 'text', col => col.notNull())
    .execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('projections').execute()
  await db.schema.dropTable('orders').execute()
}
