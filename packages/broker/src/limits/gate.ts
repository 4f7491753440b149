/**
 * Connection gates, run on every accepted socket before Aedes sees it:
 *
 * - `capGate` first of all (before the PROXY-protocol gate, which waits for
 *   the first bytes): max connections per node, counted from accept, so idle
 *   sockets that never send a byte count too;
 * - `addressGate` after the PROXY gate, whose `info.connDetails.ipAddress`
 *   is the real client address: max new connections per second per source
 *   address, and the failed-login block of an address.
 *
 * A refused socket is destroyed at once: no CONNECT is read, no password
 * hashed, nothing allocated beyond the socket itself.
 */
import type { Socket } from 'node:net'
import type { Logger } from '../log.js'
import type { ConnInfo, SocketGate } from '../listeners/tcp.js'
import { trustList } from '../listeners/proxy-protocol.js'
import { onStreamClose } from '../listeners/close-hooks.js'
import { addressKey, type FailureBackoff, KeyedRateLimiter } from './rate.js'

export interface GateOptions {
  maxConnections: number
  connectsPerSecond: number
  /** shared with the authenticate hook, which records failures */
  addressBackoff: FailureBackoff
  /** addresses or subnets of proxies: their own address is not limited per address (the client's, from PROXY protocol, is) */
  trustedProxies: readonly string[]
  log: Logger
  now?: () => number
}

export interface ConnectionLimits {
  /** first gate of every listener */
  capGate: SocketGate
  /** after the PROXY gate */
  addressGate: SocketGate
  readonly open: number
  readonly refused: { full: number; rate: number; blocked: number }
}

export function createConnectionLimits(opts: GateOptions): ConnectionLimits {
  const now = opts.now ?? Date.now
  const rate = new KeyedRateLimiter(opts.connectsPerSecond)
  const isProxy = trustList(opts.trustedProxies)
  const refused = { full: 0, rate: 0, blocked: 0 }
  let open = 0
  let lastFullLog = 0

  const onClose = (): void => {
    open--
  }

  const capGate: SocketGate = (socket, _info, next) => {
    if (opts.maxConnections > 0 && open >= opts.maxConnections) {
      refused.full++
      const t = now()
      if (t - lastFullLog > 10_000) {
        lastFullLog = t
        opts.log.warn({ max_connections: opts.maxConnections }, 'connection limit reached: refusing new connections')
      }
      socket.destroy()
      return
    }
    open++
    onStreamClose(socket, onClose)
    next()
  }

  function admitAddress(socket: Socket, info: ConnInfo): boolean {
    const real = info.connDetails?.ipAddress as string | undefined
    if (real === undefined && isProxy(socket.remoteAddress)) return true
    const key = addressKey(real ?? socket.remoteAddress)
    const t = now()
    if (opts.addressBackoff.blockedFor(key, t) > 0) {
      refused.blocked++
      return false
    }
    if (!rate.take(key, t)) {
      refused.rate++
      return false
    }
    return true
  }

  const addressGate: SocketGate = (socket, info, next) => {
    if (admitAddress(socket, info)) return next()
    opts.log.debug({ address: info.connDetails?.ipAddress ?? socket.remoteAddress }, 'connection refused: address over its connect rate or blocked after failed logins')
    socket.destroy()
  }

  return {
    capGate,
    addressGate,
    get open() {
      return open
    },
    refused,
  }
}
