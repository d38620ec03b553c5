import { readdirSync, readFileSync } from 'node:fs'
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js'

// The catalogue ships with the package ("files" in package.json): events/ beside src/ and dist/.
const schemasDir = new URL('../../events/schemas/', import.meta.url)
const lineSchema = 'https://paynotify.example/events/schemas/ExportedEvent.v1.json'

let validateLine: ValidateFunction | undefined

/** Compiles the catalogue once, on first use (~0.1 s: only import, replay and verify of a file need it). */
function lineValidator (): ValidateFunction {
  if (validateLine !== undefined) return validateLine
  // allErrors stays off: the first error names the field, and a hostile line cannot make ajv collect thousands.
  // validateSchema off: checking our own schemas against the 2020-12 meta-schema doubled the compile
  // (135 → 68 ms of CPU, median of three); test/events/schemas.test.ts checks them, in strict mode too.
  const ajv = new Ajv2020({ strict: true, validateSchema: false })
  for (const file of readdirSync(schemasDir).filter(name => name.endsWith('.json')).sort()) {
    ajv.addSchema(JSON.parse(readFileSync(new URL(file, schemasDir), 'utf8')) as object)
  }
  const validate = ajv.getSchema(lineSchema)
  if (validate === undefined) throw new Error(`the event catalogue has no ${lineSchema}`)
  validateLine = validate
  return validate
}

/** An outside name (a property of the line) as a short, printable excerpt. */
function excerpt (name: unknown): string {
  const text = JSON.stringify(String(name))
  return text.length > 40 ? `${text.slice(0, 39)}…"` : text
}

/** One phrase naming the field, as a dotted path into the line: `data.amount must be >= 0`. */
function describe (error: ErrorObject, line: Record<string, unknown>): string {
  const path = error.instancePath.split('/').slice(1).map(part => part.replaceAll('~1', '/').replaceAll('~0', '~'))
  const field = path.length === 0 ? 'the line' : path.map(part => /^[A-Za-z_][A-Za-z0-9_]{0,39}$/.test(part) ? part : `[${excerpt(part)}]`).join('.')
  const params = error.params as Record<string, unknown>
  // Said the way the upcaster says it (orders/events.ts): a newer paynotify wrote this event.
  if (error.instancePath === '/schemaVersion' && error.keyword === 'const') return `unknown schema version ${String(line.schemaVersion)} of ${String(line.type)} (upgrade paynotify to read it)`
  if (error.keyword === 'additionalProperties') return `${field} has a field the schema does not allow: ${excerpt(params.additionalProperty)}`
  if (typeof params.propertyName === 'string') return `${field} has a field name ${excerpt(params.propertyName)} that ${error.message ?? 'is not allowed'}`
  if (error.keyword === 'required') return `${field} lacks ${excerpt(params.missingProperty)}`
  if (error.keyword === 'enum' || error.keyword === 'const') return `${field} ${error.message ?? 'is not allowed'}: ${JSON.stringify(params.allowedValues ?? params.allowedValue)}`
  return `${field} ${error.message ?? 'is invalid'}`
}

/**
 * Checks one parsed export line against events/schemas/ExportedEvent.v1.json
 * (which checks `data` against the schema of its type and version, and
 * `metadata` against EventMetadata). Returns null when it conforms, else one
 * phrase naming the first bad field. About 5 µs per line: a 200,000-event
 * import, which reads its file twice, went from 13.3 to 15.1 s of CPU
 * (median of three).
 */
export function checkExportedEvent (line: unknown): string | null {
  const validate = lineValidator()
  if (validate(line)) return null
  // The error ajv reports first is the innermost one; the `if`/`allOf` wrappers around it say nothing more.
  const error = validate.errors?.find(e => e.keyword !== 'if' && e.keyword !== 'allOf') ?? validate.errors?.[0]
  return error === undefined ? 'does not match the event catalogue' : describe(error, line as Record<string, unknown>)
}
