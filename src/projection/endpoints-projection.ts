import type SQLite from 'better-sqlite3'
import type { EndpointChangedData } from '../orders/events.js'
import type { FanoutEndpoint } from './outbox.js'

interface EndpointRow { id: string, events: string | null, enabled: number, created_position: number }

/**
 * The endpoints table as the projection of the log's EndpointChanged events,
 * kept in the append transaction like the orders table; and the enabled
 * endpoints in memory, which the outbox fans each message out to.
 */
export class EndpointsProjection {
  readonly #insert: SQLite.Statement
  readonly #update: SQLite.Statement
  readonly #disable: SQLite.Statement
  readonly #touch: SQLite.Statement
  readonly #delete: SQLite.Statement
  readonly #dropDeliveries: SQLite.Statement
  readonly #readEnabled: SQLite.Statement<[], EndpointRow>
  #enabled: FanoutEndpoint[]

  constructor (sqlite: SQLite.Database) {
    this.#insert = sqlite.prepare(`INSERT INTO endpoints (id, url, events, description, enabled, disabled_reason, created_position, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?)`)
    this.#update = sqlite.prepare(`UPDATE endpoints SET url = ?, events = ?, description = ?, enabled = ?,
      disabled_reason = CASE WHEN ? = 1 THEN NULL ELSE disabled_reason END, updated_at = ? WHERE id = ?`)
    this.#disable = sqlite.prepare('UPDATE endpoints SET enabled = 0, disabled_reason = ?, updated_at = ? WHERE id = ?')
    this.#touch = sqlite.prepare('UPDATE endpoints SET updated_at = ? WHERE id = ?')
    this.#delete = sqlite.prepare('DELETE FROM endpoints WHERE id = ?')
    // A deleted endpoint's undelivered messages are dead-lettered with it: nothing stays pending for an endpoint that is gone.
    this.#dropDeliveries = sqlite.prepare(`UPDATE outbound_deliveries SET state = 'dead', last_error = 'endpoint deleted', updated_at = ?
      WHERE endpoint_id = ? AND state IN ('pending', 'failed')`)
    this.#readEnabled = sqlite.prepare('SELECT id, events, enabled, created_position FROM endpoints WHERE enabled = 1 ORDER BY id')
    this.#enabled = this.#load()
  }

  /** The enabled endpoints, as the writer fans out to them. */
  get enabled (): readonly FanoutEndpoint[] {
    return this.#enabled
  }

  /** Applies one EndpointChanged event. Must run inside the append transaction. */
  apply (change: EndpointChangedData, position: number, recordedAt: string): void {
    const { endpointId, endpoint } = change
    switch (change.change) {
      case 'created':
        this.#insert.run(endpointId, endpoint!.url, eventsJson(endpoint!.events), endpoint!.description, endpoint!.enabled ? 1 : 0, position, recordedAt, recordedAt)
        break
      case 'updated': {
        const enabled = endpoint!.enabled ? 1 : 0
        this.#update.run(endpoint!.url, eventsJson(endpoint!.events), endpoint!.description, enabled, enabled, recordedAt, endpointId)
        break
      }
      case 'disabled':
        this.#disable.run(change.reason, recordedAt, endpointId)
        break
      case 'secret_rotated':
        this.#touch.run(recordedAt, endpointId)
        break
      case 'deleted':
        this.#delete.run(endpointId)
        this.#dropDeliveries.run(recordedAt, endpointId)
        break
      default:
        return assertNever(change.change)
    }
    this.#enabled = this.#load()
  }

  /** Re-reads the table (after a rolled-back transaction). */
  reload (): void {
    this.#enabled = this.#load()
  }

  #load (): FanoutEndpoint[] {
    return this.#readEnabled.all().map(row => ({
      id: row.id,
      events: row.events === null ? null : new Set(JSON.parse(row.events) as string[]),
      createdPosition: row.created_position
    }))
  }
}

function eventsJson (events: readonly string[] | null): string | null {
  return events === null ? null : JSON.stringify(events)
}

function assertNever (value: never): never {
  throw new Error(`unhandled endpoint change ${String(value)}`)
}
