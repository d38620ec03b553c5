import type { Command } from 'commander'
import { secretsFilePath } from '../secrets.js'
import { dbOptionHelp, localSigner, resolveDbPath, usageError } from './options.js'

/**
 * `paynotify public-key`: the public half of the key that signs the log's
 * checkpoints, for an auditor to pin (`verify/import/replay --public-key`).
 * Never prints the private key, and never creates one.
 */
export function registerPublicKeyCommand (program: Command): Command {
  return program.command('public-key')
    .description('print the public key that checks the signed checkpoints of the log and its exports (give it to auditors)')
    .option('--db <path>', dbOptionHelp)
    .addHelpText('after', `
The key is PAYNOTIFY_SIGNING_KEY, else the one the service generated on its first start in
the secrets file beside the database. Exit codes: 0 printed, 2 no key yet or bad usage.`)
    .action(async function (this: Command, options: { db?: string }) {
      const dbPath = await resolveDbPath(options.db)
      const local = await localSigner(dbPath)
      if (local === undefined) usageError(this, `no signing key: set PAYNOTIFY_SIGNING_KEY, or start the service once (it stores one in ${secretsFilePath(dbPath)})`)
      process.stdout.write(`${local.signer.publicKey}\n`)
    })
}
