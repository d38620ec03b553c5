import { AjvCompiler } from '@fastify/ajv-compiler'
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler'
import type { FastifyServerOptions } from 'fastify'

type Validate = ((data: unknown) => unknown) & { errors?: unknown }
type Compile<F> = (routeSchema: { schema: unknown, httpPart?: string }) => F

/**
 * Fastify's own compilers (Ajv for requests, fast-json-stringify for answers), each
 * schema compiled the first time its route is used rather than at start-up: compiling
 * every route's schemas cost about 0.35 s of CPU before "listening" (a CPU profile of
 * `serve` on a loaded 2-core machine), and most routes of a restarted instance (admin,
 * console, outbound) are not called for a while. The first
 * request of a route pays its own schemas, a few milliseconds once; tests call every
 * route, so a schema Ajv refuses still fails there.
 */
export function lazySchemaCompilers (): NonNullable<FastifyServerOptions['schemaController']> {
  const validators = AjvCompiler()
  const serializers = SerializerSelector()
  const compilersFactory = {
    buildValidator: (externalSchemas: unknown, options: unknown) => {
      const compile = (validators as (...args: unknown[]) => Compile<Validate>)(externalSchemas, options)
      return (routeSchema: { schema: unknown, httpPart?: string }) => {
        // Fastify lower-cases a headers schema's keys only for its own compiler: none of ours has one.
        if (routeSchema.httpPart === 'headers') throw new Error('lazySchemaCompilers: headers schemas are not supported')
        let compiled: Validate | undefined
        const validate: Validate = data => {
          compiled ??= compile(routeSchema)
          const valid = compiled(data)
          validate.errors = compiled.errors
          return valid
        }
        return validate
      }
    },
    buildSerializer: (externalSchemas: unknown, options: unknown) => {
      const compile = (serializers as (...args: unknown[]) => Compile<(data: unknown) => string>)(externalSchemas, options)
      return (routeSchema: { schema: unknown }) => {
        let compiled: ((data: unknown) => string) | undefined
        return (data: unknown) => (compiled ??= compile(routeSchema))(data)
      }
    }
  }
  // Fastify's types ask for Ajv's whole ValidateFunction; at run time it calls the function and reads `errors`.
  return { compilersFactory: compilersFactory as unknown as NonNullable<FastifyServerOptions['schemaController']>['compilersFactory'] }
}
