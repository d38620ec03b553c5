/**
 * Where and how to start a worker thread on the module `name` (without its
 * extension) that sits beside `moduleUrl`. Under tap's TypeScript loader the
 * caller is the .ts source, and the worker runs the .ts source too, with the
 * loader it inherits. Compiled, the worker runs the .js file without the
 * process's module hooks (--import and the like), which a compiled worker
 * does not need: under tap, a TypeScript compiler in every worker cost
 * seconds per start. Other flags (--cpu-prof, …) still apply.
 */
export function workerSource (moduleUrl: string, name: string): { entry: URL, execArgv: string[] | undefined } {
  const source = moduleUrl.endsWith('.ts')
  return { entry: new URL(`./${name}${source ? '.ts' : '.js'}`, moduleUrl), execArgv: source ? undefined : compiledExecArgv() }
}

/** The execArgv for a worker started on a compiled file (see workerSource). */
export function workerExecArgv (entry: URL): string[] | undefined {
  return /\.[cm]?js$/.test(entry.pathname) ? compiledExecArgv() : undefined
}

function compiledExecArgv (): string[] {
  return process.execArgv.filter(arg => !/^--(import|loader|experimental-loader|require)\b/.test(arg))
}
