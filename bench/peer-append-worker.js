// One variant of benchmark 4 in a process of its own: `callers` concurrent
// callers each append single events, one at a time, for `seconds`; prints one
// JSON line with the count, CPU time and the durability pragmas read back
// from the connection. Run by bench/peer-append.js.
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { root } from './lib/machine.js'

const [variant, secondsArg, callersArg] = process.argv.slice(2)
const seconds = Number(secondsArg ?? 5)
const callers = Number(callersArg ?? 100)
const warmupSeconds = 1
const dir = mkdtempSync(join(tmpdir(), `peer-${variant}-`))
const dbPath = join(dir, 'events.db')

// The same payload for every store: a paid generic callback as paynotify records it.
function payload (caller, n) {
  const orderId = `order-${caller}-${Math.floor(n / 3)}`
  const body = `amount=123.45&currency=CNY&notify_id=${orderId}-${n}&order_id=${orderId}&status=1&timestamp=1790000000&trade_no=T${caller}x${n}&sign=${'a'.repeat(64)}`
  return {
    streamId: orderId,
    type: 'PaymentSucceeded',
    data: { orderId, amount: 12345, currency: 'CNY', gateway: 'generic', transactionId: `T${caller}x${n}`, refundId: null, cumulative: false, gatewayStatus: '1', gatewayTime: '1790000000' },
    metadata: { gateway: 'generic', deliveryId: `${orderId}-${n}`, receivedAt: new Date().toISOString(), requestId: `req-${caller}-${n}`, raw: { body, encoding: 'utf8', contentType: 'application/x-www-form-urlencoded', headers: {} } }
  }
}

/** Runs callers against `append` until the deadline; the warm-up second is not counted. */
async function drive (append) {
  const warmEnd = performance.now() + warmupSeconds * 1000
  const end = warmEnd + seconds * 1000
  let counted = 0
  let cpuStart
  let wallStart
  await Promise.all(Array.from({ length: callers }, async (_, caller) => {
    for (let n = 0; ; n++) {
      const now = performance.now()
      if (now >= end) return
      if (cpuStart === undefined && now >= warmEnd) {
        cpuStart = process.cpuUsage()
        wallStart = now
        counted = 0
      }
      await append(caller, n)
      counted++
    }
  }))
  const wall = (performance.now() - wallStart) / 1000
  const cpu = process.cpuUsage(cpuStart)
  return { appends: counted, seconds: wall, appendsPerSecond: counted / wall, cpuMicrosPerAppend: (cpu.user + cpu.system) / counted }
}

/** A promise chain that lets one append run at a time. */
function serialize (fn) {
  let tail = Promise.resolve()
  return (...args) => {
    const run = tail.then(() => fn(...args))
    tail = run.catch(() => {})
    return run
  }
}

async function paynotify (withProjection) {
  const dist = join(root, 'dist')
  const { openDatabase } = await import(join(dist, 'db', 'database.js'))
  const { migrateToLatest } = await import(join(dist, 'db', 'migrate.js'))
  const { EventLog } = await import(join(dist, 'event-log', 'event-log.js'))
  const { openStore } = await import(join(dist, 'store.js'))
  let sqlite
  let eventLog
  let close
  if (withProjection) {
    const store = await openStore(dbPath, { synchronous: 'FULL' })
    ;({ sqlite, eventLog, close } = store)
  } else {
    const database = openDatabase(dbPath, { synchronous: 'FULL' })
    await migrateToLatest(database.db)
    sqlite = database.sqlite
    eventLog = new EventLog(sqlite)
    close = database.close
  }
  const pragmas = ['journal_mode', 'synchronous', 'busy_timeout', 'wal_autocheckpoint', 'locking_mode']
    .map(name => `${name}=${sqlite.pragma(name, { simple: true })}`).join(', ')
  const batchesBefore = eventLog.batches
  const result = await drive((caller, n) => eventLog.append([payload(caller, n)]))
  const batches = eventLog.batches - batchesBefore
  const rows = sqlite.prepare('SELECT count(*) AS n FROM events').get().n
  eventLog.close()
  await close()
  return { ...result, pragmas, eventsPerCommit: rows / batches, rows }
}

async function emmett (api) {
  const require = createRequire(join(root, 'bench', 'peers', 'package.json'))
  const emmettSqlite = require('@event-driven-io/emmett-sqlite')
  const sqlite3 = require('sqlite3')
  let append
  let close = () => {}
  if (api === 'store') {
    // Emmett's event store opens a connection per call and closes it after, and its
    // connections are not safe for concurrent transactions: concurrent callers queue.
    const store = emmettSqlite.getSQLiteEventStore({ fileName: dbPath })
    append = serialize((caller, n) => {
      const { streamId, type, data, metadata } = payload(caller, n)
      return store.appendToStream(streamId, [{ type, data, metadata }])
    })
  } else {
    // The most favourable use: one long-lived connection, Emmett's own appendToStream, one append at a time.
    const connection = emmettSqlite.sqliteConnection({ fileName: dbPath })
    await emmettSqlite.createEventStoreSchema(connection)
    append = serialize((caller, n) => {
      const { streamId, type, data, metadata } = payload(caller, n)
      return emmettSqlite.appendToStream(connection, streamId, 'order', [{ type, data, metadata }])
    })
    close = () => connection.close()
  }
  const result = await drive(append)
  close()
  // Read the settings back on a connection opened the way Emmett opens its own.
  const check = new sqlite3.Database(dbPath)
  const get = sql => new Promise((resolve, reject) => check.get(sql, (error, row) => (error ? reject(error) : resolve(row))))
  const pragmas = [
    `journal_mode=${(await get('PRAGMA journal_mode')).journal_mode}`,
    `synchronous=${(await get('PRAGMA synchronous')).synchronous}`,
    `busy_timeout=${(await get('PRAGMA busy_timeout')).timeout}`,
    `wal_autocheckpoint=${(await get('PRAGMA wal_autocheckpoint')).wal_autocheckpoint}`,
    `locking_mode=${(await get('PRAGMA locking_mode')).locking_mode}`
  ].join(', ')
  const rows = (await get('SELECT count(*) AS n FROM emt_messages')).n
  await new Promise(resolve => check.close(resolve))
  return { ...result, pragmas, eventsPerCommit: 1, rows }
}

try {
  const runners = {
    'paynotify-bare': () => paynotify(false),
    'paynotify-store': () => paynotify(true),
    'emmett-store': () => emmett('store'),
    'emmett-connection': () => emmett('connection')
  }
  if (runners[variant] === undefined) throw new Error(`unknown variant ${variant}`)
  process.stdout.write(JSON.stringify({ variant, ...(await runners[variant]()) }) + '\n')
} finally {
  rmSync(dir, { recursive: true, force: true })
}
