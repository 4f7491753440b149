/** MQTT over WebSocket (subprotocol "mqtt"), on an HTTP server at one path. */
import { createServer, type Server } from 'node:http'
import { WebSocketServer, createWebSocketStream } from 'ws'
import type { Aedes } from 'aedes'
import type { SocketTracker } from '../ops/sockets.js'

export interface WsListener {
  server: Server
  wss: WebSocketServer
}

export function createWsListener(broker: Aedes, sockets: SocketTracker, path: string, maxPayload: number): WsListener {
  const server = createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' })
    res.end(`MQTT over WebSocket lives at ${path}\n`)
  })
  server.on('connection', (socket) => sockets.track(socket))
  const wss = new WebSocketServer({
    server,
    path,
    maxPayload,
    handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false),
  })
  wss.on('connection', (ws, req) => {
    const stream = createWebSocketStream(ws)
    stream.on('error', () => stream.destroy())
    broker.handle(stream, req)
  })
  return { server, wss }
}
