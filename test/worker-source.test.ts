import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import t from 'tap'
import { workerOptions, workerSource } from '../src/worker-source.js'

const report = new URL('./fixtures/worker-report.mjs', import.meta.url)
const importHook = new URL('./fixtures/worker-hook.mjs', import.meta.url).href
const requireHook = fileURLToPath(new URL('./fixtures/worker-hook.cjs', import.meta.url))

async function hooksIn (worker: Worker): Promise<unknown> {
  const [message] = await once(worker, 'message') as [unknown]
  await worker.terminate()
  return message
}

t.test('a compiled worker runs without the module hooks of NODE_OPTIONS, in either form; other options stay', async t => {
  const saved = process.env.NODE_OPTIONS
  t.teardown(() => { if (saved === undefined) delete process.env.NODE_OPTIONS; else process.env.NODE_OPTIONS = saved })
  // Quoted as tap writes it, and unquoted with a separate value.
  process.env.NODE_OPTIONS = `"--import=${importHook}" --max-old-space-size=512 --require ${requireHook}`

  const options = workerOptions(report)
  // A worker given its flags reads NODE_OPTIONS from its environment: with the flags alone (the old rule), both hooks run.
  t.same(await hooksIn(new Worker(report, { execArgv: options.execArgv })), { importHook: true, requireHook: true }, 'control: flags alone do not keep the hooks out')
  t.equal(options.env?.NODE_OPTIONS, '--max-old-space-size=512', 'the hooks are gone from its NODE_OPTIONS, the rest kept')
  t.same(await hooksIn(new Worker(report, options)), { importHook: false, requireHook: false }, 'and neither runs in it')
})

t.test('a compiled worker drops module hook flags from execArgv; a .ts one inherits everything', async t => {
  t.ok(process.execArgv.some(arg => arg.startsWith('--import=')) && process.execArgv.includes('--enable-source-maps'), 'precondition: tap runs this file with --import loaders and source maps')
  const { execArgv } = workerOptions(report)
  t.same(execArgv?.filter(arg => arg.startsWith('--import')), [], 'tap\'s --import loaders are not passed on')
  t.ok(execArgv?.includes('--enable-source-maps'), 'other flags are')
  t.same(workerOptions(new URL('./writer-worker.ts', import.meta.url)), { execArgv: undefined, env: undefined })
  t.equal(workerSource('file:///app/src/event-log/writer-thread.ts', 'writer-worker').entry.href, 'file:///app/src/event-log/writer-worker.ts')
  t.equal(workerSource('file:///app/dist/event-log/writer-thread.js', 'writer-worker').entry.href, 'file:///app/dist/event-log/writer-worker.js')
})
