import t from 'tap'
import { generateSigningKey } from '../../src/event-log/checkpoint-signature.js'
import { generateEndpointSecret, SecretSealer } from '../../src/outbound/sealed-secrets.js'

t.test('an endpoint secret is whsec_ and the base64 of 32 random bytes', async t => {
  const secret = generateEndpointSecret()
  t.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/)
  t.equal(Buffer.from(secret.slice(6), 'base64').length, 32)
  t.not(generateEndpointSecret(), secret)
})

t.test('a sealed secret opens only under the same key and for the same endpoint, and does not show the secret', async t => {
  const key = generateSigningKey()
  const sealer = new SecretSealer(key)
  const secret = generateEndpointSecret()
  const sealed = sealer.seal('ep_1', secret)
  t.notMatch(sealed, secret.slice(6, 20), 'no part of the secret is in the sealed form')
  t.not(sealer.seal('ep_1', secret), sealed, 'a fresh nonce every time')
  t.equal(sealer.open('ep_1', sealed), secret)
  t.equal(new SecretSealer(key).open('ep_1', sealed), secret, 'the same signing key opens it after a restart')
  t.equal(sealer.open('ep_2', sealed), null, 'moved to another endpoint: does not open')
  t.equal(new SecretSealer(generateSigningKey()).open('ep_1', sealed), null, 'another signing key: does not open')
  const [version, iv, text, tag] = sealed.split('.')
  const flipped = Buffer.from(text!, 'base64url')
  flipped[0] = flipped[0]! ^ 1
  t.equal(sealer.open('ep_1', [version, iv, flipped.toString('base64url'), tag].join('.')), null, 'tampered: does not open')
  t.equal(sealer.open('ep_1', 'garbage'), null)
})
