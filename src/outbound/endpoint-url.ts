import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { isIP } from 'node:net'
import ipaddr from 'ipaddr.js'
import { AppError, excerpt } from '../errors.js'

/** Longest endpoint URL accepted. */
export const maxEndpointUrlLength = 2048

/**
 * Whether an address may be connected to: only global unicast. Loopback,
 * private, link-local (cloud metadata at 169.254.169.254), unique-local,
 * carrier-grade NAT, multicast, reserved and unspecified are refused, and an
 * IPv4 address mapped into IPv6 is judged as the IPv4 address it is.
 */
export function isPublicAddress (address: string): boolean {
  if (!ipaddr.isValid(address)) return false
  let parsed = ipaddr.parse(address)
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) parsed = (parsed as ipaddr.IPv6).toIPv4Address()
  return parsed.range() === 'unicast'
}

export class EndpointUrlError extends AppError {
  constructor (message: string) {
    super(400, 'invalid_endpoint_url', message)
  }
}

/**
 * Checks an endpoint URL as given by an admin (SSRF): an absolute https URL
 * without credentials, whose host is, or resolves only to, public
 * addresses. `allowPrivate` (PAYNOTIFY_OUTBOUND_ALLOW_PRIVATE) also allows
 * http and loopback or private hosts, for tests and local development.
 * Returns the URL as the WHATWG parser normalises it (so `http://2130706433/`
 * is judged as the 127.0.0.1 it is).
 */
export async function checkEndpointUrl (text: string, allowPrivate: boolean): Promise<string> {
  if (text.length > maxEndpointUrlLength) throw new EndpointUrlError(`url: longer than ${maxEndpointUrlLength} characters`)
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new EndpointUrlError(`url: not an absolute URL: ${excerpt(text)}`)
  }
  if (url.protocol !== 'https:' && !(allowPrivate && url.protocol === 'http:')) {
    throw new EndpointUrlError(`url: must be https (got ${excerpt(url.protocol)}; PAYNOTIFY_OUTBOUND_ALLOW_PRIVATE=1 allows http for local development)`)
  }
  if (url.username !== '' || url.password !== '') throw new EndpointUrlError('url: must not carry a user name or password')
  if (url.hash !== '') throw new EndpointUrlError('url: must not have a #fragment')
  if (!allowPrivate) {
    const addresses = await resolveHost(hostOf(url))
    const refused = addresses.find(address => !isPublicAddress(address))
    if (refused !== undefined) {
      throw new EndpointUrlError(`url: ${excerpt(url.hostname)} is a loopback, private or reserved address (${refused}); PAYNOTIFY_OUTBOUND_ALLOW_PRIVATE=1 allows it for local development`)
    }
  }
  return url.href
}

/** The URL's host without IPv6 brackets. */
export function hostOf (url: URL): string {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
}

async function resolveHost (host: string): Promise<string[]> {
  if (isIP(host) !== 0) return [host]
  return await new Promise((resolve, reject) => {
    dnsLookup(host, { all: true, verbatim: true }, (error, addresses) => {
      if (error !== null) reject(new EndpointUrlError(`url: ${excerpt(host)} does not resolve (${error.code ?? 'error'})`))
      else resolve(addresses.map(entry => entry.address))
    })
  })
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void

/**
 * A `lookup` for http.request that refuses to connect to a host resolving
 * to any address isPublicAddress refuses, checked on the addresses the
 * socket then uses (so DNS that changes after the endpoint was created, or
 * rebinds between lookups, cannot reach an internal address). A host given
 * as an IP literal never reaches a lookup: the sender checks it itself.
 */
export function publicOnlyLookup (hostname: string, options: { all?: boolean }, callback: LookupCallback): void {
  dnsLookup(hostname, { all: true, verbatim: true }, (error, addresses) => {
    if (error !== null) {
      callback(error, [])
      return
    }
    const refused = addresses.find(entry => !isPublicAddress(entry.address))
    if (refused !== undefined || addresses.length === 0) {
      const refusal = Object.assign(new Error(`refused: ${hostname} resolves to a non-public address (${refused?.address ?? 'none'})`), { code: 'EADDRREFUSED' })
      callback(refusal, [])
      return
    }
    if (options.all === true) callback(null, addresses)
    else callback(null, addresses[0]!.address, addresses[0]!.family)
  })
}
