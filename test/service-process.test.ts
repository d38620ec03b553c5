import { join } from 'node:path'
import t from 'tap'
import { tempDir } from './helpers.js'
import { listeningAddress, startRefused, startService } from './service-process.js'

t.test('the listening line: plain text or a JSON log line, and nothing else', async t => {
  const cases: Array<[string, string | undefined]> = [
    ['paynotify listening on http://127.0.0.1:43125 (database /tmp/x.db)', 'http://127.0.0.1:43125'],
    ['paynotify listening on http://127.0.0.1:43125\r', 'http://127.0.0.1:43125'],
    ['{"level":30,"time":1,"msg":"paynotify listening on http://127.0.0.1:43125 (database /tmp/x.db)"}', 'http://127.0.0.1:43125'],
    ['{"level":30,"msg":"paynotify listening","address":"http://127.0.0.1:43125","db":"/tmp/x.db"}', 'http://127.0.0.1:43125'],
    ['{"level":30,"msg":"listening","url":"http://[::1]:43125"}', 'http://[::1]:43125'],
    ['{"level":30,"msg":"Server listening at http://127.0.0.1:43125"}', 'http://127.0.0.1:43125'],
    ['{"level":30,"msg":"event log chain verified","address":"http://127.0.0.1:43125"}', undefined],
    ['{"level":30,"msg":"incoming request","req":{"url":"/listening on http://x"}}', undefined],
    ['{"msg":"paynotify listening on http://127.0.0.1:4', undefined],
    ['paynotify generated secrets (stored in /tmp/paynotify.secrets.json, shown only now):', undefined],
    ['', undefined]
  ]
  for (const [line, address] of cases) t.equal(listeningAddress(line), address, line)
})

t.test('startService resolves on the listening line with the port the service chose', async t => {
  const service = await startService(t, { PATH: process.env.PATH ?? '', PAYNOTIFY_DB: join(tempDir(t), 'a.db'), PAYNOTIFY_HOST: '127.0.0.1', PAYNOTIFY_PORT: '0' })
  t.not(service.port, 0)
  t.equal((await fetch(`${service.url}/healthz`)).status, 200, 'and it answers there')
  t.same(await service.stop(), { code: 0, signal: null })
})

t.test('startService rejects, with the output, when the service exits before listening', async t => {
  await t.rejects(startService(t, { PATH: process.env.PATH ?? '', PAYNOTIFY_DB: join(tempDir(t), 'a.db'), PAYNOTIFY_PORT: 'eighty' }),
    { message: /exited \(2\) before listening:\n.*PAYNOTIFY_PORT must be integer/ })
})

t.test('startRefused reports a start that was not refused, and stops it', async t => {
  const outcome = await startRefused(t, { PATH: process.env.PATH ?? '', PAYNOTIFY_DB: join(tempDir(t), 'a.db'), PAYNOTIFY_HOST: '127.0.0.1', PAYNOTIFY_PORT: '0' })
  t.equal(outcome.listened, true)
  t.same(outcome.exit, { code: null, signal: 'SIGKILL' })
})
