#!/usr/bin/env node
import { Command } from 'commander'
// Only the command definitions load at start-up (options, help texts): each command loads
// what it runs on (the store, Kysely, Fastify, the configuration's TypeBox and Ajv) in its
// action, so `--help`, a usage error or `export --db` do not pay for every other command.
import { registerExportCommand } from './export.js'
import { registerImportCommand } from './import.js'
import { registerKeysCommand } from './keys.js'
import { registerRebuildCommand } from './rebuild.js'
import { registerReplayCommand } from './replay.js'
import { registerSimulateCommand } from './simulate.js'
import { registerTailCommand } from './tail.js'
import { registerVerifyCommand } from './verify.js'

/** Exit codes: 0 ok, 1 a failure was found (broken chain, store error), 2 bad usage or configuration. */
export const ExitCode = { Ok: 0, Failure: 1, Usage: 2 } as const

const program = new Command()
  .name('paynotify')
  .description('Payment notification service: ingest gateway callbacks into an immutable event log and derive order state.')
  .showHelpAfterError()
  .exitOverride(error => {
    process.exit(error.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage)
  })

program.command('serve', { isDefault: true })
  .description('start the HTTP service (PAYNOTIFY_* environment variables configure it)')
  .action(async () => {
    const { loadConfig } = await import('../config.js')
    const config = loadConfig(process.env)
    const { startServer } = await import('../server.js')
    const { address } = await startServer(config)
    process.stdout.write(`paynotify listening on ${address} (database ${config.dbPath})\n`)
  })

program.command('migrate')
  .description('create or upgrade the database schema and exit')
  .option('--db <path>', 'database file (default: PAYNOTIFY_DB or ./data/paynotify.db)')
  .action(async (opts: { db?: string }) => {
    const [{ loadConfig }, { openStore }] = await Promise.all([import('../config.js'), import('../store.js')])
    const config = loadConfig(process.env)
    const store = await openStore(opts.db ?? config.dbPath, { synchronous: config.synchronous })
    await store.close()
    process.stdout.write(`migrated ${opts.db ?? config.dbPath}\n`)
  })

registerExportCommand(program)
registerImportCommand(program)
registerReplayCommand(program)
registerRebuildCommand(program)
registerVerifyCommand(program)
registerSimulateCommand(program)
registerKeysCommand(program)
registerTailCommand(program)

try {
  await program.parseAsync(process.argv)
} catch (error) {
  // Already loaded when it threw: config.js is the only source of a ConfigError.
  const { ConfigError } = await import('../config.js')
  if (error instanceof ConfigError) {
    process.stderr.write(`paynotify: ${error.message}\n`)
    process.exit(ExitCode.Usage)
  }
  process.stderr.write(`paynotify: ${(error as Error).message}\n`)
  process.exit(ExitCode.Failure)
}
