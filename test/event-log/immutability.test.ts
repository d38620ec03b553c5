import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import t from 'tap'
import type { NewEvent } from '../../src/event-log/event-log.js'
import { openStore } from '../../src/store.js'
import { tempDir } from '../helpers.js'

function paid (orderId: string, deliveryId: string): NewEvent {
  return {
    streamId: orderId,
    type: 'PaymentSucceeded',
    data: { orderId, amount: 100, currency: 'CNY', gateway: 'generic', transactionId: null, refundId: null, cumulative: false, gatewayStatus: '1', gatewayTime: null },
    metadata: { gateway: 'generic', deliveryId, receivedAt: '2026-01-01T00:00:00.000Z', requestId: deliveryId }
  }
}

t.test('UPDATE and DELETE on events are refused, from any connection', async t => {
  const path = join(tempDir(t), 'immutable.db')
  const store = await openStore(path)
  t.teardown(async () => { await store.close() })
  await store.eventLog.append([paid('A', 'd1'), paid('A', 'd2')])
  const snapshot = store.sqlite.prepare('SELECT * FROM events ORDER BY position').all()

  t.throws(() => store.sqlite.prepare("UPDATE events SET data = '{}' WHERE position = 1").run(), /events are immutable: UPDATE refused/)
  t.throws(() => store.sqlite.prepare('DELETE FROM events WHERE position = 2').run(), /events are immutable: DELETE refused/)
  t.throws(() => store.sqlite.prepare('DELETE FROM events').run(), /DELETE refused/)
  // REPLACE deletes the conflicting row without firing DELETE triggers: a trigger of its own refuses it.
  t.throws(() => store.sqlite.prepare("REPLACE INTO events SELECT position, stream_id, stream_version, type, schema_version, '{}', metadata, recorded_at, hash FROM events WHERE position = 1").run(),
    /events are immutable: REPLACE refused/)
  t.throws(() => store.sqlite.prepare("INSERT OR REPLACE INTO events SELECT 3, stream_id, stream_version, type, schema_version, '{}', metadata, recorded_at, hash FROM events WHERE position = 2").run(),
    /REPLACE refused/, 'a new position over an existing stream version')
  t.throws(() => store.sqlite.prepare('UPDATE OR REPLACE events SET position = 2 WHERE position = 1').run(), /UPDATE refused/)
  t.throws(() => store.sqlite.prepare("INSERT INTO events SELECT * FROM events WHERE position = 1 ON CONFLICT (position) DO UPDATE SET data = '{}'").run(), /UPDATE refused|REPLACE refused/)

  const other = new SQLite(path)
  t.teardown(() => other.close())
  t.throws(() => other.prepare("UPDATE events SET hash = 'x'").run(), /UPDATE refused/)
  t.throws(() => other.prepare('DELETE FROM events WHERE position = 1').run(), /DELETE refused/)
  t.throws(() => other.prepare('REPLACE INTO events SELECT * FROM events WHERE position = 1').run(), /REPLACE refused/)
  t.same(store.sqlite.prepare('SELECT * FROM events ORDER BY position').all(), snapshot, 'the log is unchanged')
})

t.test('a second writer cannot take a stream version or a position', async t => {
  const path = join(tempDir(t), 'unique.db')
  const store = await openStore(path)
  t.teardown(async () => { await store.close() })
  await store.eventLog.append([paid('A', 'd1')])
  const copyRow = (position: number, version: string) =>
    `INSERT INTO events SELECT ${position}, stream_id, ${version}, type, schema_version, data, metadata, recorded_at, hash FROM events WHERE position = 1`
  t.throws(() => store.sqlite.prepare(copyRow(99, 'stream_version')).run(), { code: /^SQLITE_CONSTRAINT/ }, 'same stream version')
  t.throws(() => store.sqlite.prepare(copyRow(1, 'stream_version + 1')).run(), { code: /^SQLITE_CONSTRAINT/ }, 'same position')
  // With the insert trigger out of the way, the constraints themselves still hold.
  store.sqlite.exec('DROP TRIGGER events_no_replace')
  t.throws(() => store.sqlite.prepare(copyRow(99, 'stream_version')).run(), { code: 'SQLITE_CONSTRAINT_UNIQUE' })
  t.throws(() => store.sqlite.prepare(copyRow(1, 'stream_version + 1')).run(), { code: 'SQLITE_CONSTRAINT_PRIMARYKEY' })
})
