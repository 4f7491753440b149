/**
 * What the connection tells about a client, read by authenticate: its source address (failed-login
 * backoff per address) and the CN of a verified client certificate. `client.connDetails` is the
 * aedes-protocol-decoder convention the PROXY protocol gate fills (docs/internals.md C18, outside
 * the seam).
 */
import type { Client } from 'aedes'
import { plainAddress } from '../listeners/proxy-protocol.js'

interface EndpointView {
  connDetails?: { ipAddress?: string; port?: number } | null
  conn?: { remoteAddress?: string; remotePort?: number }
  req?: { socket?: { remoteAddress?: string; remotePort?: number } }
}

/** the source address of a client: PROXY-protocol address when present, else the socket's */
export function clientAddress(client: unknown): string | undefined {
  const c = client as EndpointView
  return c.connDetails?.ipAddress ?? c.conn?.remoteAddress ?? c.req?.socket?.remoteAddress
}

/** `address:port` to log for a client (the real one from PROXY protocol, else the socket's), IPv4 without `::ffff:` */
export function clientEndpoint(client: unknown): string | undefined {
  const c = client as EndpointView
  if (c.connDetails?.ipAddress) return `${c.connDetails.ipAddress}:${c.connDetails.port ?? ''}`
  const s = c.req?.socket ?? c.conn
  if (s?.remoteAddress) return `${plainAddress(s.remoteAddress)}:${s.remotePort ?? ''}`
  return undefined
}

/**
 * The CN of a client certificate the TLS layer verified: the node's own TLS
 * listener (tls.TLSSocket, authorized), or HAProxy's via PROXY v2 (the
 * PROXY gate sets connDetails.certAuthorized and connDetails.cert.subject.CN).
 */
export function certificateCn(client: Client): string | undefined {
  const c = client as unknown as {
    connDetails?: { certAuthorized?: boolean; cert?: { subject?: { CN?: unknown } } } | null
    conn?: { authorized?: boolean; getPeerCertificate?: () => { subject?: { CN?: unknown } } }
  }
  const d = c.connDetails
  if (d?.certAuthorized === true && typeof d.cert?.subject?.CN === 'string') return d.cert.subject.CN
  const conn = c.conn
  if (conn?.authorized === true && typeof conn.getPeerCertificate === 'function') {
    const cn = conn.getPeerCertificate()?.subject?.CN
    if (typeof cn === 'string') return cn
  }
  return undefined
}
