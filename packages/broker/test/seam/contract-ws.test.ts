/**
 * Seam contract of row W1 (seam/ws-close.ts): ws 8 answers a client's close frame from
 * receiverOnConclude by calling `websocket.close(code, reason)` once `_closeFrameReceived` is set,
 * and lib/stream.js (createWebSocketStream) pushes each message to the stream before, and calls
 * `ws.close()` from the stream's `_final`. Against a plain ws server and a ws client.
 */
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket, WebSocketServer, createWebSocketStream } from 'ws'
import * as seam from '../../src/seam/index.js'

let http: Server | undefined
let wss: WebSocketServer | undefined
afterEach(async () => {
  for (const c of wss?.clients ?? []) c.terminate()
  wss?.close()
  await new Promise((r) => (http ? http.close(r) : r(undefined)))
})

/** a ws server whose connections are wrapped in a stream (with the seam if `gated`), and a client connected to it */
async function pair(gated: boolean): Promise<{ client: WebSocket; ws: WebSocket; stream: Duplex }> {
  http = createServer()
  wss = new WebSocketServer({ server: http })
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  const accepted = new Promise<{ ws: WebSocket; stream: Duplex }>((resolve) =>
    wss!.on('connection', (ws) => {
      const stream = createWebSocketStream(ws)
      if (gated) seam.answerCloseFrameOnStreamEnd(ws, stream)
      resolve({ ws, stream })
    }),
  )
  const client = new WebSocket(`ws://127.0.0.1:${(http.address() as { port: number }).port}`)
  await once(client, 'open')
  return { client, ...(await accepted) }
}

describe('seam contract: ws', () => {
  it('W1 ws receiverOnConclude: stock, a message then a close frame: the close is answered at once, before the stream is read', async () => {
    const { client, stream } = await pair(false)
    stream.pause()
    const closed = once(client, 'close')
    client.send(Buffer.from('disconnect'))
    client.close(4001, 'bye')
    const [code] = (await closed) as [number]
    expect(code).toBe(4001)
    expect(stream.read()?.toString()).toBe('disconnect')
  })

  it('W1 ws receiverOnConclude -> websocket.close after _closeFrameReceived; lib/stream.js message -> push, _final -> ws.close(): with answerCloseFrameOnStreamEnd the stream gets the message, then its end, and the close frame is answered (with the client\'s code) only once the stream is ended [MQTT-4.1.0-2]', async () => {
    const { client, ws, stream } = await pair(true)
    const got: string[] = []
    stream.on('data', (d: Buffer) => got.push(d.toString()))
    const ended = once(stream, 'end')
    let answered: number | undefined
    const closed = once(client, 'close').then(([code]) => (answered = code as number))
    client.send(Buffer.from('disconnect'))
    client.close(4001, 'bye')
    await ended
    expect(got).toEqual(['disconnect'])
    expect(seam.closeFrameUnanswered(ws)).toBe(true)
    // nothing answers the close frame while the stream is not ended (a statement about what does not happen)
    await new Promise((r) => setTimeout(r, 200))
    expect(answered).toBeUndefined()
    stream.end()
    await closed
    expect(answered).toBe(4001)
    expect(seam.closeFrameUnanswered(ws)).toBe(false)
  })
})
