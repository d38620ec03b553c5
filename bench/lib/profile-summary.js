import { readFileSync } from 'node:fs'

/**
 * Summarizes a V8 .cpuprofile (from `node --cpu-prof`): self time per
 * function and the share of samples whose stack passes through each
 * function (inclusive), so a report can say where the time goes.
 */
export function summarizeProfile (file, top = 25) {
  const profile = JSON.parse(readFileSync(file, 'utf8'))
  const nodes = new Map(profile.nodes.map(node => [node.id, node]))
  const parent = new Map()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const counts = new Map()
  for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1)
  const total = profile.samples.length
  const label = node => {
    const { functionName, url, lineNumber } = node.callFrame
    const where = url ? `${url.replace(/^.*\/(node_modules\/|dist\/|bench\/)/, '$1')}:${lineNumber + 1}` : ''
    return `${functionName || '(anonymous)'} ${where}`.trim()
  }
  const self = new Map()
  const inclusive = new Map()
  for (const [id, count] of counts) {
    const node = nodes.get(id)
    self.set(label(node), (self.get(label(node)) ?? 0) + count)
    const seen = new Set()
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const name = label(nodes.get(at))
      if (seen.has(name)) continue
      seen.add(name)
      inclusive.set(name, (inclusive.get(name) ?? 0) + count)
    }
  }
  // Self time by where the code lives: the service, each dependency, Node's own JavaScript, native work.
  const groups = new Map()
  for (const [id, count] of counts) {
    const node = nodes.get(id)
    const { url, functionName } = node.callFrame
    let group
    if (!url) group = functionName.startsWith('(') ? functionName : `native ${functionName}`
    else if (url.includes('node_modules/')) group = url.replace(/^.*node_modules\/((@[^/]+\/)?[^/]+).*$/, '$1')
    else if (url.startsWith('node:')) group = 'node internals'
    else group = url.replace(/^.*\/(dist|\.perf-[a-z]+|bench)\//, '$1/').replace(/\/[^/]+$/, '/')
    groups.set(group, (groups.get(group) ?? 0) + count)
  }
  const rank = map => [...map].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, count]) => ({ name, percent: Math.round(1000 * count / total) / 10 }))
  return { samples: total, groups: rank(groups), self: rank(self), inclusive: rank(inclusive) }
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const summary = summarizeProfile(process.argv[2], Number(process.argv[3] ?? 30))
  console.log(`samples: ${summary.samples}\n-- self time by group --`)
  for (const row of summary.groups) console.log(`${String(row.percent).padStart(5)}%  ${row.name}`)
  console.log('-- self --')
  for (const row of summary.self) console.log(`${String(row.percent).padStart(5)}%  ${row.name}`)
  console.log('-- inclusive --')
  for (const row of summary.inclusive) console.log(`${String(row.percent).padStart(5)}%  ${row.name}`)
}
