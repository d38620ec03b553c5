import { isAbsolute, relative, sep } from 'node:path'
import type { Command } from 'commander'
import { dbOptionHelp, resolveDbPath } from './options.js'

/** A path as a shell command can take it: relative to here when below here (with a `/`, which `.` needs), else absolute. */
function shellPath (file: string): string {
  const path = relative(process.cwd(), file)
  if (path === '' || path.startsWith('..') || isAbsolute(path)) return file
  return path.includes(sep) ? path : `.${sep}${path}`
}

/**
 * `paynotify keys`: a local test identity for every gateway, kept beside the
 * service's secrets, and the variables that enable them, as `stripe listen`
 * prints its `whsec_`. The values go to a terminal only: when stdout is a
 * pipe or a file (a CI log, say) only where they are is printed.
 */
export function registerKeysCommand (program: Command): Command {
  return program.command('keys')
    .description('create local test keys for every gateway (alipay, wechatpay, stripe, standard) and print the PAYNOTIFY_* variables that enable them')
    .option('--db <path>', `${dbOptionHelp}; the keys are kept beside it`)
    .addHelpText('after', `
Creates, once, an RSA key pair standing in for Alipay's key and one for WeChat Pay's
platform key, a WeChat Pay APIv3 key, and a whsec_ secret each for Stripe and Standard
Webhooks; later runs print the same ones. They are kept, mode 0600, beside the
database in paynotify.local-gateways.json, and the variables that configure the
service with them (PAYNOTIFY_ACCEPT_REPLAYS=1 included) in paynotify.local-gateways.env:

  . data/paynotify.local-gateways.env && npm start

replay --to and simulate sign with these keys. On a terminal the variables are
printed; otherwise only the files are named, since output may be collected in logs.`)
    .action(async (options: { db?: string }) => {
      const { ensureLocalGatewayKeys, localGatewayEnv, localGateways, shellExports } = await import('../local-gateway-keys.js')
      const { keys, created, file, envFile } = ensureLocalGatewayKeys(await resolveDbPath(options.db))
      const made = created.length === 0 ? 'kept from before' : created.length === localGateways.length ? 'created now' : `created now: ${created.join(', ')}`
      const load = `. ${shellPath(envFile)} && npm start`
      if (process.stdout.isTTY === true) {
        process.stdout.write(`# Local test keys for ${localGateways.join(', ')} (${made}), in ${shellPath(file)} (0600). Never production keys.\n`)
        process.stdout.write(shellExports(localGatewayEnv(keys)))
        process.stdout.write(`# The same lines are in ${shellPath(envFile)}: ${load}\n`)
      } else {
        process.stdout.write(`paynotify keys: local test keys for ${localGateways.join(', ')} (${made}) in ${shellPath(file)} (0600)\n`)
        process.stdout.write(`paynotify keys: the PAYNOTIFY_* variables that enable them are in ${shellPath(envFile)} (0600; printed on a terminal only): ${load}\n`)
      }
    })
}
