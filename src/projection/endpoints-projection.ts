import type { EndpointChangedData } from '../orders/events.js'
import type { FanoutEndpoint } from './outbox.js'
import type { EndpointRow, ProjectionStore } from './projection-store.js'

/**
 * The endpoints table as the projection of the log's EndpointChanged events,
 * kept in the append transaction like the orders table; and the endpoints in
 * memory, whose enabled ones the outbox fans each message out to.
 */
export class EndpointsProjection {
  readonly #store: ProjectionStore
  #rows = new Map<string, EndpointRow>()
  #enabled: FanoutEndpoint[] = []

  constructor (store: ProjectionStore) {
    this.#store = store
    this.reload()
  }

  /** The enabled endpoints, as the writer fans out to them. */
  get enabled (): readonly FanoutEndpoint[] {
    return this.#enabled
  }

  /** Applies one EndpointChanged event. Must run inside the append transaction. */
  apply (change: EndpointChangedData, position: number, recordedAt: string): void {
    const { endpointId: id, endpoint } = change
    const row = this.#rows.get(id)
    switch (change.change) {
      case 'created': {
        const events = eventsJson(endpoint!.events)
        const enabled = endpoint!.enabled ? 1 : 0
        this.#store.insertEndpoint({ id, url: endpoint!.url, events, description: endpoint!.description, enabled, createdPosition: position, at: recordedAt })
        this.#rows.set(id, { id, events, enabled, created_position: position })
        break
      }
      case 'updated': {
        const events = eventsJson(endpoint!.events)
        const enabled = endpoint!.enabled ? 1 : 0
        this.#store.updateEndpoint({ id, url: endpoint!.url, events, description: endpoint!.description, enabled, at: recordedAt })
        if (row !== undefined) this.#rows.set(id, { ...row, events, enabled })
        break
      }
      case 'disabled':
        this.#store.disableEndpoint(id, change.reason, recordedAt)
        if (row !== undefined) this.#rows.set(id, { ...row, enabled: 0 })
        break
      case 'secret_rotated':
        this.#store.touchEndpoint(id, recordedAt)
        break
      case 'deleted':
        this.#store.deleteEndpoint(id, recordedAt)
        this.#rows.delete(id)
        break
      default:
        return assertNever(change.change)
    }
    this.#enabled = enabledOf(this.#rows)
  }

  /** Re-reads the table (after a rolled-back transaction, or another instance's change). */
  reload (): void {
    this.#rows = new Map(this.#store.endpoints().map(row => [row.id, row]))
    this.#enabled = enabledOf(this.#rows)
  }
}

function enabledOf (rows: Map<string, EndpointRow>): FanoutEndpoint[] {
  return [...rows.values()].filter(row => row.enabled === 1).sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0).map(row => ({
    id: row.id,
    events: row.events === null ? null : new Set(JSON.parse(row.events) as string[]),
    createdPosition: row.created_position
  }))
}

function eventsJson (events: readonly string[] | null): string | null {
  return events === null ? null : JSON.stringify(events)
}

function assertNever (value: never): never {
  throw new Error(`unhandled endpoint change ${String(value)}`)
}
