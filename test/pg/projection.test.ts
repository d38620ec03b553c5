import fc from 'fast-check'
import t from 'tap'
import type { NewEvent } from '../../src/event-log/event-log.js'
import type { EndpointChangedData } from '../../src/orders/events.js'
import { PgProjection } from '../../src/projection/pg-projection.js'
import { openStore } from '../../src/store.js'
import { checkProperty, deliveriesArb, reportsArb, toNewEvent } from '../orders/arbitraries.js'
import { startPgCluster } from '../pg-cluster.js'
import { migratedDatabase, scope } from './pg-log.js'

// Issue 14: the order projection on PostgreSQL (projection/pg-projection.ts) writes what the SQLite
// projector writes: the same OrderProjector runs on both, and this holds it to that, table by table,
// for random orders, reports that join them, endpoints created, filtered, disabled and deleted
// between them, in any order and any grouping into batches.

const cluster = await startPgCluster(t)

let endpointChanges = 0
function endpointEvent (endpointId: string, change: EndpointChangedData['change'], events: string[] | null = null): NewEvent {
  const n = ++endpointChanges
  return {
    streamId: '~endpoints',
    type: 'EndpointChanged',
    data: { endpointId, change, endpoint: change === 'deleted' ? null : { url: `https://93.184.216.34/${endpointId}`, events, description: null, enabled: change !== 'disabled' }, reason: null, actor: { kind: 'admin', requestId: `r-${n}`, address: '127.0.0.1' } },
    metadata: { gateway: 'admin', deliveryId: `endpoint:${endpointId}:${change}:${n}`, receivedAt: '2026-12-07T12:00:00.000Z', requestId: `r${n}` }
  }
}

const endpointGroups: NewEvent[][] = [
  [endpointEvent('ep-all', 'created')],
  [endpointEvent('ep-paid', 'created', ['order.paid', 'order.refunded'])],
  [endpointEvent('ep-gone', 'created'), endpointEvent('ep-gone', 'deleted')],
  [endpointEvent('ep-off', 'created'), endpointEvent('ep-off', 'disabled')],
  [endpointEvent('ep-upd', 'created', ['order.failed']), endpointEvent('ep-upd', 'updated', null), endpointEvent('ep-upd', 'secret_rotated')]
]

const tables = {
  orders: 'SELECT * FROM orders ORDER BY order_id',
  projections: 'SELECT * FROM projections ORDER BY name',
  outbox: 'SELECT * FROM outbox ORDER BY seq',
  // next_attempt_at is each writer's own clock plus the first delay: the rest must match.
  outbound_deliveries: 'SELECT id, message_seq, endpoint_id, order_id, state, attempts, created_at, updated_at, last_status, last_error FROM outbound_deliveries ORDER BY id',
  endpoints: 'SELECT * FROM endpoints ORDER BY id',
  events: 'SELECT * FROM events ORDER BY position'
}

t.test('law: the same appends, in the same batches, project to the same tables on SQLite and on PostgreSQL', async t => {
  const clock = (): Date => new Date('2026-12-08T10:00:00.000Z')
  let runs = 0
  let firstDifference: { what: string, onPg: unknown, onSqlite: unknown } | undefined
  const property = fc.asyncProperty(
    fc.tuple(reportsArb(), deliveriesArb('A', 5), deliveriesArb('B', 5), fc.subarray(endpointGroups, { maxLength: 3 }), fc.boolean()).chain(([reports, a, b, endpoints, registered]) => {
      const all = [...reports, ...a, ...b].map(toNewEvent)
      const changes = endpoints.flat()
      return fc.tuple(
        fc.shuffledSubarray([...all, ...changes], { minLength: all.length + changes.length, maxLength: all.length + changes.length }),
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: all.length + changes.length, maxLength: all.length + changes.length }),
        fc.constant(registered)
      )
    }),
    async ([events, sizes, registered]) => {
      runs++
      const run = scope()
      const sqlite = await openStore(':memory:', { clock, outbox: { firstDelayMs: 0 } })
      run.teardown(async () => { await sqlite.close() })
      const db = await migratedDatabase(run, cluster)
      const projection = await PgProjection.open(db.pool({ max: 1 }), { outbox: { firstDelayMs: 0 } })
      const pgLog = await db.log({ clock, projection })
      try {
        // A registered order first, in some runs: every order's view changes once (unknown_order), in a batch of its own or not.
        const appends: NewEvent[][] = registered ? [[{ streamId: 'Z', type: 'OrderPlaced', data: { orderId: 'Z', amount: 100, currency: 'CNY' }, metadata: { gateway: 'merchant', deliveryId: 'order:Z', receivedAt: '2026-01-01T00:00:00.000Z', requestId: 'rz' } }]] : []
        for (let i = 0, k = 0; i < events.length; k++) {
          appends.splice(registered && k === 1 ? 0 : appends.length, 0, events.slice(i, i + (sizes[k] ?? 1)))
          i += sizes[k] ?? 1
        }
        for (const append of appends) {
          const [onPg, onSqlite] = [await pgLog.appendWithRepeats(append), await sqlite.eventLog.appendWithRepeats(append)]
          if (JSON.stringify(onPg) !== JSON.stringify(onSqlite)) {
            firstDifference = { what: 'an append\'s answer', onPg, onSqlite }
            return false
          }
        }
        for (const [table, sql] of Object.entries(tables)) {
          const onPg = await db.query(sql)
          const onSqlite = sqlite.sqlite.prepare(sql).all()
          if (JSON.stringify(onPg) !== JSON.stringify(onSqlite)) {
            firstDifference = { what: table, onPg, onSqlite }
            return false
          }
        }
        return true
      } finally {
        await run.close()
      }
    })
  await checkProperty(t, 'SQLite and PostgreSQL project alike', property, Number(process.env.PAYNOTIFY_FC_RUNS ?? 25))
  if (firstDifference !== undefined) t.same(firstDifference.onPg, firstDifference.onSqlite, `the first difference: ${firstDifference.what}`)
  t.ok(runs > 0)
})
