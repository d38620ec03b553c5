import pg from 'pg'
import t from 'tap'
import { StoreUnavailableError } from '../../src/errors.js'
import { chainHash, genesisHash } from '../../src/event-log/hash.js'
import type { PgEventLog } from '../../src/event-log/pg-event-log.js'
import { paid } from '../event-log/fixtures.js'
import { startPgCluster } from '../pg-cluster.js'
import { migratedDatabase, type PgTestDatabase } from './pg-log.js'

// Issue 14: positions are gap-free and a reader following the log by position never skips an event
// that commits after a later position became visible (the failure Marten fixed in issues 4952 and
// 4964). Tested the way Marten's fix was: a trigger holds one append transaction open while later
// ones try to commit. The trigger waits for a row in test_release, not for a clock: each loop
// statement sees new commits (READ COMMITTED), so the test releases it when it has seen what it needs.

const cluster = await startPgCluster(t)

const holdSql = [
  'CREATE TABLE test_release (released boolean)',
  `CREATE FUNCTION test_hold() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.stream_id LIKE 'hold-%' THEN
        WHILE NOT EXISTS (SELECT 1 FROM test_release) LOOP PERFORM pg_sleep(0.005); END LOOP;
      END IF;
      RETURN NEW;
    END $$`
]

async function withHold (db: PgTestDatabase, table: string): Promise<void> {
  for (const statement of holdSql) await db.query(statement).catch(error => { if ((error as { code?: string }).code !== '42P07' && (error as { code?: string }).code !== '42723') throw error })
  await db.query(`CREATE TRIGGER test_hold BEFORE INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION test_hold()`)
}

/** Waits until `count` sessions are in `state` (polling pg_stat_activity: the event is another session's wait). */
async function sessionsWaiting (db: PgTestDatabase, count: number, state: 'held' | 'lock'): Promise<number[]> {
  const where = state === 'held' ? "wait_event = 'PgSleep'" : "wait_event_type = 'Lock'"
  for (;;) {
    const rows = await db.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND ${where}`)
    if (rows.length >= count) return rows.map(row => row.pid)
    await new Promise(resolve => setImmediate(resolve))
  }
}

/** A reader following a table by position, as /admin/events?after=, export and a dispatcher do: it remembers the last position it saw. */
function follower (db: PgTestDatabase, table: string): { poll: () => Promise<void>, seen: number[] } {
  const seen: number[] = []
  return {
    seen,
    poll: async () => {
      const after = seen.at(-1) ?? 0
      const rows = await db.query<{ position: number }>(`SELECT position FROM ${table} WHERE position > $1 ORDER BY position`, [after])
      seen.push(...rows.map(row => row.position))
    }
  }
}

function settled<T> (promise: Promise<T>): { done: () => boolean, promise: Promise<T> } {
  let done = false
  const tracked = promise.finally(() => { done = true })
  tracked.catch(() => {})
  return { done: () => done, promise: tracked }
}

async function intactChain (db: PgTestDatabase): Promise<boolean> {
  const rows = await db.query<{ position: number, stream_id: string, stream_version: number, type: string, schema_version: number, data: string, metadata: string, recorded_at: string, hash: string }>('SELECT * FROM events ORDER BY position')
  let hash = genesisHash
  return rows.every((row, i) => {
    hash = chainHash(hash, row)
    return row.position === i + 1 && row.hash === hash
  })
}

async function instances (db: PgTestDatabase, count: number, options: { busyTimeoutMs?: number } = {}): Promise<PgEventLog[]> {
  return await Promise.all(Array.from({ length: count }, async () => await db.log({ busyTimeoutMs: options.busyTimeoutMs ?? 30_000 })))
}

t.test('while one instance\'s append is held open, later appends wait: no position is given or seen past it; released, all land in order', async t => {
  const db = await migratedDatabase(t, cluster)
  const [a, b, c] = await instances(db, 3)
  await a!.append([paid('o-1', 'd-1')])
  await b!.append([paid('o-2', 'd-2')])
  await withHold(db, 'events')
  const reader = follower(db, 'events')
  await reader.poll()
  t.same(reader.seen, [1, 2])

  const held = settled(a!.append([paid('hold-1', 'd-hold')]))
  await sessionsWaiting(db, 1, 'held')
  const later = [settled(b!.append([paid('o-3', 'd-3')])), settled(c!.append([paid('o-4', 'd-4')]))]
  await sessionsWaiting(db, 2, 'lock')
  const snapshots: Array<{ count: number, max: number }> = []
  for (let i = 0; i < 20; i++) {
    await reader.poll()
    snapshots.push(...await db.query<{ count: number, max: number }>('SELECT count(*)::bigint AS count, max(position) AS max FROM events'))
  }
  t.same(snapshots, snapshots.map(() => ({ count: 2, max: 2 })), 'every read saw the prefix 1..2')
  t.same(reader.seen, [1, 2], 'nothing past the held append is visible')
  t.notOk(held.done() || later.some(append => append.done()), 'nothing acked while the held transaction is open')

  await db.query('INSERT INTO test_release VALUES (true)')
  const [first] = await held.promise
  const rest = (await Promise.all(later.map(async append => await append.promise))).map(events => events[0]!.position)
  t.equal(first!.position, 3, 'the held append keeps the position it locked')
  t.same(rest.sort((x, y) => x - y), [4, 5], 'the waiting appends follow it')
  await reader.poll()
  t.same(reader.seen, [1, 2, 3, 4, 5], 'the follower saw every position, in order, none skipped')
  t.ok(await intactChain(db))
})

t.test('the test can fail: a follower of a sequence-numbered table under the same hold skips the held row', async t => {
  const db = await migratedDatabase(t, cluster)
  await db.query('CREATE TABLE seq_log (position bigserial PRIMARY KEY, stream_id text NOT NULL)')
  await withHold(db, 'seq_log')
  const reader = follower(db, 'seq_log')
  const holder = new pg.Client({ connectionString: db.url })
  holder.on('error', () => {})
  await holder.connect()
  t.teardown(async () => { await holder.end() })
  const heldInsert = holder.query("INSERT INTO seq_log (stream_id) VALUES ('hold-1')")
  await sessionsWaiting(db, 1, 'held')
  await db.query("INSERT INTO seq_log (stream_id) VALUES ('later')")
  await reader.poll()
  await db.query('INSERT INTO test_release VALUES (true)')
  await heldInsert
  await reader.poll()
  t.same(reader.seen, [2], 'position 1 committed after 2 was seen, so the follower never sees it')
  t.same((await db.query('SELECT position FROM seq_log ORDER BY position')).map(row => row.position), [1, 2])
})

t.test('a held append that is cancelled rolls back: the next append takes its position at once, and no reader stalls', async t => {
  const db = await migratedDatabase(t, cluster)
  const [a, b] = await instances(db, 2)
  await a!.append([paid('o-1', 'd-1')])
  await withHold(db, 'events')
  const reader = follower(db, 'events')
  const held = settled(a!.append([paid('hold-1', 'd-hold')]))
  const [pid] = await sessionsWaiting(db, 1, 'held')
  const waiting = settled(b!.append([paid('o-2', 'd-2')]))
  await sessionsWaiting(db, 1, 'lock')
  await db.query('SELECT pg_cancel_backend($1)', [pid])
  await t.rejects(held.promise, StoreUnavailableError, 'the cancelled append is refused (503): the gateway retries it')
  const [next] = await waiting.promise
  t.equal(next!.position, 2, 'the position the rolled-back append had is given to the next one')
  await reader.poll()
  t.same(reader.seen, [1, 2])
  const [again] = await a!.append([paid('o-3', 'd-3')])
  t.equal(again!.position, 3, 'the instance whose connection was cancelled appends again')
  t.ok(await intactChain(db))
})

t.test('an append that waits for the head lock past the busy timeout gets 503 and writes nothing', async t => {
  const db = await migratedDatabase(t, cluster)
  const [a] = await instances(db, 1)
  const [impatient] = await instances(db, 1, { busyTimeoutMs: 200 })
  await withHold(db, 'events')
  const held = settled(a!.append([paid('hold-1', 'd-hold')]))
  await sessionsWaiting(db, 1, 'held')
  await t.rejects(impatient!.append([paid('o-2', 'd-2')]), StoreUnavailableError)
  t.notOk(held.done(), 'the holder is still open')
  await db.query('INSERT INTO test_release VALUES (true)')
  const [first] = await held.promise
  t.equal(first!.position, 1)
  const [next] = await impatient!.append([paid('o-2', 'd-2')])
  t.equal(next!.position, 2, 'the refused append, retried, lands after')
  t.same((await db.query('SELECT stored FROM deliveries WHERE delivery_id = $1', ['d-2'])), [{ stored: 1 }], 'the refused attempt counted nothing')
})
