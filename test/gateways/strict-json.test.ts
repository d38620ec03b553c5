import fc from 'fast-check'
import t from 'tap'
import { MalformedError } from '../../src/errors.js'
import { assertNoDuplicateKeys, parseStrictJson } from '../../src/gateways/strict-json.js'
import { checkProperty } from '../orders/arbitraries.js'

const refusal = (text: string, prefix?: string): string | null => {
  try {
    assertNoDuplicateKeys(text, prefix)
    return null
  } catch (error) {
    if (!(error instanceof MalformedError)) throw error
    return error.message
  }
}

t.test('a key repeated in one object is refused, named by its path', async t => {
  t.equal(refusal('{"amount":"999.00","amount":"10.00"}'), 'amount: is repeated')
  t.equal(refusal('{"a":1,"data":{"object":{"x":1,"x":2}}}'), 'data.object.x: is repeated')
  t.equal(refusal('{"items":[{"id":1},{"id":2,"id":3}]}'), 'items[].id: is repeated')
  t.equal(refusal('[{"a":1},{"a":1,"a":1}]'), '[].a: is repeated')
  t.equal(refusal('{"a":1,"\\u0061":2}'), 'a: is repeated', 'compared after unescaping')
  t.equal(refusal('{"a\\"b":1,"a\\"b":2}'), 'a"b: is repeated', 'an escaped quote inside a key')
  t.equal(refusal('{"amount":1}', 'resource'), null)
  t.equal(refusal('{"amount":{"total":1,"total":2}}', 'resource'), 'resource.amount.total: is repeated')
  t.equal(refusal('{ "a" : 1 ,\n\t"a"\r\n: 2 }'), 'a: is repeated', 'whitespace around the colon')
})

t.test('what only looks like a repeat is accepted', async t => {
  for (const text of [
    '{"a":1,"b":{"a":1},"c":[{"a":1},{"a":2}]}',
    '{"a":"a","b":"a"}',
    '{"a":"\\"a\\":1,\\"a\\":2","b":"{\\"x\\":1,\\"x\\":2}"}',
    '{"a\\\\":1,"a":2}',
    '{"a":["a","a"],"b":[["a"],{"a":1}]}',
    '["a","a",{"a":1}]',
    '"a"', '1', 'null', '{}', '[]'
  ]) {
    t.equal(refusal(text), null, text)
  }
})

/** A JSON value whose objects are lists of entries, so a key may appear twice. */
type Loose = null | number | string | Loose[] | { entries: Array<[string, Loose]> }

const key = fc.constantFrom('a', 'b', 'amount', '"', '\\', 'é', '{', ':', '')
const { loose } = fc.letrec<{ loose: Loose }>(tie => ({
  loose: fc.oneof({ depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(null, 1, 'a', '"a":1'),
    fc.array(tie('loose'), { maxLength: 3 }),
    fc.record({ entries: fc.array(fc.tuple(key, tie('loose')), { maxLength: 4 }) }))
}))

/** Serialises with each key spelled plainly or with \u escapes, and random whitespace. */
function serialise (value: Loose, escape: () => boolean): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value)
  if (Array.isArray(value)) return `[${value.map(v => serialise(v, escape)).join(',')}]`
  return `{${value.entries.map(([k, v]) => {
    const spelled = escape() ? `"${[...k].map(c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"` : JSON.stringify(k)
    return `${spelled} ${escape() ? '\n' : ''}:${serialise(v, escape)}`
  }).join(',')}}`
}

function hasRepeat (value: Loose): boolean {
  if (value === null || typeof value !== 'object') return false
  if (Array.isArray(value)) return value.some(hasRepeat)
  const keys = value.entries.map(([k]) => k)
  return new Set(keys).size !== keys.length || value.entries.some(([, v]) => hasRepeat(v))
}

t.test('refused exactly when some object repeats a key', async t => {
  await checkProperty(t, 'the scanner agrees with the tree it was written from', fc.property(loose, fc.infiniteStream(fc.boolean()), (value, coins) => {
    const text = serialise(value, () => coins.next().value as boolean)
    JSON.parse(text)
    return (refusal(text) !== null) === hasRepeat(value)
  }), 1000)
  await checkProperty(t, 'whatever JSON.stringify writes is accepted', fc.property(fc.jsonValue(), value => refusal(JSON.stringify(value)) === null), 500)
})

t.test('parseStrictJson: invalid JSON first, then repeats', async t => {
  t.throws(() => parseStrictJson('{"a":'), { message: 'body: is not valid JSON' })
  t.throws(() => parseStrictJson('{"a":1,"a":2}'), { message: 'a: is repeated' })
  t.same(parseStrictJson('{"a":1,"b":[1,2]}'), { a: 1, b: [1, 2] })
})
