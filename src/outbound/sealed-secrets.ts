import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'

/**
 * Endpoint secrets are sealed with AES-256-GCM under a key derived (HKDF,
 * its own label) from the checkpoint signing key, which lives in the
 * secrets file or PAYNOTIFY_SIGNING_KEY and never in the database: a copy
 * of the database, or an export, does not reveal them. The endpoint id is
 * bound in as associated data, so a sealed secret moved to another endpoint
 * does not open.
 */
export class SecretSealer {
  readonly #key: Buffer

  constructor (signingKey: string) {
    this.#key = Buffer.from(hkdfSync('sha256', Buffer.from(signingKey, 'base64url'), Buffer.alloc(0), 'paynotify endpoint secrets v1', 32))
  }

  seal (endpointId: string, secret: string): string {
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv)
    cipher.setAAD(Buffer.from(endpointId))
    const sealed = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()])
    return `v1.${iv.toString('base64url')}.${sealed.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}`
  }

  /** The secret, or null when it was sealed under another key (the signing key changed) or for another endpoint. */
  open (endpointId: string, sealed: string): string | null {
    const [version, iv, text, tag] = sealed.split('.')
    if (version !== 'v1' || iv === undefined || text === undefined || tag === undefined) return null
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(iv, 'base64url'))
      decipher.setAAD(Buffer.from(endpointId))
      decipher.setAuthTag(Buffer.from(tag, 'base64url'))
      return Buffer.concat([decipher.update(Buffer.from(text, 'base64url')), decipher.final()]).toString('utf8')
    } catch {
      return null
    }
  }
}

/** A new endpoint secret, as Standard Webhooks has them: `whsec_` and base64 of 32 random bytes. */
export function generateEndpointSecret (): string {
  return `whsec_${randomBytes(32).toString('base64')}`
}
