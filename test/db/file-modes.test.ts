import { existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { openStore, openThreadedStore } from '../../src/store.js'
import { tempDir } from '../helpers.js'
import { paid } from '../event-log/fixtures.js'

// Issue 10 §5: the database, its WAL and shared-memory files hold every raw callback; they were
// created 0644 (readable by every user) under the usual umask.

t.test('the database, its WAL and its -shm are created 0600 under a umask of 022, in both writer modes', async t => {
  const previous = process.umask(0o022)
  t.teardown(() => { process.umask(previous) })
  for (const mode of ['inline', 'thread'] as const) {
    // Its own directory, as PAYNOTIFY_DB outside ./data needs (made first: only ./data is created for you).
    const dbPath = join(tempDir(t), 'paynotify.db')
    const store = mode === 'inline' ? await openStore(dbPath) : await openThreadedStore(dbPath)
    await store.eventLog.append([paid('M1', `d-${mode}`)])
    for (const file of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) {
      t.ok(existsSync(file), `${mode}: ${file} exists while the store is open`)
      t.equal(statSync(file).mode & 0o777, 0o600, `${mode}: ${file.slice(dbPath.length) || 'the database'} is 0600`)
    }
    await store.close()
  }
})
