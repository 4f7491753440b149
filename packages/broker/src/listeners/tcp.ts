/** MQTT over TCP: each accepted socket goes straight to Aedes. */
import { createServer, type Server, type Socket } from 'node:net'
import type { Aedes } from 'aedes'
import type { SocketTracker } from '../ops/sockets.js'

export type SocketGate = (socket: Socket, accept: (socket: Socket) => void) => void

export function createTcpListener(broker: Aedes, sockets: SocketTracker, gate?: SocketGate): Server {
  const accept = (socket: Socket): void => {
    broker.handle(socket)
  }
  return createServer({ noDelay: true }, (socket) => {
    sockets.track(socket)
    socket.on('error', () => socket.destroy())
    if (gate) gate(socket, accept)
    else accept(socket)
  })
}
