import t from 'tap'
import { checkEndpointUrl, isPublicAddress } from '../../src/outbound/endpoint-url.js'

t.test('only global unicast addresses are public', async t => {
  for (const address of ['127.0.0.1', '127.8.9.10', '10.0.0.1', '172.16.5.4', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '255.255.255.255',
    '::1', '::', 'fe80::1', 'fc00::1', 'fd12:3456::1', '::ffff:127.0.0.1', '::ffff:10.1.2.3', 'ff02::1', 'not-an-ip']) {
    t.notOk(isPublicAddress(address), `${address} refused`)
  }
  for (const address of ['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111', '::ffff:8.8.8.8']) t.ok(isPublicAddress(address), `${address} allowed`)
})

t.test('an endpoint URL must be https, without credentials or fragment, on a public address', async t => {
  const refused = async (url: string, pattern: RegExp): Promise<void> => {
    await t.rejects(checkEndpointUrl(url, false), { statusCode: 400, code: 'invalid_endpoint_url', message: pattern }, url)
  }
  await refused('http://93.184.216.34/hook', /must be https/)
  await refused('ftp://93.184.216.34/hook', /must be https/)
  await refused('not a url', /not an absolute URL/)
  await refused('https://user:pw@93.184.216.34/hook', /user name or password/)
  await refused('https://93.184.216.34/hook#x', /fragment/)
  await refused('https://127.0.0.1/hook', /loopback, private or reserved address \(127\.0\.0\.1\)/)
  await refused('https://10.1.2.3/hook', /private or reserved/)
  await refused('https://169.254.169.254/latest/meta-data', /private or reserved/)
  await refused('https://[::1]:8443/hook', /private or reserved address \(::1\)/)
  await refused('https://[::ffff:7f00:1]/hook', /private or reserved/)
  // The WHATWG parser reads these as 127.0.0.1: judged as what they are, not as written.
  await refused('https://2130706433/hook', /\(127\.0\.0\.1\)/)
  await refused('https://0x7f.1/hook', /\(127\.0\.0\.1\)/)
  await refused('https://localhost/hook', /private or reserved address \((127\.0\.0\.1|::1)\)/)
  await refused(`https://example.test/${'a'.repeat(2100)}`, /longer than 2048/)
  t.equal(await checkEndpointUrl('https://93.184.216.34:8443/hook?x=1', false), 'https://93.184.216.34:8443/hook?x=1')
})

t.test('PAYNOTIFY_OUTBOUND_ALLOW_PRIVATE allows http and private hosts, nothing else', async t => {
  t.equal(await checkEndpointUrl('http://127.0.0.1:3001/hook', true), 'http://127.0.0.1:3001/hook')
  t.equal(await checkEndpointUrl('https://localhost/hook', true), 'https://localhost/hook')
  await t.rejects(checkEndpointUrl('ftp://127.0.0.1/', true), /must be https/)
  await t.rejects(checkEndpointUrl('http://u:p@127.0.0.1/', true), /user name or password/)
})
