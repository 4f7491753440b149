/**
 * MQTT over TCP: each accepted socket passes the gates in order (e.g. PROXY
 * protocol, per-address limits), then goes to Aedes. A gate calls `next` to
 * let the socket through, or destroys it.
 */
import { createServer, type Server, type Socket } from 'node:net'
import type { IncomingMessage } from 'node:http'
import type { Aedes } from 'aedes'
import type { SocketTracker } from '../ops/sockets.js'
import { batchWrites } from './write-batching.js'

/** what a gate may attach for Aedes (req.connDetails: real address from PROXY protocol) */
export type ConnInfo = Partial<IncomingMessage> & { connDetails?: Record<string, unknown> }
export type SocketGate = (socket: Socket, info: ConnInfo, next: () => void) => void

/** a TCP server whose sockets are tracked, write-coalesced and passed through the gates, then to `accept` */
export function gatedServer(sockets: SocketTracker, gates: SocketGate[], accept: (socket: Socket, info: ConnInfo) => void): Server {
  return createServer({ noDelay: true }, (socket) => {
    sockets.track(socket)
    batchWrites(socket)
    // a shared listener: a closure here would keep this function's context (info, next) for the
    // life of the connection (issue 15)
    socket.on('error', destroyOnError)
    const info: ConnInfo = {}
    let i = 0
    const next = (): void => {
      const gate = gates[i++]
      if (gate) gate(socket, info, next)
      else accept(socket, info)
    }
    next()
  })
}

/** an 'error' listener that destroys its stream (shared by every connection) */
export function destroyOnError(this: { destroy(): void }): void {
  this.destroy()
}

/**
 * `socket` stays half-open when its peer's FIN comes (Node's default ends the server's side at
 * once, as soon as the FIN is read): Aedes closes it instead (its 'end' listener closes the Client,
 * whose last step destroys the socket through seam row A19's gate), so a client that sends
 * DISCONNECT and its FIN right behind it (MQTT.js does) sees the close only once the node has read
 * the DISCONNECT and, when it ends the session, stored the end's mark [MQTT-4.1.0-2]. Set as the
 * socket goes to Aedes (Duplex `allowHalfOpen`, settable until 'end'): a FIN during the gates (a
 * PROXY header) or a TLS handshake still closes the socket at once.
 */
export function keepHalfOpen(socket: Socket): Socket {
  socket.allowHalfOpen = true
  return socket
}

export function createTcpListener(broker: Aedes, sockets: SocketTracker, gates: SocketGate[] = []): Server {
  return gatedServer(sockets, gates, (socket, info) => broker.handle(keepHalfOpen(socket), info.connDetails ? (info as IncomingMessage) : undefined))
}
