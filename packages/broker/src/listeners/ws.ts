/**
 * MQTT over WebSocket (subprotocol "mqtt"), on an HTTP server at one path.
 * With socket gates (e.g. PROXY protocol) a plain TCP server in front runs
 * them on each socket, then hands it to the HTTP server.
 */
import { createServer, type IncomingMessage } from 'node:http'
import type { Server as NetServer } from 'node:net'
import { WebSocketServer, createWebSocketStream } from 'ws'
import type { Aedes } from 'aedes'
import type { SocketTracker } from '../ops/sockets.js'
import { batchWrites } from './write-batching.js'
import { destroyOnError, gatedServer, type SocketGate } from './tcp.js'
import { connDetailsOf } from './proxy-protocol.js'

export interface WsListener {
  /** the server to listen on */
  server: NetServer
  wss: WebSocketServer
}

export function createWsListener(broker: Aedes, sockets: SocketTracker, path: string, maxPayload: number, gates: SocketGate[] = []): WsListener {
  const server = createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' })
    res.end(`MQTT over WebSocket lives at ${path}\n`)
  })
  // with gates the front server tracks each socket from its first byte
  if (gates.length === 0) server.on('connection', (socket) => {
    sockets.track(socket)
    batchWrites(socket)
  })
  const wss = new WebSocketServer({
    server,
    path,
    maxPayload,
    handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false),
  })
  wss.on('connection', (ws, req) => {
    const stream = createWebSocketStream(ws)
    stream.on('error', destroyOnError)
    const details = connDetailsOf(req.socket)
    if (details) (req as IncomingMessage & { connDetails?: unknown }).connDetails = details
    broker.handle(stream, req)
  })
  if (gates.length === 0) return { server, wss }
  const front = gatedServer(sockets, gates, (socket) => server.emit('connection', socket))
  return { server: front, wss }
}
