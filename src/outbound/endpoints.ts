import { randomBytes } from 'node:crypto'
import type SQLite from 'better-sqlite3'
import { AppError } from '../errors.js'
import type { EventAppender } from '../event-log/event-log.js'
import { EndpointChange, endpointsStreamId, type EndpointChangedData, type EndpointSettings } from '../orders/events.js'
import { checkEndpointUrl } from './endpoint-url.js'
import { generateEndpointSecret, type SecretSealer } from './sealed-secrets.js'

/** How long a rotated-out secret keeps signing beside the new one. */
export const rotationOverlapMs = 24 * 3_600_000

/** An endpoint as the admin API shows it: never its secret. */
export interface Endpoint {
  id: string
  url: string
  events: string[] | null
  description: string | null
  enabled: boolean
  disabledReason: string | null
  createdAt: string
  updatedAt: string
}

interface EndpointRow { id: string, url: string, events: string | null, description: string | null, enabled: number, disabled_reason: string | null, created_at: string, updated_at: string }

export type Actor = EndpointChangedData['actor']

export interface EndpointServiceOptions {
  /** The service's read connection; secrets are written on it too (synchronous=FULL: an answered secret is on disk). */
  sqlite: SQLite.Database
  eventLog: EventAppender
  sealer: SecretSealer
  allowPrivate: boolean
  now: () => Date
  /** A rotation changed an endpoint's secrets (the dispatcher drops its cache). */
  onSecretsChanged?: (endpointId: string) => void
}

/**
 * Endpoint changes: each is an EndpointChanged event appended to the log
 * (the writer projects it into the endpoints table in the same commit), and
 * the secrets are sealed in endpoint_secrets, outside the log. Answers are
 * read back from the projection once the append has committed.
 */
export class EndpointService {
  readonly #options: EndpointServiceOptions
  readonly #find: SQLite.Statement<[string], EndpointRow>
  readonly #list: SQLite.Statement<[string, number], EndpointRow>
  readonly #insertSecret: SQLite.Statement
  readonly #expireSecrets: SQLite.Statement
  readonly #deleteSecrets: SQLite.Statement

  constructor (options: EndpointServiceOptions) {
    this.#options = options
    const { sqlite } = options
    this.#find = sqlite.prepare('SELECT id, url, events, description, enabled, disabled_reason, created_at, updated_at FROM endpoints WHERE id = ?')
    this.#list = sqlite.prepare('SELECT id, url, events, description, enabled, disabled_reason, created_at, updated_at FROM endpoints WHERE id > ? ORDER BY id LIMIT ?')
    this.#insertSecret = sqlite.prepare('INSERT INTO endpoint_secrets (endpoint_id, sealed, created_at, expires_at) VALUES (?, ?, ?, NULL)')
    this.#expireSecrets = sqlite.prepare('UPDATE endpoint_secrets SET expires_at = ? WHERE endpoint_id = ? AND expires_at IS NULL')
    this.#deleteSecrets = sqlite.prepare('DELETE FROM endpoint_secrets WHERE endpoint_id = ?')
  }

  find (id: string): Endpoint | undefined {
    const row = this.#find.get(id)
    return row === undefined ? undefined : toEndpoint(row)
  }

  get (id: string): Endpoint {
    const endpoint = this.find(id)
    if (endpoint === undefined) throw new AppError(404, 'endpoint_not_found', `no endpoint ${id}`)
    return endpoint
  }

  list (cursor: string, limit: number): { endpoints: Endpoint[], nextCursor: string | null } {
    const rows = this.#list.all(cursor, limit + 1)
    const page = rows.slice(0, limit).map(toEndpoint)
    return { endpoints: page, nextCursor: rows.length > limit ? page[page.length - 1]!.id : null }
  }

  async create (input: { url: string, events?: string[] | undefined, description?: string | undefined }, actor: Actor): Promise<Endpoint & { secret: string }> {
    const url = await checkEndpointUrl(input.url, this.#options.allowPrivate)
    const id = `ep_${randomBytes(16).toString('hex')}`
    const secret = generateEndpointSecret()
    // Sealed before the event: a secret whose endpoint never committed is an orphan row, never an endpoint without a secret.
    this.#insertSecret.run(id, this.#options.sealer.seal(id, secret), this.#options.now().toISOString())
    const endpoint: EndpointSettings = { url, events: normalizeEvents(input.events), description: input.description ?? null, enabled: true }
    await this.#append({ endpointId: id, change: EndpointChange.Created, endpoint, reason: null, actor })
    return { ...this.get(id), secret }
  }

  async update (id: string, patch: { url?: string | undefined, events?: string[] | null | undefined, description?: string | null | undefined, enabled?: boolean | undefined }, actor: Actor): Promise<Endpoint> {
    const current = this.get(id)
    const endpoint: EndpointSettings = {
      url: patch.url === undefined ? current.url : await checkEndpointUrl(patch.url, this.#options.allowPrivate),
      events: patch.events === undefined ? current.events : normalizeEvents(patch.events ?? undefined),
      description: patch.description === undefined ? current.description : patch.description,
      enabled: patch.enabled ?? current.enabled
    }
    await this.#append({ endpointId: id, change: EndpointChange.Updated, endpoint, reason: null, actor })
    return this.get(id)
  }

  async delete (id: string, actor: Actor): Promise<void> {
    this.get(id)
    await this.#append({ endpointId: id, change: EndpointChange.Deleted, endpoint: null, reason: null, actor })
    this.#deleteSecrets.run(id)
    this.#options.onSecretsChanged?.(id)
  }

  /** A new secret; the ones before it keep signing beside it for rotationOverlapMs. */
  async rotateSecret (id: string, actor: Actor): Promise<{ id: string, secret: string, previousSecretsExpireAt: string }> {
    const current = this.get(id)
    const now = this.#options.now()
    const secret = generateEndpointSecret()
    const expiresAt = new Date(now.getTime() + rotationOverlapMs).toISOString()
    this.#options.sqlite.transaction(() => {
      this.#expireSecrets.run(expiresAt, id)
      this.#insertSecret.run(id, this.#options.sealer.seal(id, secret), now.toISOString())
    }).immediate()
    this.#options.onSecretsChanged?.(id)
    await this.#append({ endpointId: id, change: EndpointChange.SecretRotated, endpoint: settingsOf(current), reason: null, actor })
    return { id, secret, previousSecretsExpireAt: expiresAt }
  }

  /** The dispatcher's change: the endpoint answered 410 Gone. */
  async disable (id: string, reason: string): Promise<void> {
    const current = this.find(id)
    if (current === undefined || !current.enabled) return
    await this.#append({ endpointId: id, change: EndpointChange.Disabled, endpoint: { ...settingsOf(current), enabled: false }, reason, actor: { kind: 'dispatcher', requestId: null, address: null } })
  }

  async #append (data: EndpointChangedData): Promise<void> {
    const receivedAt = this.#options.now().toISOString()
    const requestId = data.actor.requestId ?? `dispatcher:${randomBytes(8).toString('hex')}`
    await this.#options.eventLog.append([{
      streamId: endpointsStreamId,
      type: 'EndpointChanged',
      data,
      metadata: { gateway: data.actor.kind, deliveryId: `endpoint:${data.endpointId}:${requestId}`, receivedAt, requestId }
    }])
  }
}

function settingsOf (endpoint: Endpoint): EndpointSettings {
  return { url: endpoint.url, events: endpoint.events, description: endpoint.description, enabled: endpoint.enabled }
}

/** A list of types in a stable order without repeats; absent or empty means every type (null). */
function normalizeEvents (events: readonly string[] | undefined): string[] | null {
  if (events === undefined || events.length === 0) return null
  return [...new Set(events)].sort()
}

function toEndpoint (row: EndpointRow): Endpoint {
  return {
    id: row.id,
    url: row.url,
    events: row.events === null ? null : JSON.parse(row.events) as string[],
    description: row.description,
    enabled: row.enabled === 1,
    disabledReason: row.disabled_reason,
    createdAt: row.created_at,
    updatedAt: row.updated_at
  }
}
