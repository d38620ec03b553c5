import SQLite from 'better-sqlite3'
import t from 'tap'
import { buildTestApp, formHeaders, signedForm } from '../helpers.js'

t.test('/healthz answers while the process is up', async t => {
  const { app } = await buildTestApp(t)
  const res = await app.inject({ url: '/healthz' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ok' })
})

t.test('/readyz: 200 when the database takes writes, 503 while another connection holds the write lock', async t => {
  const { app, store, dbPath } = await buildTestApp(t)
  const busyTimeout = store.sqlite.pragma('busy_timeout', { simple: true })
  const ready = await app.inject({ url: '/readyz' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ready' })

  const other = new SQLite(dbPath)
  t.teardown(() => { if (other.open) other.close() })
  other.exec('BEGIN IMMEDIATE')
  const locked = await app.inject({ url: '/readyz' })
  t.equal(locked.statusCode, 503)
  t.same(locked.json(), { error: { code: 'not_ready', message: 'database is not writable' } })
  t.equal((await app.inject({ url: '/healthz' })).statusCode, 200, 'the process is still up')
  t.equal(store.sqlite.pragma('busy_timeout', { simple: true }), busyTimeout, 'the probe restored the busy timeout')
  t.notOk(store.sqlite.inTransaction, 'the probe left no transaction open')

  other.exec('ROLLBACK')
  t.equal((await app.inject({ url: '/readyz' })).statusCode, 200, 'ready again once the lock is released')
  const callback = await app.inject({ method: 'POST', url: '/notify/generic', headers: formHeaders, payload: signedForm({ order_id: 'H-1', amount: '1', status: '1' }) })
  t.equal(callback.body, 'success', 'and callbacks are committed')
})

t.test('/openapi.json documents the notify, merchant and admin routes', async t => {
  const { app } = await buildTestApp(t)
  const res = await app.inject({ url: '/openapi.json' })
  t.equal(res.statusCode, 200)
  const doc = res.json() as { openapi: string, paths: Record<string, Record<string, { security?: unknown[], parameters?: Array<{ name: string }> }>> }
  t.match(doc.openapi, /^3\./)
  for (const path of ['/notify/{gateway}', '/orders', '/admin/orders', '/admin/orders/{id}', '/admin/orders/{id}/events', '/admin/events', '/healthz', '/readyz']) {
    t.ok(doc.paths[path] !== undefined, `${path} is documented`)
  }
  t.ok(doc.paths['/notify/{gateway}']?.post !== undefined)
  t.ok(doc.paths['/orders']?.post !== undefined)
  t.same(doc.paths['/admin/orders']?.get?.security, [{ adminToken: [] }])
  t.same(doc.paths['/orders']?.post?.security, [{ merchantToken: [] }])
  t.same(doc.paths['/admin/orders']?.get?.parameters?.map(p => p.name).sort(), ['anomaly', 'cursor', 'gateway', 'limit', 'needsReview', 'status'])
  t.notOk('/openapi.json' in doc.paths, 'the document does not list itself')
})
