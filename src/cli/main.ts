#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import { Command } from 'commander'
// Only the command definitions load at start-up (options, help texts): each command loads
// what it runs on (the store, Kysely, Fastify, the configuration's TypeBox and Ajv) in its
// action, so `--help`, a usage error or `export --db` do not pay for every other command.
import { registerExportCommand } from './export.js'
import { registerImportCommand } from './import.js'
import { registerPublicKeyCommand } from './public-key.js'
import { registerKeysCommand } from './keys.js'
import { registerRebuildCommand } from './rebuild.js'
import { registerReplayCommand } from './replay.js'
import { registerSimulateCommand } from './simulate.js'
import { registerTailCommand } from './tail.js'
import { registerVerifyCommand } from './verify.js'

/** Exit codes: 0 ok, 1 a failure was found (broken chain, store error), 2 bad usage or configuration. */
export const ExitCode = { Ok: 0, Failure: 1, Usage: 2 } as const

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }

// No default command: a bare `paynotify` prints help (exit 2) rather than serving in whatever
// directory it was typed, and a mistyped command is an unknown command, not an argument of serve.
const program = new Command()
  .name('paynotify')
  .description('Payment notification service: ingest gateway callbacks into an immutable event log and derive order state.')
  .version(version, '-V, --version', 'print the version')
  .showHelpAfterError()
  .exitOverride(error => {
    process.exit(error.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage)
  })

program.command('serve')
  .description('start the HTTP service (PAYNOTIFY_* environment variables configure it)')
  .addHelpText('after', `
stdout carries the service's log, one JSON object per line; lines meant for a person
(where generated secrets are kept, "paynotify listening on <url>") go to stderr.`)
  .action(async () => {
    const { loadConfig } = await import('../config.js')
    const config = loadConfig(process.env)
    const { startServer } = await import('../server.js')
    const { address } = await startServer(config)
    process.stderr.write(`paynotify listening on ${address} (database ${config.dbPath})\n`)
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
registerPublicKeyCommand(program)
registerSimulateCommand(program)
registerKeysCommand(program)
registerTailCommand(program)

try {
  await program.parseAsync(process.argv)
} catch (error) {
  // Already loaded when they threw: config.js and data-directory.js are the only sources of these errors.
  const [{ ConfigError }, { DatabaseDirectoryError }] = await Promise.all([import('../config.js'), import('../db/data-directory.js')])
  if (error instanceof ConfigError || error instanceof DatabaseDirectoryError) {
    process.stderr.write(`paynotify: ${error.message}\n`)
    process.exit(ExitCode.Usage)
  }
  process.stderr.write(`paynotify: ${(error as Error).message}\n`)
  process.exit(ExitCode.Failure)
}
