import { execFile } from 'node:child_process'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { adminAuth, buildTestApp, testSecrets } from '../helpers.js'
import { phpWithCurl, requireSystemProgram } from '../system-programs.js'

// The seed's own sender: PHP with curl_* and http_build_query, run as a child process
// against the real app on a real port. Installed here when missing and possible (root with apt-get).
const sender = fileURLToPath(new URL('../fixtures/php/seed-sender.php', import.meta.url))

interface Run { code: number | null, stdout: string, stderr: string }

async function runSender (args: string[]): Promise<Run> {
  return await new Promise(resolve => {
    execFile('php', [sender, ...args], { timeout: 20_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null
      resolve({ code, stdout, stderr })
    })
  })
}

t.test('the PHP seed sender posts signed form callbacks the service accepts', async t => {
  // Not a skip: a missing PHP that cannot be installed here is a broken environment, said in one line.
  if (!await requireSystemProgram(t, phpWithCurl)) return
  const { app } = await buildTestApp(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/notify/generic`
  const secret = testSecrets.genericSecret
  const order = async (id: string) => {
    const res = await app.inject({ url: `/admin/orders/${id}`, headers: adminAuth })
    return res.statusCode === 200 ? res.json() : null
  }

  // URL-escaped characters and an empty value: the signature covers the decoded values, empties left out.
  const paid = await runSender([url, secret, 'order_id=PHP1', 'amount=100', 'status=1', 'notify_id=php-n-1', 'trade_no=T-PHP1', 'subject=Café & Co 100% +', 'refund_no='])
  t.equal(paid.stdout, 'success', paid.stderr)
  t.equal(paid.code, 0)
  t.match(await order('PHP1'), { status: 'paid', paidAmount: 10000, currency: 'CNY', gatewayTradeNo: 'T-PHP1' })

  const decimals = ['order_id=PHP2', 'amount=88.88', 'status=paid', 'notify_id=php-n-2']
  const first = await runSender([url, secret, ...decimals])
  t.equal(first.stdout, 'success', first.stderr)
  t.match(await order('PHP2'), { status: 'paid', paidAmount: 8888, duplicateCount: 0 })

  // The seed retries until it reads success: the same notify_id is acked again and counted once.
  const retry = await runSender([url, secret, ...decimals])
  t.equal(retry.stdout, 'success', retry.stderr)
  t.match(await order('PHP2'), { status: 'paid', paidAmount: 8888, duplicateCount: 1 })

  const refund = await runSender([url, secret, 'order_id=PHP2', 'amount=8.88', 'status=3', 'notify_id=php-n-3', 'refund_no=R-1'])
  t.equal(refund.stdout, 'success', refund.stderr)
  t.match(await order('PHP2'), { status: 'partially_refunded', paidAmount: 8888, refundedAmount: 888 })

  const wrong = await runSender([url, 'not-the-generic-secret-000', 'order_id=PHP3', 'amount=1.00', 'status=1', 'notify_id=php-n-4'])
  t.equal(wrong.code, 1)
  t.match(wrong.stderr, /HTTP 401/)
  t.equal(JSON.parse(wrong.stdout).error.code, 'bad_signature')
  t.equal(await order('PHP3'), null, 'nothing recorded for the refused callback')
})
