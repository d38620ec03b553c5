// A diagnostic server for bench/profile.js: the real paynotify app (config,
// logger, routes, gateway verification, the notify handler) on a real store,
// but with EventLog.append answered on the next turn of the event loop
// without touching SQLite. The difference from the real server is what the
// append, projection and commit cost the HTTP thread.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { root } from './lib/machine.js'
import { benchAdminToken, benchMerchantToken, benchSecret } from './lib/bodies.js'

// BENCH_DIST points at another build of the service (an A/B comparison of two builds, bench/stub-ab.js); dist/ by default.
const dist = process.env.BENCH_DIST ?? join(root, 'dist')
const { buildApp } = await import(join(dist, 'app.js'))
const { loadConfig } = await import(join(dist, 'config.js'))
const { openStore } = await import(join(dist, 'store.js'))

const dir = mkdtempSync(join(tmpdir(), 'paynotify-stub-'))
const config = loadConfig({
  PAYNOTIFY_DB: join(dir, 'stub.db'),
  PAYNOTIFY_GENERIC_SECRET: benchSecret,
  PAYNOTIFY_ADMIN_TOKEN: benchAdminToken,
  PAYNOTIFY_MERCHANT_TOKEN: benchMerchantToken
})
const store = await openStore(config.dbPath)
let position = 0
store.eventLog.append = events => new Promise(resolve => {
  const recorded = events.map(event => ({ streamId: event.streamId, type: event.type, data: event.data, metadata: event.metadata, position: ++position, streamVersion: 1, schemaVersion: 1, recordedAt: '', hash: '' }))
  setImmediate(() => resolve(recorded))
})
// The notify route appends through appendWithRepeats (builds since issue 12); older builds have none.
store.eventLog.appendWithRepeats = async events => ({ recorded: await store.eventLog.append(events), repeats: 0 })
const app = await buildApp({ config, secrets: { genericSecret: benchSecret, adminToken: benchAdminToken, merchantToken: benchMerchantToken }, store })
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    app.close().then(() => store.close()).then(() => { rmSync(dir, { recursive: true, force: true }); process.exit(0) }, () => process.exit(1))
  })
}
