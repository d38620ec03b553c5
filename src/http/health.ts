import type { FastifyPluginAsync } from 'fastify'
import type SQLite from 'better-sqlite3'
import { Type } from '@sinclair/typebox'
import { AppError } from '../errors.js'

export interface HealthRoutesOptions {
  sqlite: SQLite.Database
}

const Status = Type.Object({ status: Type.String() })

export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, { sqlite }) => {
  app.get('/healthz', { schema: { summary: 'The process is up', response: { 200: Status } } }, async () => ({ status: 'ok' }))

  app.get('/readyz', { schema: { summary: 'The database takes writes', response: { 200: Status } } }, async () => {
    // Take the write lock and let it go: proves the file is writable and not locked by another process.
    const timeout = sqlite.pragma('busy_timeout', { simple: true }) as number
    try {
      sqlite.pragma('busy_timeout = 200')
      sqlite.exec('BEGIN IMMEDIATE')
      sqlite.exec('ROLLBACK')
      return { status: 'ready' }
    } catch (cause) {
      throw new AppError(503, 'not_ready', 'database is not writable', { cause })
    } finally {
      sqlite.pragma(`busy_timeout = ${timeout}`)
    }
  })
}
