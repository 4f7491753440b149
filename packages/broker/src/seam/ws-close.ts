/**
 * Row W1: the seam to ws 8's answer to a client's close frame (lib/websocket.js
 * receiverOnConclude), for MQTT over WebSocket (listeners/ws.ts). Contract test:
 * test/seam/contract-ws.test.ts.
 *
 * ws answers a close frame at once: receiverOnConclude sets `websocket._closeFrameReceived` and
 * calls `websocket.close(code, reason)` (the close frame back, then the socket's end), while the
 * messages that came in front of it (lib/stream.js pushes each to the stream Aedes reads) may not
 * be read yet. A client that sent DISCONNECT and its close frame (MQTT.js' end() over WebSocket)
 * saw the close before the node had read the DISCONNECT and marked its session's end, and could
 * connect on another node first [MQTT-4.1.0-2]: the WebSocket form of a FIN right behind a
 * DISCONNECT (listeners/tcp.ts keepHalfOpen). Here that call ends the stream's readable side
 * instead: Aedes reads what came before, then its 'end' listener closes the Client, whose close
 * destroys the stream through seam row A19's gate; listeners/ws.ts then ends the stream rather
 * than destroying it (`closeFrameUnanswered`), and lib/stream.js `_final` calls `ws.close()`,
 * which now answers with the client's code. One shared function per process, not a closure per
 * connection.
 */
import type { Duplex } from 'node:stream'
import { WebSocket } from 'ws'

const STREAM = Symbol('culex.wsStream')
/** the client's close frame, not answered yet: its code and reason as ws passed them */
const PEER_CLOSE = Symbol('culex.peerClose')

interface Gated {
  readyState: number
  /** set by ws (receiverOnConclude) once the client's close frame was read */
  _closeFrameReceived?: boolean
  [STREAM]: Duplex
  [PEER_CLOSE]?: [number | undefined, unknown]
}

const protoClose = WebSocket.prototype.close

/** the WebSocket's `close`: the first call after the client's close frame ends the stream instead */
function closeAfterStream(this: WebSocket, code?: number, reason?: string | Buffer): void {
  const g = this as unknown as Gated
  const peer = g[PEER_CLOSE]
  if (peer === undefined && g._closeFrameReceived === true && g.readyState === WebSocket.OPEN && !g[STREAM].destroyed) {
    g[PEER_CLOSE] = [code, reason]
    // EOF after the messages already pushed (lib/stream.js); its own push(null) at 'close' is then a no-op
    g[STREAM].push(null)
    return
  }
  // lib/stream.js _final's ws.close() (no code): the answer carries the client's code
  if (peer !== undefined && code === undefined) return protoClose.call(this, peer[0], peer[1] as Buffer | undefined)
  return protoClose.call(this, code, reason)
}

/** `ws`'s answer to the client's close frame waits until `stream` (createWebSocketStream(ws)) is ended */
export function answerCloseFrameOnStreamEnd(ws: WebSocket, stream: Duplex): void {
  const g = ws as unknown as Gated
  g[STREAM] = stream
  ws.close = closeAfterStream
}

/** the client's close frame came and is not answered yet: the stream should be ended (answering it), not destroyed */
export function closeFrameUnanswered(ws: WebSocket): boolean {
  const g = ws as unknown as Gated
  return g[PEER_CLOSE] !== undefined && g.readyState === WebSocket.OPEN
}
