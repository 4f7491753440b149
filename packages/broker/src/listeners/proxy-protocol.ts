/**
 * PROXY protocol (HAProxy spec, v1 text and v2 binary) as a socket gate.
 *
 * HAProxy in front of the nodes sends a PROXY header first on every
 * connection, carrying the real client address. aedes-protocol-decoder parses
 * v1/v2 but believes any sender, so anybody could claim any address. Here:
 * - a header from an address in `trusted_proxies` (addresses or CIDR
 *   subnets) is parsed and the client's real address becomes
 *   `info.connDetails` (the shape aedes-protocol-decoder gives Aedes'
 *   `client.connDetails`);
 * - a header from any other address is refused: the connection is closed
 *   before a byte reaches Aedes;
 * - no header: plain MQTT (or HTTP for WebSocket), from anyone; a trusted
 *   proxy address may connect directly too (e.g. 127.0.0.1 on one machine).
 * A PROXY v2 LOCAL command (the proxy's own check) keeps the socket address.
 * The first byte decides: MQTT starts with a packet type (0x10 CONNECT),
 * HTTP with a method letter, v1 with 'P' and v2 with '\r'; only those two
 * wait for more bytes.
 */
import { BlockList, isIP, type Socket } from 'node:net'
import type { Logger } from '../log.js'
import type { SocketGate } from './tcp.js'
import { proxyV2TlsIdentity, tlsConnDetails } from '../auth/proxy-tls.js'

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])
const V1_PREFIX = Buffer.from('PROXY ')
/** a v1 header is at most 107 bytes including CRLF */
const V1_MAX = 107
/** addresses, ports and TLVs of a v2 header; more is not a header we accept */
const V2_MAX = 16 + 1024

export interface ConnDetails {
  ipAddress: string
  port: number
  ipFamily: 4 | 6
  serverIpAddress?: string
  serverPort?: number
  /** 0 = socket address, 1/2 = PROXY protocol version */
  isProxy: 0 | 1 | 2
  isWebsocket: boolean
  /** from a v2 SSL TLV (HAProxy terminated TLS): see auth/proxy-tls.ts */
  isTls?: boolean
  certAuthorized?: boolean
  cert?: { subject: { CN: string } }
}

type Parse =
  | { kind: 'more' }
  | { kind: 'none' }
  | { kind: 'invalid'; reason: string }
  | { kind: 'header'; length: number; version: 1 | 2; details?: Omit<ConnDetails, 'isWebsocket'> }

function startsLike(buf: Buffer, prefix: Buffer): boolean {
  const n = Math.min(buf.length, prefix.length)
  return buf.subarray(0, n).equals(prefix.subarray(0, n))
}

/** parse a PROXY header at the start of buf */
export function parseProxyHeader(buf: Buffer): Parse {
  if (buf.length === 0) return { kind: 'more' }
  if (buf[0] === 0x0d) {
    if (!startsLike(buf, V2_SIGNATURE)) return { kind: 'none' }
    if (buf.length < 16) return { kind: 'more' }
    const verCmd = buf[12]!
    if (verCmd >> 4 !== 2) return { kind: 'invalid', reason: 'PROXY v2: bad version' }
    const len = buf.readUInt16BE(14)
    if (16 + len > V2_MAX) return { kind: 'invalid', reason: 'PROXY v2: header too long' }
    if (buf.length < 16 + len) return { kind: 'more' }
    const cmd = verCmd & 0x0f
    const length = 16 + len
    if (cmd === 0) return { kind: 'header', length, version: 2 } // LOCAL
    if (cmd !== 1) return { kind: 'invalid', reason: 'PROXY v2: bad command' }
    const fam = buf[13]!
    const a = buf.subarray(16)
    if (fam === 0x11 && len >= 12) {
      const ip = (o: number): string => `${a[o]}.${a[o + 1]}.${a[o + 2]}.${a[o + 3]}`
      return {
        kind: 'header',
        length,
        version: 2,
        details: { ipAddress: ip(0), serverIpAddress: ip(4), port: a.readUInt16BE(8), serverPort: a.readUInt16BE(10), ipFamily: 4, isProxy: 2 },
      }
    }
    if (fam === 0x21 && len >= 36) {
      const ip = (o: number): string => {
        const parts: string[] = []
        for (let i = 0; i < 16; i += 2) parts.push(a.readUInt16BE(o + i).toString(16))
        return parts.join(':')
      }
      return {
        kind: 'header',
        length,
        version: 2,
        details: { ipAddress: ip(0), serverIpAddress: ip(16), port: a.readUInt16BE(32), serverPort: a.readUInt16BE(34), ipFamily: 6, isProxy: 2 },
      }
    }
    // UNSPEC, UDP or unix sockets: keep the socket address
    return { kind: 'header', length, version: 2 }
  }
  if (buf[0] === 0x50) {
    if (!startsLike(buf, V1_PREFIX)) return { kind: 'none' }
    const end = buf.indexOf('\r\n')
    if (end === -1) return buf.length >= V1_MAX ? { kind: 'invalid', reason: 'PROXY v1: no CRLF' } : { kind: 'more' }
    if (end + 2 > V1_MAX) return { kind: 'invalid', reason: 'PROXY v1: header too long' }
    const parts = buf.subarray(0, end).toString('latin1').split(' ')
    const length = end + 2
    if (parts[1] === 'UNKNOWN') return { kind: 'header', length, version: 1 }
    if ((parts[1] !== 'TCP4' && parts[1] !== 'TCP6') || parts.length !== 6) return { kind: 'invalid', reason: 'PROXY v1: malformed' }
    const [, proto, src, dst, sport, dport] = parts as [string, string, string, string, string, string]
    const family = proto === 'TCP4' ? 4 : 6
    const port = Number(sport)
    const serverPort = Number(dport)
    if (isIP(src) !== family || isIP(dst) !== family || !validPort(port) || !validPort(serverPort)) {
      return { kind: 'invalid', reason: 'PROXY v1: bad address' }
    }
    return { kind: 'header', length, version: 1, details: { ipAddress: src, port, serverIpAddress: dst, serverPort, ipFamily: family, isProxy: 1 } }
  }
  return { kind: 'none' }
}

function validPort(p: number): boolean {
  return Number.isInteger(p) && p >= 0 && p <= 65535
}

/** `::ffff:1.2.3.4` -> `1.2.3.4` */
export function plainAddress(addr: string | undefined): string {
  if (!addr) return ''
  return addr.startsWith('::ffff:') && isIP(addr.slice(7)) === 4 ? addr.slice(7) : addr
}

/** a matcher for `trusted_proxies` entries: addresses or CIDR subnets, IPv4 or IPv6 */
export function trustList(entries: readonly string[]): (addr: string | undefined) => boolean {
  const list = new BlockList()
  let any = false
  for (const raw of entries) {
    const [addr, bits] = raw.split('/') as [string, string | undefined]
    const family = isIP(addr)
    if (!family) throw new Error(`trusted_proxies: "${raw}" is not an IP address or subnet`)
    const type = family === 4 ? 'ipv4' : 'ipv6'
    if (bits === undefined) list.addAddress(addr, type)
    else list.addSubnet(addr, Number(bits), type)
    any = true
  }
  return (addr) => {
    if (!any || !addr) return false
    const a = plainAddress(addr)
    const family = isIP(a)
    return family !== 0 && list.check(a, family === 4 ? 'ipv4' : 'ipv6')
  }
}

/**
 * the details of one connection, field by field: `{ ...details, isWebsocket }` gave every
 * connection a hidden class of its own once V8 optimised it (~270 B per connection behind HAProxy,
 * issue 15, docs/performance.md)
 */
function connDetails(x: Omit<ConnDetails, 'isWebsocket'>, isWebsocket: boolean): ConnDetails {
  return { ipAddress: x.ipAddress, port: x.port, ipFamily: x.ipFamily, serverIpAddress: x.serverIpAddress, serverPort: x.serverPort, isProxy: x.isProxy, isWebsocket }
}

/** the real address of each gated socket, for listeners that hand Aedes an HTTP request (WebSocket) */
const details = new WeakMap<Socket, ConnDetails>()
export function connDetailsOf(socket: Socket | undefined | null): ConnDetails | undefined {
  return socket ? details.get(socket) : undefined
}

export interface ProxyGateOptions {
  trustedProxies: readonly string[]
  log: Logger
  /** close a socket that has not finished its header in this time */
  timeoutMs: number
  /** the listener is the WebSocket one (sets connDetails.isWebsocket) */
  websocket?: boolean
}

export function createProxyProtocolGate(opts: ProxyGateOptions): SocketGate {
  const trusted = trustList(opts.trustedProxies)
  return (socket, info, next) => {
    let buf: Buffer = Buffer.alloc(0)
    let done = false
    const isTrusted = trusted(socket.remoteAddress)
    const finish = (): void => {
      done = true
      clearTimeout(timer)
      socket.off('readable', onReadable)
      socket.off('close', onClose)
    }
    const refuse = (reason: string, level: 'warn' | 'debug' = 'warn'): void => {
      finish()
      opts.log[level]({ address: plainAddress(socket.remoteAddress), reason }, 'PROXY protocol: connection refused')
      socket.destroy()
    }
    const onClose = (): void => finish()
    const timer = setTimeout(() => refuse('no data before the connect timeout', 'debug'), opts.timeoutMs)
    const onReadable = (): void => {
      if (done) return
      let chunk: Buffer | null
      while ((chunk = socket.read() as Buffer | null) !== null) buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
      const r = parseProxyHeader(buf)
      if (r.kind === 'more') {
        // an untrusted sender is refused as soon as it is clearly sending a PROXY header
        const announced = (p: Buffer): boolean => buf.length >= p.length && startsLike(buf, p)
        if (!isTrusted && (announced(V2_SIGNATURE) || announced(V1_PREFIX))) return refuse('PROXY header from an address not in trusted_proxies')
        return
      }
      if (r.kind === 'none') {
        finish()
        if (buf.length > 0) socket.unshift(buf)
        return next()
      }
      if (!isTrusted) return refuse('PROXY header from an address not in trusted_proxies')
      if (r.kind === 'invalid') return refuse(r.reason)
      finish()
      if (r.details) {
        // v2 TLVs may carry the TLS client certificate HAProxy verified (trusted senders only)
        const d = connDetails(r.details, !!opts.websocket)
        if (r.version === 2) {
          const tls = tlsConnDetails(proxyV2TlsIdentity(buf.subarray(0, r.length)))
          for (const k of Object.keys(tls) as Array<keyof typeof tls>) (d as unknown as Record<string, unknown>)[k] = tls[k]
        }
        info.connDetails = d as unknown as Record<string, unknown>
        // the WebSocket listener reads them by socket (connDetailsOf); a TCP connection has them in info
        if (opts.websocket) details.set(socket, d)
      }
      const rest = buf.subarray(r.length)
      if (rest.length > 0) socket.unshift(rest)
      next()
    }
    socket.on('readable', onReadable)
    socket.on('close', onClose)
  }
}
