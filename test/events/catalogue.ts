import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import type { EventRow } from '../../src/event-log/read.js'

/** Where the catalogue lives, and the base of every schema's $id. */
export const eventsDir = fileURLToPath(new URL('../../events/', import.meta.url))
export const schemasDir = join(eventsDir, 'schemas')
export const samplesDir = join(eventsDir, 'samples')
export const schemaBase = 'https://paynotify.example/events/schemas/'

export interface Catalogue {
  files: string[]
  /** Validates one parsed NDJSON export line; returns null when valid, else the errors as text. */
  checkLine: (line: unknown) => string | null
  /** Validates a value against one schema file by name (e.g. PaymentSucceeded.v1.json). */
  check: (file: string, value: unknown) => string | null
}

/** Loads every schema in events/schemas into one strict ajv instance (strict mode also rejects schema typos). */
export function loadCatalogue (): Catalogue {
  const ajv = new Ajv2020({ strict: true, allErrors: true })
  const files = readdirSync(schemasDir).filter(f => f.endsWith('.json')).sort()
  for (const file of files) ajv.addSchema(JSON.parse(readFileSync(join(schemasDir, file), 'utf8')) as object)
  const validator = (file: string): ValidateFunction => {
    const validate = ajv.getSchema(schemaBase + file)
    if (validate === undefined) throw new Error(`no schema ${file}`)
    return validate
  }
  const check = (file: string, value: unknown): string | null => {
    const validate = validator(file)
    return validate(value) ? null : ajv.errorsText(validate.errors)
  }
  return { files, check, checkLine: line => check('ExportedEvent.v1.json', line) }
}

export interface Expectations {
  samples: Record<string, {
    file: string
    title: string
    story: string
    events: number
    orders: Record<string, Record<string, unknown>>
    checkpoints?: Array<{ afterPosition: number, orders: Record<string, Record<string, unknown>> }>
  }>
}

export function readExpectations (): Expectations {
  return JSON.parse(readFileSync(join(samplesDir, 'expected.json'), 'utf8')) as Expectations
}

/** The lines of a sample file, parsed. */
export function readSample (file: string): Array<Record<string, unknown>> {
  return readFileSync(join(samplesDir, file), 'utf8').split('\n').filter(line => line !== '').map(line => JSON.parse(line) as Record<string, unknown>)
}

/** An export line as the stored row it stands for (data and metadata as the log stores them). */
export function lineToRow (line: Record<string, unknown>): EventRow {
  return {
    position: line.position as number,
    stream_id: line.streamId as string,
    stream_version: line.streamVersion as number,
    type: line.type as string,
    schema_version: line.schemaVersion as number,
    data: JSON.stringify(line.data),
    metadata: JSON.stringify(line.metadata),
    recorded_at: line.recordedAt as string,
    hash: line.hash as string
  }
}
