import { cpSync, existsSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs'
import { Agent } from 'node:http'
import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import t from 'tap'
import { tempDir } from '../helpers.js'
import { cliPath, startService } from '../service-process.js'
import { auditLog, genericDelivery, isAck, postDelivery, repoRoot, runPool, seededRandom, serverEnv, shuffle, testSeed, type Delivery, type TapTest } from './helpers.js'

// Issue 13: at synchronous=FULL the writer commits without an fsync and syncs the WAL on another
// thread while it commits the next batch (src/event-log/writer-worker.ts); the promise stays "no ack
// before its WAL frames are on disk". SIGKILL cannot test that (the page cache survives a killed
// process), so each trial simulates a power loss: the writer records the WAL's length at every
// completed sync (PAYNOTIFY_WAL_SYNC_LOG, written before that sync's acks go out); the test kills the
// service mid-traffic, cuts the WAL back to the last synced length (what the disk held) and drops the
// shared-memory index (it lives in the page cache), then every acked delivery must be in the log.
// The same trials against a copy of the build that acks before its sync must lose an acked delivery
// (on a disk as slow as a real one): the test can tell the two apart.
const trials = Number(process.env.PAYNOTIFY_TEST_POWER_LOSS_TRIALS ?? '') || 20
const slowDiskTrials = 3
const mutantTrials = 8
const ordersPerTrial = 40
const clients = 16

// One service start per trial (about a second of CPU each): allow for a busy machine.
t.setTimeout(Math.max(600_000, (trials + slowDiskTrials + mutantTrials) * 40_000))

function workload (trial: number, random: () => number): Delivery[] {
  const deliveries: Delivery[] = []
  for (let k = 0; k < ordersPerTrial; k++) {
    const orderId = `power-${trial}-${k}`
    const base = { order_id: orderId, amount: `${1 + Math.floor(random() * 900)}.00`, currency: 'CNY', trade_no: `P${trial}x${k}` }
    deliveries.push(genericDelivery({ ...base, status: '0', notify_id: `${orderId}-pending` }))
    deliveries.push(genericDelivery({ ...base, status: '1', notify_id: `${orderId}-paid` }))
  }
  return shuffle(deliveries, random)
}

interface TrialResult {
  acked: number
  lost: string[]
  syncs: number
  chainOk: boolean
}

/** One trial: a fresh service, callbacks from `clients` senders, SIGKILL at an ack, then the power loss. */
async function powerLossTrial (t: TapTest, trial: number, random: () => number, cli: string): Promise<TrialResult> {
  const dir = tempDir(t, 'paynotify-power-')
  const dbPath = join(dir, 'power.db')
  const syncLog = join(dir, 'wal-syncs')
  const server = await startService(t, serverEnv(dbPath, { PAYNOTIFY_WAL_SYNC_LOG: syncLog }), ['serve'], { cli })
  // No checkpoint may run in a trial (it would copy WAL frames into the database and restart the WAL
  // from its start, which cutting the WAL cannot model): the database file stays as the start left it.
  const databaseAtStart = statSync(dbPath).mtimeMs
  // What the start wrote (the schema) the main connection committed at synchronous=FULL, so it is on
  // disk whatever the writer's syncs did: a power loss takes back no more than what came after it.
  const walAtStart = statSync(`${dbPath}-wal`).size
  const deliveries = workload(trial, random)
  // The kill moment is an event, the k-th ack, so it lands mid-traffic however loaded the machine is.
  const killAtAck = 5 + Math.floor(random() * deliveries.length * 0.6)
  const acked = new Set<number>()
  const agent = new Agent({ keepAlive: true, maxSockets: clients })
  let killed = false
  await runPool(deliveries, clients, async (delivery, i) => {
    if (killed) return
    const result = await postDelivery(server.url, delivery, agent)
    if (isAck(result)) acked.add(i)
    if (!killed && acked.size >= killAtAck) {
      killed = true
      server.child.kill('SIGKILL')
    }
  })
  agent.destroy()
  t.ok(killed, `trial ${trial}: killed at ack ${killAtAck}`)
  t.same(await server.exited, { code: null, signal: 'SIGKILL' }, `trial ${trial}: killed, not exited on its own`)

  const synced = existsSync(syncLog) ? readFileSync(syncLog, 'utf8').trim().split('\n').map(Number) : []
  t.ok(synced.every((length, i) => i === 0 || length >= synced[i - 1]!), `trial ${trial}: the synced lengths only grow`)
  t.equal(statSync(dbPath).mtimeMs, databaseAtStart, `trial ${trial}: no checkpoint ran (the WAL holds every commit)`)
  const wal = `${dbPath}-wal`
  const lastSynced = Math.max(walAtStart, synced.at(-1) ?? 0)
  t.ok(statSync(wal).size >= lastSynced, `trial ${trial}: the WAL is at least as long as its last sync`)
  // The power loss: the disk has the WAL as far as the last completed sync, and no shared-memory index.
  // (A build that acks before its sync can be killed before any sync: then only the start's frames stay.)
  truncateSync(wal, lastSynced)
  rmSync(`${dbPath}-shm`, { force: true })
  // A read-write open recovers the WAL's whole transactions (and checkpoints them on close).
  new SQLite(dbPath).close()
  const audit = auditLog(dbPath)
  const lost = [...acked].map(i => deliveries[i]!.params.notify_id!).filter(id => !audit.deliveries.has(`generic|${id}`))
  return { acked: acked.size, lost, syncs: synced.length, chainOk: audit.chainOk }
}

/**
 * dist/ copied, its writer's syncs made as slow as a real disk's (this machine's fdatasync takes about
 * 0.1 ms, less than an ack's trip to the client, so a kill would rarely fall inside one), and with
 * `ackEarly` each commit answered when its sync starts instead of when it ends.
 */
function slowDiskBuild (t: TapTest, ackEarly: boolean): string {
  const dir = tempDir(t, 'paynotify-slow-disk-')
  for (const entry of ['dist', 'events', 'console-assets', 'package.json']) cpSync(join(repoRoot, entry), join(dir, entry), { recursive: true })
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'))
  const worker = join(dir, 'dist', 'event-log', 'writer-worker.js')
  const source = readFileSync(worker, 'utf8')
  const sync = 'fdatasync(fd, error => {'
  const slowSync = 'slowFdatasync(fd, error => {'
  const answers = /for \(const answer of answers\)\s*post\(answer\);/g
  t.equal(source.split(sync).length, 2, 'the built writer syncs the WAL in one place')
  t.equal(source.match(answers)?.length, 1, 'and answers a sync\'s commits in one place')
  let patched = source.replace(sync, slowSync) + '\nfunction slowFdatasync (fd, callback) { setTimeout(() => { fdatasync(fd, callback) }, 50) }\n'
  if (ackEarly) patched = patched.replace(answers, '').replace(slowSync, `for (const answer of answers) post(answer); ${slowSync}`)
  t.equal(patched.includes(`post(answer); ${slowSync}`), ackEarly, ackEarly ? 'answers moved before the sync' : 'answers left after the sync')
  writeFileSync(worker, patched)
  return join(dir, 'dist', 'cli', 'main.js')
}

t.test('a power loss after SIGKILL loses no acked delivery: acks wait for the WAL sync', async t => {
  const seed = testSeed()
  t.comment(`power-loss seed ${seed} (PAYNOTIFY_TEST_SEED=${seed} reproduces the kill moments)`)
  const random = seededRandom(seed)
  const totals = { acked: 0, syncs: 0 }
  for (let trial = 0; trial < trials; trial++) {
    const result = await powerLossTrial(t, trial, random, cliPath)
    totals.acked += result.acked
    totals.syncs += result.syncs
    t.ok(result.syncs > 0, `trial ${trial}: ${result.acked} acks came after ${result.syncs} syncs`)
    t.same(result.lost, [], `trial ${trial}: every one of ${result.acked} acked deliveries survived the power loss`)
    t.ok(result.chainOk, `trial ${trial}: the chain verifies after the power loss`)
  }
  t.comment(`${trials} trials: ${totals.acked} acked deliveries, ${totals.syncs} syncs, 0 lost`)
})

t.test('on a slow disk, acks after the sync lose nothing and acks before it lose acked deliveries', async t => {
  const random = seededRandom(testSeed() + 1)
  const slow = slowDiskBuild(t, false)
  for (let trial = 0; trial < slowDiskTrials; trial++) {
    const result = await powerLossTrial(t, trial, random, slow)
    t.same(result.lost, [], `slow disk, trial ${trial}: every one of ${result.acked} acked deliveries survived (${result.syncs} syncs)`)
  }
  const early = slowDiskBuild(t, true)
  const losses: string[] = []
  for (let trial = 0; trial < mutantTrials && losses.length === 0; trial++) {
    const result = await powerLossTrial(t, trial, random, early)
    losses.push(...result.lost)
  }
  t.ok(losses.length > 0, `acks sent before the sync: ${losses.length} acked deliveries lost to the power loss`)
})
