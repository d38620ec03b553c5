import fc from 'fast-check'
import t from 'tap'
import { AppError, MalformedError } from '../../src/errors.js'
import { alipaySigningBytes } from '../../src/gateways/alipay.js'
import { parseFormBytes } from '../../src/gateways/form-bytes.js'
import { checkFormParamCount, maxFormParams, parseFlatJson, parseForm, signingString } from '../../src/gateways/params.js'
import { checkProperty } from '../orders/arbitraries.js'

// parseForm and signingString take shortcuts on the hot path (plain components are not
// URI-decoded, keys are sorted without a comparator); these laws hold them to the
// WHATWG form encoding (URLSearchParams) and to the sort-filter-join the schemes define.

// Keys and values drawn so that encoding has work to do: spaces, +, %, &, =, non-ASCII, emoji.
const text = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.constantFrom('', ' ', '+', '%', '%20', '&', '=', 'a+b', '100%', 'Café & Co', '订单', '🙂', 'sign', 'sign_type', 'x&y=1', 'A&B')
)
const formFields = fc.uniqueArray(fc.tuple(text, text), { selector: ([key]) => key, maxLength: 10 })
// More than 16 signed fields: signingString sorts many names another way than a handful.
const manyFields = fc.uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 6 }), fc.string({ minLength: 1, maxLength: 6 })), { selector: ([key]) => key, minLength: 17, maxLength: 60 })

const excludedNames = ['sign', 'sign_type']
/** The parameter set a signature covers: no empty values, no excluded names, sorted by name (code units). */
function signedSet (fields: ReadonlyArray<readonly [string, string]>, exclude: readonly string[] = excludedNames): Array<[string, string]> {
  return fields.filter(([key, value]) => value !== '' && !exclude.includes(key))
    .map(([key, value]): [string, string] => [key, value])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
}

/** The definition: sorted by name, empties and excluded names out, k=v joined by & (nothing escaped). */
function plainJoin (fields: ReadonlyArray<readonly [string, string]>, exclude: readonly string[] = excludedNames): string {
  return signedSet(fields, exclude).map(([key, value]) => `${key}=${value}`).join('&')
}

/** The rule, written out independently of src: names of A-Z a-z 0-9 _ . - (1-64), no `&name=` inside a value. */
function unambiguous (fields: ReadonlyArray<readonly [string, string]>, exclude: readonly string[] = excludedNames): boolean {
  return signedSet(fields, exclude).every(([key, value]) => /^[\w.-]{1,64}$/.test(key) && !/&[\w.-]+=/.test(value))
}

/**
 * Reads a signing string back into its parameter set: split at every `&`
 * followed by a name and `=`, each piece at its first `=`. A left inverse of
 * signingString on the parameter sets it accepts is the proof that no two of
 * them share a string.
 */
function readBack (signed: string): Array<[string, string]> {
  if (signed === '') return []
  return signed.split(/&(?=[\w.-]+=)/).map(piece => {
    const eq = piece.indexOf('=')
    return [piece.slice(0, eq), piece.slice(eq + 1)]
  })
}

/** Field names and values over a tiny alphabet, so that two random sets often share a plain join. */
const tinyText = fc.string({ unit: fc.constantFrom('a', 'b', '&', '=', ' '), maxLength: 5 })
const tinyFields = fc.uniqueArray(fc.tuple(tinyText, tinyText), { selector: ([key]) => key, maxLength: 4 })
/** Realistic names with adversarial values: what an attacker can do with a real callback. */
const realName = fc.constantFrom('amount', 'notify_id', 'order_id', 'status', 'subject', 'timestamp', 'trade_no', 'a', 'b', 'sign_type')
const realFields = fc.uniqueArray(fc.tuple(realName, fc.oneof(tinyText, fc.constantFrom('Order', 'Tom & Jerry', '1&b=2', 'x&timestamp=1'))), { selector: ([key]) => key, maxLength: 6 })

t.test('parseForm reads back what URLSearchParams encodes, empty values as absent, in order', async t => {
  await checkProperty(t, 'round trip', fc.property(formFields, fields => {
    const encoded = new URLSearchParams(fields).toString()
    const parsed = parseForm(encoded)
    return JSON.stringify([...parsed]) === JSON.stringify([...new URLSearchParams(encoded)].filter(([, value]) => value !== ''))
  }), 300)
})

t.test('parseForm decodes + and percent escapes, keeps plain components and refuses bad escapes and repeats', async t => {
  t.same([...parseForm('a=1&b=x+y&c=%E8%AE%A2%E5%8D%95&d=&e&&f=a%2Bb')], [['a', '1'], ['b', 'x y'], ['c', '订单'], ['f', 'a+b']], 'd= and e are absent')
  t.throws(() => parseForm('a=%E8%AE'), MalformedError)
  t.throws(() => parseForm('a=%zz'), MalformedError)
  t.throws(() => parseForm('a=1&a=1'), MalformedError)
  t.throws(() => parseForm('a=&a=1'), MalformedError, 'a repeat is refused even when one of them is empty')
  t.throws(() => parseForm('a+b=1&a%20b=2'), MalformedError, 'a repeat is found after decoding')
})

t.test('an empty parameter is the same as none, in forms, form bytes and JSON', async t => {
  t.same([...parseForm('a=1&b=')], [...parseForm('a=1')])
  t.same([...parseFormBytes(Buffer.from('a=1&b=&c'))].map(([k, v]) => [k, v.toString()]), [['a', '1']])
  t.same([...parseFlatJson('{"a":"1","b":"","c":null}')], [['a', '1']])
  t.equal(signingString(parseForm('a=1&b=')), signingString(parseForm('a=1')), 'and they sign alike')
})

t.test(`a form body of more than ${maxFormParams} pieces is refused before any is decoded`, async t => {
  const atCap = Array.from({ length: maxFormParams }, (_, i) => `f${i}=`).join('&')
  t.doesNotThrow(() => parseForm(atCap), `${maxFormParams} pieces are taken`)
  const over = atCap + '&x'
  for (const [name, parse] of [['parseForm', () => parseForm(over)], ['parseFormBytes', () => parseFormBytes(Buffer.from(over))], ['checkFormParamCount', () => { checkFormParamCount(Buffer.from(over)) }]] as const) {
    const error = t.throws(parse, AppError, name) as AppError
    t.match(error, { statusCode: 413, code: 'too_many_parameters' }, name)
  }
  // Empty pieces count: they cost a scan each, and no signature covers them.
  t.throws(() => parseForm('a=1' + '&'.repeat(maxFormParams)), { code: 'too_many_parameters' })
  // Bad percent-encoding past the cap is not even looked at: the count comes first.
  t.throws(() => parseFormBytes(Buffer.from(over + '&bad=%zz')), { code: 'too_many_parameters' })
  t.throws(() => parseFlatJson(JSON.stringify(Object.fromEntries(Array.from({ length: maxFormParams + 1 }, (_, i) => [`f${i}`, 'x'])))), { code: 'too_many_parameters' })
})

t.test('signingString is the sorted, filtered k=v join, or a 400 for a set the join would make ambiguous', async t => {
  await checkProperty(t, 'matches the definition', fc.property(fc.oneof(formFields, manyFields), fc.constantFrom(['sign', 'sign_type'], ['sign'], []), (fields, exclude) => {
    if (!unambiguous(fields, exclude)) {
      try {
        signingString(new Map(fields), exclude)
        return false
      } catch (error) {
        return error instanceof MalformedError
      }
    }
    return signingString(new Map(fields), exclude) === plainJoin(fields, exclude)
  }), 300)
  t.equal(signingString(new Map([['b', '2'], ['a', '1'], ['sign', 'x'], ['sign_type', 'y'], ['c', ''], ['B', '3']])), 'B=3&a=1&b=2')
  t.equal(signingString(new Map([['subject', 'Tom & Jerry'], ['note', 'A&B'], ['q', 'x=1']])), 'note=A&B&q=x=1&subject=Tom & Jerry', '& and = in text are kept')
  t.throws(() => signingString(new Map([['subject', 'Order&timestamp=1']])), { statusCode: 400, message: /^subject: must not contain & followed by a name and =/ })
  t.throws(() => signingString(new Map([['a&b', '1']])), { statusCode: 400, message: /^a&b: is not a name a signature can cover/ })
  t.throws(() => signingString(new Map([['a=b', '1']])), MalformedError)
  t.throws(() => signingString(new Map([['', '1']])), MalformedError)
})

t.test('no two accepted parameter sets share a signing string', async t => {
  await checkProperty(t, 'the signing string reads back into the set it signs', fc.property(fc.oneof(tinyFields, realFields, formFields), fields => {
    let signed: string
    try {
      signed = signingString(new Map(fields))
    } catch (error) {
      return error instanceof MalformedError && !unambiguous(fields)
    }
    return JSON.stringify(readBack(signed)) === JSON.stringify(signedSet(fields))
  }), 1000)

  // The same law stated on pairs: q is another reading of p's plain join (cut at other `&`s
  // and `=`s), so the two share a plain join whenever q's names sort the same way.
  let collisions = 0
  const cuts = fc.array(fc.boolean(), { minLength: 40, maxLength: 40 })
  await checkProperty(t, 'two sets with one string are one set', fc.property(fc.oneof(tinyFields, realFields), cuts, cuts, (p, ampCuts, eqCuts) => {
    const join = plainJoin(p)
    const pieces: string[] = []
    let piece = ''
    let amp = 0
    for (const c of join) {
      if (c === '&' && ampCuts[amp++ % ampCuts.length]!) {
        pieces.push(piece)
        piece = ''
      } else {
        piece += c
      }
    }
    pieces.push(piece)
    const q: Array<[string, string]> = []
    for (const [i, text] of pieces.entries()) {
      // Cut at the first `=`, or at a later one.
      const eqs = [...text.matchAll(/=/g)].map(m => m.index)
      if (eqs.length === 0) return true
      const eq = eqs[eqCuts[i % eqCuts.length]! ? eqs.length - 1 : 0]!
      q.push([text.slice(0, eq), text.slice(eq + 1)])
    }
    if (new Set(q.map(([k]) => k)).size !== q.length || plainJoin(q) !== join) return true
    if (JSON.stringify(signedSet(q)) === JSON.stringify(signedSet(p))) return true
    collisions++
    const accepted = (fields: ReadonlyArray<readonly [string, string]>): boolean => {
      try {
        signingString(new Map(fields))
        return true
      } catch {
        return false
      }
    }
    return !(accepted(p) && accepted(q))
  }), 3000)
  t.ok(collisions > 100, `the law is not vacuous: ${collisions} pairs of different sets had one plain join, and one of each pair was refused`)

  // The attack itself: the field after another, moved into its value, keeps the plain join.
  await checkProperty(t, 'a field moved into its neighbour\'s value is refused', fc.property(realFields, fc.nat(), (fields, at) => {
    const set = signedSet(fields)
    if (set.length < 2 || !unambiguous(fields)) return true
    const i = at % (set.length - 1)
    const [[name, value], [nextName, nextValue]] = [set[i]!, set[i + 1]!]
    const moved = [...set.slice(0, i), [name, `${value}&${nextName}=${nextValue}`] as [string, string], ...set.slice(i + 2)]
    if (plainJoin(moved) !== plainJoin(set)) return false
    try {
      signingString(new Map(moved))
      return false
    } catch (error) {
      return error instanceof MalformedError && error.field === name
    }
  }), 1000)
})

t.test('Alipay\'s signing bytes follow the same rule, on the undecoded bytes', async t => {
  const bytes = (fields: Record<string, string>, charset: BufferEncoding = 'utf8'): Map<string, Buffer> =>
    new Map(Object.entries(fields).map(([k, v]) => [k, Buffer.from(v, charset)]))
  t.equal(alipaySigningBytes(bytes({ subject: 'Tom & Jerry', total_amount: '1.00' })).toString(), 'subject=Tom & Jerry&total_amount=1.00')
  t.throws(() => alipaySigningBytes(bytes({ subject: 'x&total_amount=1.00' })), { statusCode: 400, message: /^subject: must not contain/ })
  await checkProperty(t, 'alipaySigningBytes accepts exactly what signingString accepts, and agrees with it', fc.property(fc.oneof(tinyFields, realFields), fields => {
    const nonEmpty = fields.filter(([key]) => key !== '')
    let fromString: string | null
    let fromBytes: string | null
    try {
      fromString = signingString(new Map(nonEmpty))
    } catch {
      fromString = null
    }
    try {
      fromBytes = alipaySigningBytes(new Map(nonEmpty.map(([k, v]) => [k, Buffer.from(v)]))).toString()
    } catch {
      fromBytes = null
    }
    return fromString === fromBytes
  }), 500)
})
