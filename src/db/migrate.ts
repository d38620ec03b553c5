import { Migrator, type Kysely, type Migration, type MigrationResultSet } from 'kysely'
import * as eventLog from './migrations/2026-11-27-01-event-log.js'
import * as orders from './migrations/2026-11-27-02-orders.js'
import * as chainCheckpoints from './migrations/2026-11-27-03-chain-checkpoints.js'
import * as eventsNoReplace from './migrations/2026-11-27-04-events-no-replace.js'
import * as rawBodiesAndDeliveries from './migrations/2026-12-07-01-raw-bodies-and-deliveries.js'
import * as eventsByTransaction from './migrations/2026-12-07-02-events-by-transaction.js'
import * as signedCheckpoints from './migrations/2026-12-07-03-signed-checkpoints.js'
import * as ordersNeedsReview from './migrations/2026-12-07-04-orders-needs-review.js'
import * as outbound from './migrations/2026-12-07-05-outbound.js'
import * as pgSchema from './pg/migrations/2026-12-08-01-schema.js'

// Listed here rather than read from a folder, so the built package needs no file scanning.
const sqliteMigrations: Record<string, Migration> = {
  '2026-11-27-01-event-log': eventLog,
  '2026-11-27-02-orders': orders,
  '2026-11-27-03-chain-checkpoints': chainCheckpoints,
  '2026-11-27-04-events-no-replace': eventsNoReplace,
  '2026-12-07-01-raw-bodies-and-deliveries': rawBodiesAndDeliveries,
  '2026-12-07-02-events-by-transaction': eventsByTransaction,
  '2026-12-07-03-signed-checkpoints': signedCheckpoints,
  '2026-12-07-04-orders-needs-review': ordersNeedsReview,
  '2026-12-07-05-outbound': outbound
}

// PostgreSQL's own list: the same tables, created its way (pg/migrations/2026-12-08-01-schema.ts).
const pgMigrations: Record<string, Migration> = {
  '2026-12-08-01-schema': pgSchema
}

/**
 * Brings the schema to the latest version; throws with the failing
 * migration's name. On PostgreSQL Kysely's migrator holds an advisory lock
 * meanwhile, so instances starting together migrate once.
 */
export async function migrateToLatest (db: Kysely<any>, dialect: 'sqlite' | 'postgres' = 'sqlite'): Promise<MigrationResultSet> {
  const migrations = dialect === 'sqlite' ? sqliteMigrations : pgMigrations
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } })
  const result = await migrator.migrateToLatest()
  if (result.error !== undefined) {
    const failed = result.results?.find(r => r.status === 'Error')?.migrationName ?? 'unknown'
    throw new Error(`migration ${failed} failed: ${String(result.error)}`, { cause: result.error })
  }
  return result
}
