import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import t from 'tap'
import type { TailLine } from '../../src/cli/tail.js'
import type { RecordedEvent } from '../../src/orders/events.js'
import { adminAuth, buildTestApp, tempDir, testSecrets } from '../helpers.js'
import { cli, localMachine, notify, runCli } from './toolkit-helpers.js'

interface Tail {
  out: string[]
  err: string[]
  /** Resolves once `predicate` holds for what was printed; rejects if tail exits first. */
  until: (predicate: () => boolean) => Promise<void>
  stop: (signal: NodeJS.Signals) => Promise<number | null>
}

/** Starts `paynotify tail` as a process and collects its lines as they come. */
function startTail (t: Parameters<typeof tempDir>[0], args: string[], env: Record<string, string>): Tail {
  const child = spawn(process.execPath, [cli, 'tail', '--interval', '20', ...args], { env: { PATH: process.env.PATH ?? '', ...env } })
  const out: string[] = []
  const err: string[] = []
  const checks = new Set<() => void>()
  let done = false
  const exited = new Promise<number | null>(resolve => {
    child.once('exit', code => {
      done = true
      for (const check of checks) check()
      resolve(code)
    })
  })
  createInterface({ input: child.stdout }).on('line', line => { out.push(line); for (const check of checks) check() })
  createInterface({ input: child.stderr }).on('line', line => { err.push(line); for (const check of checks) check() })
  t.teardown(() => { if (!done) child.kill('SIGKILL') })
  return {
    out,
    err,
    until: async predicate => await new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (predicate()) {
          checks.delete(check)
          resolve()
        } else if (done) {
          checks.delete(check)
          reject(new Error(`tail exited first:\n${out.join('\n')}\n${err.join('\n')}`))
        }
      }
      checks.add(check)
      check()
    }),
    stop: async signal => {
      child.kill(signal)
      return await exited
    }
  }
}

t.test('tail --to shows every callback as it arrives, repeats marked, with the order status after it; SIGTERM and Ctrl-C exit 0', async t => {
  const { env, variables } = await localMachine(t)
  const service = await buildTestApp(t, { env: variables })
  const url = await service.app.listen({ host: '127.0.0.1', port: 0 })
  // Recorded before tail starts: not shown, tail follows what arrives from now on.
  await notify(service, { order_id: 'before-1', amount: '1.00', status: '1', notify_id: 'b1' })

  const json = startTail(t, ['--to', url, '--json'], env)
  const text = startTail(t, ['--to', url], env)
  await json.until(() => json.err.some(line => line.includes(`following ${url}/ after position 1 (Ctrl-C to stop)`)))
  await text.until(() => text.err.some(line => line.includes('after position 1')))

  const run = await runCli(['simulate', '--to', url, '--gateway', 'stripe', '--orders', '6', '--duplicates', '0.5', '--refunds', '0.6', '--shuffle', '--seed', '11', '--prefix', 'tl'], env)
  t.equal(run.code, 0, run.stderr)
  const recorded = (service.store.sqlite.prepare('SELECT count(*) FROM events').pluck().get() as number) - 1
  await json.until(() => json.out.length >= recorded)
  await text.until(() => text.out.length >= recorded)

  const lines = json.out.map(line => JSON.parse(line) as TailLine)
  t.same(lines.map(line => line.position), Array.from({ length: recorded }, (_, i) => i + 2), 'one line per event, in log order, none before the start')
  t.ok(lines.every(line => line.gateway === 'stripe' && line.orderId.startsWith('tl-')))
  // Judged against the service's own timeline and order views.
  for (const orderId of new Set(lines.map(line => line.orderId))) {
    const timeline = (await service.app.inject({ url: `/admin/orders/${orderId}/events`, headers: adminAuth })).json() as { events: Array<{ position: number, outcome: string, duplicateOf?: number }> }
    const mine = lines.filter(line => line.orderId === orderId)
    t.same(mine.map(line => [line.position, line.repeat, line.duplicateOf]), timeline.events.map(e => [e.position, e.outcome === 'duplicate', e.duplicateOf ?? null]), `${orderId}: repeats as the service marks them`)
    const view = (await service.app.inject({ url: `/admin/orders/${orderId}`, headers: adminAuth })).json() as { status: string }
    t.equal(mine.at(-1)!.status, view.status, `${orderId}: the last line shows its status now`)
  }
  t.ok(lines.some(line => line.repeat), 'repeats are shown')
  t.ok(lines.some(line => line.type === 'PaymentRefunded' && line.gatewayStatus === 'charge.refunded'))
  t.match(text.out.find(line => line.includes(' repeat ')), /^\d{4}-\d\d-\d\dT[\d:.]+Z {2}#\d+ +stripe {5}tl-\d{4} +Payment\w+ +[a-z_.]+ {2}repeat {2}→ [a-z_]+$/)
  t.same(text.out.map(line => /#(\d+)/.exec(line)?.[1]), lines.map(line => String(line.position)), 'the text lines are the same events')

  t.equal(await json.stop('SIGTERM'), 0, 'SIGTERM: exit 0')
  t.equal(await text.stop('SIGINT'), 0, 'Ctrl-C: exit 0')
  t.match(json.err.at(-1), `tail: stopped after position ${recorded + 1}`)
})

t.test('tail follows the log by position: it says when the service went away, and resumes after the last line it showed', async t => {
  // A stand-in for the admin API that can drop every connection.
  const log: RecordedEvent[] = []
  const asked: number[] = []
  let down = false
  let droppedWhileDown = 0
  const event = (position: number, orderId: string, status: string): RecordedEvent => ({
    type: 'PaymentSucceeded',
    data: { orderId, amount: 100, currency: 'CNY', gateway: 'generic', transactionId: `T-${orderId}`, refundId: null, cumulative: false, gatewayStatus: status, gatewayTime: null },
    position,
    streamId: orderId,
    streamVersion: 1,
    schemaVersion: 1,
    metadata: { gateway: 'generic', deliveryId: `d-${position}`, receivedAt: '2026-12-01T10:00:00.000Z', requestId: `r${position}` },
    recordedAt: `2026-12-01T10:00:0${position}.000Z`,
    hash: ''
  })
  const server = createServer((request, response) => {
    if (request.headers.authorization !== `Bearer ${testSecrets.adminToken}`) return response.writeHead(401).end('{}')
    if (down) {
      droppedWhileDown++
      request.socket.destroy()
      return
    }
    const url = new URL(request.url ?? '/', 'http://x')
    if (url.pathname === '/admin/events') {
      const after = Number(url.searchParams.get('after'))
      asked.push(after)
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ events: log.filter(e => e.position > after).slice(0, Number(url.searchParams.get('limit'))), nextCursor: null }))
    } else {
      const orderId = decodeURIComponent(url.pathname.split('/')[3] ?? '')
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ orderId, events: log.filter(e => e.streamId === orderId) }))
    }
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  // The admin token from the secrets file beside PAYNOTIFY_DB, as the service wrote it.
  const dbPath = join(tempDir(t), 'paynotify.db')
  writeFileSync(join(dirname(dbPath), 'paynotify.secrets.json'), JSON.stringify({ adminToken: testSecrets.adminToken }), { mode: 0o600 })
  log.push(event(1, 'R1', 'paid\u001b[2J'))
  const tail = startTail(t, ['--to', url, '--after', '0'], { PAYNOTIFY_DB: dbPath })
  await tail.until(() => tail.out.length === 1)
  t.match(tail.out[0], /^2026-12-01T10:00:01\.000Z {2}#1 {5}generic {4}R1 +PaymentSucceeded {2}paid\?\[2J {2}→ paid$/, 'a control character from the log is not sent to the terminal')

  down = true
  await tail.until(() => droppedWhileDown > 0 && tail.err.some(line => /tail: \w+.*; reconnecting \(after position 1\)/.test(line)))
  log.push(event(2, 'R1', 'paid'), event(3, 'R2', 'paid'))
  const askedBefore = asked.length
  down = false
  await tail.until(() => tail.out.length === 3)
  t.match(tail.err.join('\n'), /tail: reconnected, following after position 1/)
  t.equal(asked[askedBefore], 1, 'the first request after the outage asks for what follows position 1')
  t.ok(asked.every((after, i) => i === 0 || after >= asked[i - 1]!), 'positions asked never go back')
  // R1's state carried across the outage: its second report of the same payment is a repeat.
  t.match(tail.out[1], /#2 {5}generic {4}R1 +PaymentSucceeded {2}paid {2}repeat {2}→ paid$/)
  t.match(tail.out[2], /#3 {5}generic {4}R2 +PaymentSucceeded {2}paid {2}→ paid$/)
  t.equal(await tail.stop('SIGTERM'), 0)

  // Without --after it starts at the end of the log, found by position whatever the gaps.
  log.push(event(5, 'R3', 'paid'), event(9, 'R4', 'paid'), event(23, 'R5', 'paid'))
  const fromNow = startTail(t, ['--to', url], { PAYNOTIFY_DB: dbPath })
  await fromNow.until(() => fromNow.err.some(line => line.includes(`following ${url}/ after position 23`)))
  log.push(event(24, 'R5', 'paid'))
  await fromNow.until(() => fromNow.out.length === 1)
  t.match(fromNow.out[0], /#24 /)
  t.equal(await fromNow.stop('SIGTERM'), 0)
})

t.test('tail without --to follows the local database; a wrong admin token is a usage error', async t => {
  const service = await buildTestApp(t)
  await notify(service, { order_id: 'L1', amount: '5.00', status: '0', notify_id: 'l1' })
  const tail = startTail(t, ['--db', service.dbPath, '--after', '0', '--json'], {})
  await tail.until(() => tail.out.length === 1)
  await notify(service, { order_id: 'L1', amount: '5.00', status: '1', notify_id: 'l2', trade_no: 'T-L1' })
  await notify(service, { order_id: 'L1', amount: '5.00', status: '1', notify_id: 'l2', trade_no: 'T-L1' })
  await tail.until(() => tail.out.length === 3)
  t.same(tail.out.map(line => JSON.parse(line) as TailLine).map(line => [line.type, line.repeat, line.status]), [
    ['PaymentPending', false, 'pending'],
    ['PaymentSucceeded', false, 'paid'],
    ['PaymentSucceeded', true, 'paid']
  ])
  t.equal(await tail.stop('SIGINT'), 0)

  const url = await service.app.listen({ host: '127.0.0.1', port: 0 })
  const denied = await runCli(['tail', '--to', url, '--admin-token', 'not-the-admin-token-000'], { PAYNOTIFY_DB: join(tempDir(t), 'none.db') })
  t.equal(denied.code, 2)
  t.match(denied.stderr, /answered 401: check --admin-token/)
  const nothing = await runCli(['tail', '--db', join(tempDir(t), 'none.db')], {})
  t.equal(nothing.code, 2)
  t.match(nothing.stderr, /no database at/)
})

t.test('an endpoint\'s change is shown with what changed and no order status', async t => {
  const { formatTailLine } = await import('../../src/cli/tail.js')
  const line: TailLine = { position: 7, time: '2026-12-07T12:00:00.000Z', gateway: 'admin', orderId: '~endpoints', type: 'EndpointChanged', gatewayStatus: 'created ep_0123', deliveryId: 'endpoint:ep_0123:r1', repeat: false, duplicateOf: null, status: null, replayOf: null }
  t.equal(formatTailLine(line), '2026-12-07T12:00:00.000Z  #7     admin      ~endpoints    EndpointChanged   created ep_0123')
  t.match(formatTailLine({ ...line, orderId: 'A1', type: 'PaymentSucceeded', gatewayStatus: '1', status: 'paid' }), /PaymentSucceeded {2}1 {2}→ paid$/)
})

t.test('a review note is shown in its order\'s stream with what it resolves, and the order\'s status', async t => {
  const service = await buildTestApp(t)
  await notify(service, { order_id: 'N1', amount: '5.00', status: '1', notify_id: 'n1-a', trade_no: 'T-N1a' })
  await notify(service, { order_id: 'N1', amount: '5.00', status: '1', notify_id: 'n1-b', trade_no: 'T-N1b' })
  const noted = await service.app.inject({ method: 'POST', url: '/admin/orders/N1/review-notes', headers: adminAuth, payload: { note: 'second charge refunded by hand' } })
  t.equal(noted.statusCode, 201, noted.body)
  const tail = startTail(t, ['--db', service.dbPath, '--after', '2'], {})
  await tail.until(() => tail.out.length === 1)
  t.match(tail.out[0], /#3 {5}admin {6}N1 +ReviewNoteRecorded {2}resolves duplicate_payment {2}→ paid$/)
  t.equal(await tail.stop('SIGINT'), 0)
})
