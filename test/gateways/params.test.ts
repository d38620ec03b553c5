import fc from 'fast-check'
import t from 'tap'
import { MalformedError } from '../../src/errors.js'
import { parseForm, signingString } from '../../src/gateways/params.js'
import { checkProperty } from '../orders/arbitraries.js'

// parseForm and signingString take shortcuts on the hot path (plain components are not
// URI-decoded, keys are sorted without a comparator); these laws hold them to the
// WHATWG form encoding (URLSearchParams) and to the sort-filter-join the schemes define.

// Keys and values drawn so that encoding has work to do: spaces, +, %, &, =, non-ASCII, emoji.
const text = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.constantFrom('', ' ', '+', '%', '%20', '&', '=', 'a+b', '100%', 'Café & Co', '订单', '🙂', 'sign', 'sign_type')
)
const formFields = fc.uniqueArray(fc.tuple(text, text), { selector: ([key]) => key, maxLength: 10 })
// More than 16 signed fields: signingString sorts many names another way than a handful.
const manyFields = fc.uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 6 }), fc.string({ minLength: 1, maxLength: 6 })), { selector: ([key]) => key, minLength: 17, maxLength: 60 })

/** The definition: sorted by name (code units), empties and excluded names out, k=v joined by &. */
function referenceSigningString (fields: ReadonlyArray<[string, string]>, exclude: readonly string[]): string {
  return fields.filter(([key, value]) => value !== '' && !exclude.includes(key))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join('&')
}

t.test('parseForm reads back what URLSearchParams encodes, in order', async t => {
  await checkProperty(t, 'round trip', fc.property(formFields, fields => {
    const encoded = new URLSearchParams(fields).toString()
    const parsed = parseForm(encoded)
    return JSON.stringify([...parsed]) === JSON.stringify([...new URLSearchParams(encoded)])
  }), 300)
})

t.test('parseForm decodes + and percent escapes, keeps plain components and refuses bad escapes and repeats', async t => {
  t.same([...parseForm('a=1&b=x+y&c=%E8%AE%A2%E5%8D%95&d=&e&&f=a%2Bb')], [['a', '1'], ['b', 'x y'], ['c', '订单'], ['d', ''], ['e', ''], ['f', 'a+b']])
  t.throws(() => parseForm('a=%E8%AE'), MalformedError)
  t.throws(() => parseForm('a=%zz'), MalformedError)
  t.throws(() => parseForm('a=1&a=1'), MalformedError)
  t.throws(() => parseForm('a+b=1&a%20b=2'), MalformedError, 'a repeat is found after decoding')
})

t.test('signingString is the sorted, filtered k=v join', async t => {
  await checkProperty(t, 'matches the definition', fc.property(fc.oneof(formFields, manyFields), fc.constantFrom(['sign', 'sign_type'], ['sign'], []), (fields, exclude) => {
    return signingString(new Map(fields), exclude) === referenceSigningString(fields, exclude)
  }), 300)
  t.equal(signingString(new Map([['b', '2'], ['a', '1'], ['sign', 'x'], ['sign_type', 'y'], ['c', ''], ['B', '3']])), 'B=3&a=1&b=2')
})
