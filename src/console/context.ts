import type SQLite from 'better-sqlite3'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Kysely } from 'kysely'
import type { Config } from '../config.js'
import type { Database } from '../db/database.js'
import type { EventAppender } from '../event-log/event-log.js'
import type { RefusalStore } from '../http/refusals.js'
import type { Outbound } from '../outbound/runtime.js'
import type { ServiceStore } from '../store.js'
import { page, type PageOptions } from './layout.js'
import type { ConsoleSession } from './session.js'

/** What every console view reads and writes through: the same store and appender the service runs. */
export interface ConsoleContext {
  db: Kysely<Database>
  /** The same connection as `db`, for synchronous paged reads (the timeline). */
  sqlite: SQLite.Database
  /** Appends made from the console (a review note) go through it, so the outbox and the live view see them. */
  eventLog: EventAppender
  /** The log itself: its tail position and commits (live updates). */
  log: ServiceStore['eventLog']
  config: Config
  now: () => Date
  /** Outbound delivery, when the service runs it. */
  outbound?: Outbound | undefined
  /** The last refused callbacks (absent with PAYNOTIFY_REFUSALS_MAX=0). */
  refusals?: RefusalStore | undefined
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the console's sign-in check on every console route but sign-in and assets. */
    consoleSession: ConsoleSession | null
  }
}

/** The signed-in session of a console request (the plugin's hook has checked it). */
export function sessionOf (request: FastifyRequest): ConsoleSession {
  const session = request.consoleSession
  if (session === null) throw new Error('console route reached without a session')
  return session
}

/** Answers with a whole console page. */
export function sendPage (reply: FastifyReply, options: PageOptions): FastifyReply {
  return reply.type('text/html; charset=utf-8').send(page(options))
}
