import { execFile } from 'node:child_process'
import { readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { Webhook } from 'standardwebhooks'
import { adminAuth, tempDir } from '../helpers.js'
import { cliPath } from '../service-process.js'
import { loadCatalogue } from '../events/catalogue.js'
import { callbackParams, createEndpoint, sendCallback, startOutboundApp } from './harness.js'
import { startReceiver } from './receiver.js'

const run = promisify(execFile)

const secretShape = /^whsec_[A-Za-z0-9+/]{43}=$/

/** The 32 bytes a Standard Webhooks secret stands for. */
function secretKey (secret: string): Buffer {
  return Buffer.from(secret.slice('whsec_'.length), 'base64')
}

/** The database's files as bytes (the WAL holds what has not been checkpointed yet). */
function databaseBytes (dbPath: string): Buffer {
  return Buffer.concat([dbPath, `${dbPath}-wal`].filter(path => existsSync(path)).map(path => readFileSync(path)))
}

t.test('an endpoint\'s secret: whsec_ and 32 random bytes, shown on creation only; every change is logged with its actor; no secret in the database or an export', async t => {
  const { app, store, dbPath } = await startOutboundApp(t)
  const created = await app.inject({ method: 'POST', url: '/admin/endpoints', headers: adminAuth, payload: { url: 'http://127.0.0.1:9/hooks', events: ['order.paid'], description: 'ERP' } })
  t.equal(created.statusCode, 201)
  const endpoint = created.json()
  t.match(endpoint, { url: 'http://127.0.0.1:9/hooks', events: ['order.paid'], enabled: true, description: 'ERP', disabledReason: null })
  t.match(endpoint.id, /^ep_[0-9a-f]{32}$/)
  t.match(endpoint.secret, secretShape, 'whsec_ + base64')
  t.equal(secretKey(endpoint.secret).length, 32, 'of 32 bytes')
  t.equal(`whsec_${secretKey(endpoint.secret).toString('base64')}`, endpoint.secret, 'canonical base64')
  t.doesNotThrow(() => new Webhook(endpoint.secret), 'standardwebhooks takes it as it is')

  const other = await createEndpoint(app, { url: 'http://127.0.0.1:9/other' })
  t.not(other.secret, endpoint.secret, 'each endpoint has its own secret')
  t.equal(other.events, null, 'no events: every type')

  const one = await app.inject({ url: `/admin/endpoints/${endpoint.id}`, headers: adminAuth })
  t.equal(one.statusCode, 200)
  t.notOk('secret' in one.json(), 'GET /admin/endpoints/:id has no secret')
  t.notOk(one.body.includes(endpoint.secret.slice('whsec_'.length)), 'nor its text anywhere')
  const list = await app.inject({ url: '/admin/endpoints', headers: adminAuth })
  t.equal(list.json().endpoints.length, 2)
  for (const shown of list.json().endpoints) t.notOk('secret' in shown, 'the list has no secrets')
  t.notOk(list.body.includes(endpoint.secret.slice('whsec_'.length)) || list.body.includes(other.secret.slice('whsec_'.length)))

  const patched = await app.inject({ method: 'PATCH', url: `/admin/endpoints/${endpoint.id}`, headers: adminAuth, payload: { description: 'ERP (primary)', events: ['order.refunded', 'order.paid'] } })
  t.equal(patched.statusCode, 200)
  t.match(patched.json(), { description: 'ERP (primary)', events: ['order.paid', 'order.refunded'] })
  t.notOk('secret' in patched.json())
  const rotated = await app.inject({ method: 'POST', url: `/admin/endpoints/${endpoint.id}/rotate-secret`, headers: adminAuth })
  t.equal(rotated.statusCode, 200)
  const rotatedSecret = rotated.json().secret as string
  t.match(rotatedSecret, secretShape)
  t.not(rotatedSecret, endpoint.secret)
  const deleted = await app.inject({ method: 'DELETE', url: `/admin/endpoints/${other.id}`, headers: adminAuth })
  t.equal(deleted.statusCode, 204)
  t.equal((await app.inject({ url: `/admin/endpoints/${other.id}`, headers: adminAuth })).statusCode, 404)

  const logged = store.sqlite.prepare("SELECT type, data FROM events WHERE stream_id = '~endpoints' ORDER BY position").all() as Array<{ type: string, data: string }>
  t.same(logged.map(row => row.type), ['EndpointChanged', 'EndpointChanged', 'EndpointChanged', 'EndpointChanged', 'EndpointChanged'])
  const changes = logged.map(row => JSON.parse(row.data))
  t.same(changes.map(change => [change.endpointId, change.change]), [
    [endpoint.id, 'created'], [other.id, 'created'], [endpoint.id, 'updated'], [endpoint.id, 'secret_rotated'], [other.id, 'deleted']
  ])
  for (const change of changes) {
    t.equal(change.actor.kind, 'admin', `${change.change}: by an admin`)
    t.match(change.actor, { requestId: String, address: '127.0.0.1' }, `${change.change}: the request that made it`)
  }
  t.match(changes[0].endpoint, { url: 'http://127.0.0.1:9/hooks', events: ['order.paid'], description: 'ERP', enabled: true })

  const exported = join(tempDir(t), 'export.ndjson')
  await run(process.execPath, [cliPath, 'export', '--db', dbPath, '--out', exported])
  const exportText = readFileSync(exported, 'utf8')
  const lines = exportText.split('\n').filter(line => line !== '').map(line => JSON.parse(line) as unknown)
  t.equal(lines.filter(line => (line as { type: string }).type === 'EndpointChanged').length, 5, 'the export holds the endpoint changes')
  const catalogue = loadCatalogue()
  t.same(lines.map(line => catalogue.checkLine(line)).filter(problem => problem !== null), [], 'each as events/schemas describes it')
  const bytes = databaseBytes(dbPath)
  t.ok(bytes.includes(Buffer.from(endpoint.id)), 'the byte search reads the live database (the endpoint id is there)')
  for (const secret of [endpoint.secret, other.secret, rotatedSecret]) {
    const text = secret.slice('whsec_'.length)
    t.notOk(exportText.includes(text), 'no secret in the export')
    t.notOk(bytes.includes(Buffer.from(text)), 'no secret as text in the database files')
    t.notOk(bytes.includes(secretKey(secret)), 'nor as raw bytes')
  }
  const sealed = store.sqlite.prepare('SELECT sealed FROM endpoint_secrets WHERE endpoint_id = ?').pluck().all(endpoint.id) as string[]
  t.equal(sealed.length, 2, 'both secrets of the rotated endpoint are kept, sealed')
  t.equal(store.sqlite.prepare('SELECT count(*) FROM endpoint_secrets WHERE endpoint_id = ?').pluck().get(other.id), 0, 'a deleted endpoint\'s secret is gone')
})

t.test('a rotated secret: both the old and the new secret sign (two v1, entries) and each verifies with standardwebhooks; once expired, the old one stops', async t => {
  const receiver = await startReceiver(t)
  const setup = await startOutboundApp(t)
  const { app, store, outbound } = setup
  const endpoint = await createEndpoint(app, { url: `${receiver.url}/hooks` }, receiver)
  const oldSecret = endpoint.secret

  await sendCallback(app, callbackParams('rot-1', 'paid', 10_000))
  await receiver.until(r => r.delivered.length === 2)
  for (const request of receiver.requests) {
    t.equal(request.signatures.length, 1, 'before rotation: one signature')
    t.same(request.verifiedBy, [oldSecret])
  }

  const before = Date.now()
  const res = await app.inject({ method: 'POST', url: `/admin/endpoints/${endpoint.id}/rotate-secret`, headers: adminAuth })
  const after = Date.now()
  t.equal(res.statusCode, 200)
  const rotation = res.json()
  t.equal(rotation.id, endpoint.id)
  t.match(rotation.secret, secretShape)
  const expires = Date.parse(rotation.previousSecretsExpireAt)
  t.ok(expires >= before + 24 * 3_600_000 && expires <= after + 24 * 3_600_000, 'the old secret signs for 24 h more')
  const newSecret = rotation.secret as string
  receiver.trust(newSecret)

  await sendCallback(app, callbackParams('rot-1', 'refund', 2_500))
  await receiver.until(r => r.delivered.length === 4)
  const during = receiver.requests.slice(2)
  t.same(during.map(request => request.message?.type), ['order.updated', 'order.partially_refunded'])
  for (const request of during) {
    t.equal(request.signatures.length, 2, 'two signatures')
    t.ok(request.signatures.every(entry => entry.startsWith('v1,')), 'both v1,')
    t.same(request.verifiedBy, [oldSecret, newSecret], 'standardwebhooks verifies it with the old secret and with the new')
    // Each signature on its own: one is the old secret's, the other the new one's.
    const verifiers = request.signatures.map(signature => [oldSecret, newSecret].filter(secret => {
      try {
        new Webhook(secret).verify(request.body, { 'webhook-id': request.id, 'webhook-timestamp': request.timestamp, 'webhook-signature': signature })
        return true
      } catch {
        return false
      }
    }))
    t.same(verifiers.flat().sort(), [oldSecret, newSecret].sort(), 'one signature per secret')
  }

  // 24 h pass: the rotated-out secret's expiry is moved into the past (the clock is not ours to turn),
  // and the dispatcher's 5 s cache of secrets is dropped as a rotation drops it.
  store.sqlite.prepare('UPDATE endpoint_secrets SET expires_at = ? WHERE endpoint_id = ? AND expires_at IS NOT NULL').run(new Date(Date.now() - 1000).toISOString(), endpoint.id)
  outbound.dispatcher.forget(endpoint.id)
  await sendCallback(app, callbackParams('rot-1', 'refund', 7_500))
  await receiver.until(r => r.delivered.length === 6)
  for (const request of receiver.requests.slice(4)) {
    t.equal(request.signatures.length, 1, 'after the overlap: one signature')
    t.same(request.verifiedBy, [newSecret], 'the new secret\'s only')
  }
  t.same(receiver.refused, [], 'every request verified')
  t.same(setup.errors, [])
})
