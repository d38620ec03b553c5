import t from 'tap'
import { startPgCluster } from '../pg-cluster.js'

t.test('a real PostgreSQL server starts for the test file, on a Unix socket, and answers', async t => {
  const cluster = await startPgCluster(t)
  const database = await cluster.createDatabase()
  const { rows } = await cluster.query<{ version: string, listen: string }>("SELECT version() AS version, current_setting('listen_addresses') AS listen", [], database)
  t.match(rows[0]!.version, /^PostgreSQL \d+/)
  if (process.env.PAYNOTIFY_TEST_DATABASE_URL === undefined) t.equal(rows[0]!.listen, '', 'no TCP listener')
})
