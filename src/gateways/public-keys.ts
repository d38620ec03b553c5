import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto'
import { ConfigError } from '../config.js'

const base64Body = /^[A-Za-z0-9+/]+={0,2}$/

/**
 * Reads an RSA public key as a gateway's console hands it out: a PEM public
 * key (SPKI or PKCS#1), a PEM X.509 certificate, or the bare base64 DER body
 * Alipay's console shows. Literal `\n` sequences (a PEM squeezed onto one
 * line of an .env file) count as line breaks.
 */
export function parseRsaPublicKey (value: string, variable: string): { key: KeyObject, certificate: X509Certificate | null } {
  const text = value.replaceAll('\\n', '\n').trim()
  let key: KeyObject
  let certificate: X509Certificate | null = null
  try {
    if (text.includes('-----BEGIN CERTIFICATE-----')) {
      certificate = new X509Certificate(text)
      key = certificate.publicKey
    } else if (text.startsWith('-----BEGIN ')) {
      key = createPublicKey(text)
    } else {
      const body = text.replace(/\s+/g, '')
      if (!base64Body.test(body)) throw new Error('not PEM and not base64')
      key = createPublicKey({ key: Buffer.from(body, 'base64'), format: 'der', type: 'spki' })
    }
  } catch {
    throw new ConfigError(`invalid configuration: ${variable} is not an RSA public key (PEM, certificate, or base64 DER)`)
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new ConfigError(`invalid configuration: ${variable} is a ${key.asymmetricKeyType ?? 'non-RSA'} key; an RSA key is required`)
  }
  return { key, certificate }
}
