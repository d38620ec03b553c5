/**
 * Where to start a worker thread on the module `name` (without its
 * extension) that sits beside `moduleUrl`. Under tap's TypeScript loader the
 * caller is the .ts source, and the worker runs the .ts source too, with the
 * loader it inherits. Compiled, the worker runs the .js file (see workerOptions).
 */
export function workerSource (moduleUrl: string, name: string): { entry: URL } {
  return { entry: new URL(`./${name}${moduleUrl.endsWith('.ts') ? '.ts' : '.js'}`, moduleUrl) }
}

/**
 * The process flags and environment for a worker on `entry`. A .ts entry
 * inherits both (it needs the loader). A compiled one runs without the
 * process's module hooks (--import and the like), from its flags and from
 * NODE_OPTIONS alike, which a compiled worker does not need: under tap,
 * the TypeScript compiler in every worker cost seconds per start, and the
 * NODE_OPTIONS hooks alone took the writer's start from ~0.5 s to ~2 s.
 * Other flags (--cpu-prof, …) still apply.
 */
export function workerOptions (entry: URL): { execArgv: string[] | undefined, env: NodeJS.ProcessEnv | undefined } {
  if (!/\.[cm]?js$/.test(entry.pathname)) return { execArgv: undefined, env: undefined }
  const nodeOptions = process.env.NODE_OPTIONS
  return {
    execArgv: withoutModuleHooks(process.execArgv),
    // A worker given execArgv reads NODE_OPTIONS again, from process.env unless given an env.
    env: nodeOptions === undefined ? undefined : { ...process.env, NODE_OPTIONS: withoutModuleHooks(nodeOptionsWords(nodeOptions)).join(' ') }
  }
}

const hookFlag = /^"?(--(import|loader|experimental-loader|require)|-r)(=|"?$)/

/** The arguments without module hook flags, in either form: `--import=x` or `--import x`. */
function withoutModuleHooks (args: readonly string[]): string[] {
  const kept: string[] = []
  for (let i = 0; i < args.length; i++) {
    const match = hookFlag.exec(args[i]!)
    if (match === null) kept.push(args[i]!)
    else if (match[3] !== '=') i++
  }
  return kept
}

/** NODE_OPTIONS split as Node splits it: on spaces, except inside double quotes (tap quotes its --import). Words keep their quotes. */
function nodeOptionsWords (value: string): string[] {
  return value.match(/(?:"(?:\\.|[^"\\])*"|[^\s"])+/g) ?? []
}
