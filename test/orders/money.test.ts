import t from 'tap'
import { formatMinorUnits, parseDecimalAmount } from '../../src/orders/money.js'

t.test('decimal amounts parse exactly into minor units', async t => {
  t.equal(parseDecimalAmount('88.88', 'CNY'), 8888)
  t.equal(parseDecimalAmount('100', 'CNY'), 10000)
  t.equal(parseDecimalAmount('0.1', 'CNY'), 10)
  t.equal(parseDecimalAmount('1000', 'JPY'), 1000)
  t.equal(parseDecimalAmount('1.234', 'KWD'), 1234)
  // 0.1 + 0.2 style floats would round wrongly; string arithmetic cannot.
  t.equal(parseDecimalAmount('1234567.89', 'CNY'), 123456789)
})

t.test('bad amounts are refused with the field named', async t => {
  for (const bad of ['-1', '1e3', 'NaN', '', '1.', '.5', '01', '88.888', '9999999999999999', ' 1', '1,00', 'Infinity']) {
    t.throws(() => parseDecimalAmount(bad, 'CNY'), { statusCode: 400, message: /^amount: / }, bad)
  }
  t.throws(() => parseDecimalAmount('1.5', 'JPY'), /JPY allows at most 0 decimal places/)
  t.throws(() => parseDecimalAmount(100 as unknown as string, 'CNY'), /decimal string/)
})

t.test('minor units format back', async t => {
  t.equal(formatMinorUnits(8888, 'CNY'), '88.88')
  t.equal(formatMinorUnits(5, 'CNY'), '0.05')
  t.equal(formatMinorUnits(1000, 'JPY'), '1000')
})
