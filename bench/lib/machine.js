import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { cpus, totalmem, release, platform } from 'node:os'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

function packageVersion (name, from = root) {
  // Read from node_modules directly: packages whose `exports` hide package.json cannot be resolved to it.
  try {
    return JSON.parse(readFileSync(join(from, 'node_modules', name, 'package.json'), 'utf8')).version
  } catch {
    return 'not installed'
  }
}

function gitCommit () {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim()
  } catch {
    return 'unknown'
  }
}

/** What the figures were measured on: hardware, OS, Node and the versions of every package involved. */
export function machineInfo () {
  const peers = join(root, 'bench', 'peers')
  return {
    date: new Date().toISOString(),
    commit: gitCommit(),
    cpu: `${cpus()[0]?.model ?? 'unknown'} × ${cpus().length}`,
    memory: `${Math.round(totalmem() / 2 ** 30)} GiB`,
    os: `${platform()} ${release()}`,
    node: process.version,
    packages: {
      fastify: packageVersion('fastify'),
      'better-sqlite3': packageVersion('better-sqlite3'),
      kysely: packageVersion('kysely'),
      autocannon: packageVersion('autocannon'),
      '@event-driven-io/emmett-sqlite': packageVersion('@event-driven-io/emmett-sqlite', peers),
      '@event-driven-io/emmett': packageVersion('@event-driven-io/emmett', peers),
      sqlite3: packageVersion('sqlite3', peers)
    }
  }
}

export { root }
