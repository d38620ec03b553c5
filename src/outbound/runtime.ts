import { EventEmitter } from 'node:events'
import type SQLite from 'better-sqlite3'
import type { Config } from '../config.js'
import type { EventAppender, Tail } from '../event-log/event-log.js'
import { Dispatcher } from './dispatcher.js'
import { EndpointService } from './endpoints.js'
import { OutboundMessages } from './messages.js'
import { SecretSealer } from './sealed-secrets.js'

export interface OutboundOptions {
  /** The service's read connection: endpoints, messages and secrets are read and changed on it. */
  sqlite: SQLite.Database
  /** The dispatcher's own connection (its attempt records need no fsync of their own), or the same. */
  dispatcherSqlite: SQLite.Database
  /** Its tail is what is on disk: the writer reports a commit once its WAL frames are synced. */
  eventLog: EventAppender & { readonly tail: Tail }
  signingKey: string
  config: Config['outbound']
  log: { warn: (object: object, message: string) => void, error: (object: object, message: string) => void }
  now?: () => Date
}

/** Everything outbound a service runs: endpoints, messages and jobs for the admin API, the dispatcher, the feed's wake-ups. */
export interface Outbound {
  endpoints: EndpointService
  messages: OutboundMessages
  dispatcher: Dispatcher
  /** Emits 'committed' after every append: the feed and the dispatcher look for new messages. */
  commits: EventEmitter
  feedToken: string | undefined
  /** Wraps an appender so each committed append wakes the dispatcher and the feed. */
  notifying: <A extends EventAppender>(appender: A) => EventAppender
  /** The log's last position on disk: no message of a later one is delivered or fed yet. */
  durablePosition: () => number
  close: () => Promise<void>
}

export function createOutbound (options: OutboundOptions): Outbound {
  const now = options.now ?? (() => new Date())
  const sealer = new SecretSealer(options.signingKey)
  const commits = new EventEmitter()
  commits.setMaxListeners(0)
  const notifying = <A extends EventAppender>(appender: A): EventAppender => ({
    append: async events => {
      const written = await appender.append(events)
      commits.emit('committed')
      return written
    },
    appendWithRepeats: async events => {
      const written = await appender.appendWithRepeats(events)
      commits.emit('committed')
      return written
    }
  })
  const endpoints = new EndpointService({
    sqlite: options.sqlite,
    eventLog: notifying(options.eventLog),
    sealer,
    allowPrivate: options.config.allowPrivate,
    now,
    onSecretsChanged: id => { dispatcher.forget(id) }
  })
  const durablePosition = (): number => options.eventLog.tail.position
  const dispatcher = new Dispatcher({
    sqlite: options.dispatcherSqlite,
    durablePosition,
    sealer,
    schedule: options.config.retrySchedule,
    concurrency: options.config.concurrency,
    timeoutMs: options.config.timeoutMs,
    allowPrivate: options.config.allowPrivate,
    disableEndpoint: async (id, reason) => { await endpoints.disable(id, reason) },
    log: options.log,
    clock: () => now().getTime()
  })
  const messages = new OutboundMessages(options.sqlite, now, () => { dispatcher.nudge() })
  commits.on('committed', () => { dispatcher.nudge() })
  return {
    endpoints,
    messages,
    dispatcher,
    commits,
    feedToken: options.config.feedToken,
    notifying,
    durablePosition,
    close: async () => {
      await messages.close()
      await dispatcher.close()
    }
  }
}
