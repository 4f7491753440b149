/**
 * The client certificate identity HAProxy passes in a PROXY protocol v2
 * header when it terminates TLS (`send-proxy-v2-ssl-cn` on the server line):
 * a PP2_TYPE_SSL TLV (0x20) whose `client` flags say a certificate was
 * presented, whose `verify` is 0 when HAProxy verified it against its
 * ca-file, and whose PP2_SUBTYPE_SSL_CN sub-TLV (0x22) holds the subject CN.
 *
 * For the PROXY gate: given the whole v2 header, it returns what to put in
 * `connDetails` (`certAuthorized`, `cert.subject.CN`) so the authenticate
 * hook can use the CN as the username (cert_cn_as_username). Only headers
 * from trusted_proxies may be read this way: anyone else could claim any CN.
 */

const PP2_TYPE_SSL = 0x20
const PP2_SUBTYPE_SSL_CN = 0x22
const PP2_CLIENT_SSL = 0x01
const PP2_CLIENT_CERT_CONN = 0x02
const PP2_CLIENT_CERT_SESS = 0x04

export interface ProxyTlsIdentity {
  /** HAProxy terminated TLS for this connection */
  ssl: boolean
  /** a client certificate was presented and HAProxy verified it */
  certAuthorized: boolean
  cn?: string
}

/** address block length of a v2 header by its family/protocol byte */
function addressLength(fam: number): number | undefined {
  switch (fam >> 4) {
    case 0x0:
      return 0 // UNSPEC
    case 0x1:
      return 12 // IPv4
    case 0x2:
      return 36 // IPv6
    case 0x3:
      return 216 // unix
    default:
      return undefined
  }
}

/** read the SSL identity from a complete PROXY v2 header; undefined when it carries none */
export function proxyV2TlsIdentity(header: Buffer): ProxyTlsIdentity | undefined {
  if (header.length < 16) return undefined
  const len = header.readUInt16BE(14)
  if (header.length < 16 + len) return undefined
  const addr = addressLength(header[13]!)
  if (addr === undefined || addr > len) return undefined
  let pos = 16 + addr
  const end = 16 + len
  while (pos + 3 <= end) {
    const type = header[pos]!
    const tlvLen = header.readUInt16BE(pos + 1)
    const value = pos + 3
    if (value + tlvLen > end) return undefined
    if (type === PP2_TYPE_SSL && tlvLen >= 5) {
      const client = header[value]!
      const verify = header.readUInt32BE(value + 1)
      let cn: string | undefined
      let sub = value + 5
      const subEnd = value + tlvLen
      while (sub + 3 <= subEnd) {
        const subType = header[sub]!
        const subLen = header.readUInt16BE(sub + 1)
        if (sub + 3 + subLen > subEnd) break
        if (subType === PP2_SUBTYPE_SSL_CN) cn = header.toString('utf8', sub + 3, sub + 3 + subLen)
        sub += 3 + subLen
      }
      const ssl = (client & PP2_CLIENT_SSL) !== 0
      const presented = (client & (PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS)) !== 0
      return { ssl, certAuthorized: ssl && presented && verify === 0, cn }
    }
    pos = value + tlvLen
  }
  return undefined
}

/** the connDetails fields the authenticate hook reads (auth/conn-details.ts certificateCn) */
export function tlsConnDetails(id: ProxyTlsIdentity | undefined): { isTls?: boolean; certAuthorized?: boolean; cert?: { subject: { CN: string } } } {
  if (!id) return {}
  return {
    isTls: id.ssl,
    certAuthorized: id.certAuthorized,
    ...(id.cn !== undefined ? { cert: { subject: { CN: id.cn } } } : {}),
  }
}
