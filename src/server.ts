import closeWithGrace from 'close-with-grace'
import type { FastifyInstance } from 'fastify'
import type { Config } from './config.js'
import { openDispatcherConnection } from './db/database.js'
import { prepareDatabaseDirectory } from './db/data-directory.js'
import { acquireWriterLock } from './db/writer-lock.js'
import { checkChainSinceCheckpoint, describeChainBreak } from './event-log/chain-checkpoint.js'
import { createCheckpointSigner } from './event-log/checkpoint-signature.js'
import { createOutbound } from './outbound/runtime.js'
import { describeGeneratedSecrets, resolveSecrets } from './secrets.js'
import { openStore, openThreadedStore } from './store.js'

/** How long a graceful stop lets open requests finish before cutting their connections (well under the 10 s grace). */
const shutdownDrainMs = 3000

/**
 * The only place that listens: config → store → app → listen, and a graceful
 * close on signals that lets committing batches finish before the database closes.
 */
export async function startServer (config: Config): Promise<{ close: () => Promise<void>, address: string }> {
  prepareDatabaseDirectory(config.dbPath)
  const resolvedSecrets = resolveSecrets(config)
  const { secrets, signingKey, signingKeyGenerated } = resolvedSecrets
  const signer = createCheckpointSigner(signingKey)
  // Held while serving: a second service, and rebuild/import without --force, refuse this database.
  const lock = acquireWriterLock(config.dbPath)
  // Every change of an order writes its order.* messages to the outbox in its own commit; the first attempt is due after the schedule's first delay.
  const outbox = { firstDelayMs: config.outbound.retrySchedule[0] ?? 0 }
  const storeOptions = { synchronous: config.synchronous, batchMaxSize: config.batchMaxSize, busyTimeoutMs: config.busyTimeoutMs, signingKey, outbox }
  // A writer thread that dies leaves nothing to commit with: stop, so the supervisor restarts a whole service.
  let onWriterDeath = (error: Error): void => { throw error }
  const opening = config.writer === 'thread'
    ? openThreadedStore(config.dbPath, { ...storeOptions, syncLog: config.walSyncLog, onFatal: error => { onWriterDeath(error) } })
    : openStore(config.dbPath, storeOptions)
  // The app's modules (Fastify, the routes, the console) load on this thread while the writer
  // thread loads its own and opens the database: start-up costs the longer of the two, not both.
  const appModule = import('./app.js')
  appModule.catch(() => {}) // awaited below, once the store is open (or its error is the one thrown)
  const store = await opening
  const { buildApp } = await appModule.catch(async (error: unknown) => {
    await store.close()
    lock.release()
    throw error
  })
  // A log edited behind the service's back is not served unless the operator says so.
  const chain = checkChainSinceCheckpoint(store.sqlite, new Date(), { signer, firstUse: signingKeyGenerated })
  if (!chain.ok && !config.allowBrokenChain) {
    await store.close()
    lock.release()
    throw new Error(`event log chain is broken: ${describeChainBreak(chain)}; refusing to serve (run \`paynotify verify\`, or set PAYNOTIFY_ALLOW_BROKEN_CHAIN=1 to serve anyway)`)
  }
  // The dispatcher records attempts on a connection of its own; an in-memory store (inline writer) has only one.
  const dispatcherSqlite = config.dbPath === ':memory:' ? store.sqlite : openDispatcherConnection(config.dbPath, config.busyTimeoutMs)
  // Assigned once, below: the outbound log needs the app's logger, and the app needs outbound.
  // eslint-disable-next-line prefer-const
  let app: FastifyInstance | undefined
  const outbound = createOutbound({
    sqlite: store.sqlite,
    dispatcherSqlite,
    eventLog: store.eventLog,
    signingKey,
    config: config.outbound,
    log: { warn: (object, message) => app?.log.warn(object, message), error: (object, message) => app?.log.error(object, message) }
  })
  app = await buildApp({ config, secrets, store, outbound })
  if (chain.ok) {
    app.log.info({ publicKey: signer.publicKey, from: chain.from.position, to: chain.report.lastPosition, checked: chain.report.checked }, 'event log chain verified')
    if (chain.signedOnFirstUse !== undefined) {
      app.log.warn({ position: chain.signedOnFirstUse, publicKey: signer.publicKey }, 'signed the existing event log with a new checkpoint key (trusted as it stands: it was written before this key existed)')
    }
  } else {
    app.log.warn({ broken: describeChainBreak(chain) }, 'serving a broken event log chain (PAYNOTIFY_ALLOW_BROKEN_CHAIN)')
  }
  // Once, on the start that generated them, to stderr: stdout is the JSON log, and holds nothing else.
  process.stderr.write(describeGeneratedSecrets(resolvedSecrets, process.stderr.isTTY === true))
  const close = async (): Promise<void> => {
    // Node stops enforcing the header and request deadlines once the server closes, so a client
    // still sending its request would hold the shutdown until the grace period kills the process.
    // Whatever is still connected after the drain has no ack coming (a callback whose body
    // arrived is answered within one batch): cut it, as a crash would, and close the store cleanly.
    const cut = setTimeout(() => { app.server.closeAllConnections() }, shutdownDrainMs)
    try {
      await app.close()
    } finally {
      clearTimeout(cut)
    }
    await outbound.close()
    if (dispatcherSqlite !== store.sqlite) dispatcherSqlite.close()
    await store.close()
    lock.release()
  }
  const grace = closeWithGrace({ delay: 10_000 }, async ({ err }) => {
    if (err !== undefined) app.log.error({ err }, 'closing after error')
    await close()
  })
  onWriterDeath = error => {
    app.log.fatal({ err: error }, 'the event log writer thread stopped; stopping the service')
    grace.uninstall()
    // Every append in flight was answered 503 (nothing acked without its commit); what is left is a clean stop.
    close().finally(() => process.exit(1)).catch(() => {})
  }
  const address = await app.listen({ host: config.host, port: config.port, listenTextResolver: address => `paynotify listening on ${address}` })
  outbound.dispatcher.start()
  return { close, address }
}
