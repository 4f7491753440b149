/**
 * MQTT over WebSocket (subprotocol "mqtt"), on an HTTP server at one path.
 * With socket gates (e.g. PROXY protocol) a plain TCP server in front runs
 * them on each socket, then hands it to the HTTP server.
 */
import { createServer, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Server as NetServer } from 'node:net'
import { WebSocketServer, createWebSocketStream, type WebSocket } from 'ws'
import type { Aedes } from 'aedes'
import type { SocketTracker } from '../ops/sockets.js'
import { batchWrites } from './write-batching.js'
import { destroyOnError, gatedServer, type SocketGate } from './tcp.js'
import { connDetailsOf } from './proxy-protocol.js'
import { answerCloseFrameOnStreamEnd, closeFrameUnanswered } from '../seam/index.js'

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
    // the client's close frame is answered once Aedes closed the connection (through seam A19's
    // gate, after a DISCONNECT it ends a session with is marked) [MQTT-4.1.0-2]
    answerCloseFrameOnStreamEnd(ws, stream)
    flushBeforeDestroy(stream, ws)
    stream.on('error', destroyOnError)
    const details = connDetailsOf(req.socket)
    if (details) (req as IncomingMessage & { connDetails?: unknown }).connDetails = details
    broker.handle(stream, req)
  })
  if (gates.length === 0) return { server, wss }
  const front = gatedServer(sockets, gates, (socket) => server.emit('connection', socket))
  return { server: front, wss }
}

/** longest a WebSocket closing with data still queued waits for it to be sent */
const FLUSH_MS = 1000

/**
 * Aedes destroys a connection right after it wrote its last packet: a server DISCONNECT with a
 * reason code [MQTT-3.14.0-1] (0x8B at shutdown, 0x8E, 0x98...). A WebSocket stream (ws
 * stream.js) sends one chunk at a time, the next once the socket took the previous, and
 * mqtt-packet writes a packet as several chunks: on destroy the later ones were still queued and
 * were dropped, so a WebSocket client got a cut packet and no reason. With data queued, destroy
 * now ends the stream (what is queued is sent, then the WebSocket close frame) and destroys it
 * once that is done, or after FLUSH_MS. So does a close after the client's close frame (seam W1):
 * ending the stream answers it with the client's code. An error, or nothing queued and no close
 * frame to answer, destroys at once, as before.
 */
function flushBeforeDestroy(stream: Duplex, ws: WebSocket): void {
  const destroy = stream.destroy.bind(stream)
  let ending = false
  stream.destroy = (err?: Error) => {
    if (err || ending || stream.destroyed || stream.writableEnded || (stream.writableLength === 0 && !closeFrameUnanswered(ws))) return destroy(err)
    ending = true
    const timer = setTimeout(() => destroy(), FLUSH_MS)
    timer.unref()
    stream.end(() => {
      clearTimeout(timer)
      destroy()
    })
    return stream
  }
}

/**
 * At shutdown, after the broker closed its clients: give the WebSockets still sending their last
 * packet (flushBeforeDestroy) up to FLUSH_MS to finish, then terminate what is left.
 */
export async function closeWebSockets(wss: WebSocketServer): Promise<void> {
  const end = Date.now() + FLUSH_MS
  while (wss.clients.size > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
  for (const client of wss.clients) client.terminate()
}
