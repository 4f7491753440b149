/**
 * Contract of seam/idle-connection.ts with Aedes' Client and mqtt-packet's parser
 * (docs/internals.md rows C14, C15, C16, M15, M16, M17): what each connection gets and an idle one does
 * not use is dropped or shared, and the connection still ends, errs and parses as with Aedes'
 * own. Stock Aedes broker, raw MQTT clients; the close hooks are registered before
 * `broker.handle`, as the node's socket tracker does.
 */
import { once } from 'node:events'
import type { Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import type { Aedes, Client } from 'aedes'
import * as seam from '../../src/seam/index.js'
import { onStreamClose } from '../../src/listeners/close-hooks.js'
import { destroyOnError } from '../../src/listeners/tcp.js'
import { closeRaw, rawClient, rawSubscribe } from '../helpers/raw-mqtt.js'
import { closeStock, eventually, stockBroker } from './stock.js'

afterEach(async () => {
  await closeRaw()
  await closeStock()
})

type Internals = Client & { _eos: () => void; _parser: { _states: string[]; settings: Record<string, unknown>; listeners(e: string): unknown[] } }
const internals = (c: Client): Internals => c as Internals

/** a stock broker whose sockets have close hooks and destroyOnError before Aedes (as listeners/tcp.ts), and `install` as the 'idle' installer */
async function broker(install: (c: Client) => void) {
  return stockBroker({}, (b: Aedes) => {
    seam.installOnEachClient(b, 'idle', install)
    const handle = b.handle
    b.handle = (stream, req) => {
      onStreamClose(stream as Socket, () => {})
      stream.on('error', destroyOnError)
      return handle.call(b, stream, req)
    }
  })
}
const disconnected = (b: Aedes) => new Promise<string>((resolve) => b.once('clientDisconnect', (c: Client) => resolve(c.id)))

describe('seam contract: what an idle connection does not need', () => {
  it("C14 aedes client._eos: the cleanup of the Client's end-of-stream watch; the Client still closes when its socket closes", async () => {
    const counts: number[][] = []
    const s = await broker((c) => {
      const conn = c.conn as Socket
      const n = (): number[] => ['close', 'finish', 'end', 'error'].map((e) => conn.listenerCount(e))
      counts.push(n())
      expect(typeof internals(c)._eos).toBe('function')
      expect(seam.closeOnStreamClose(c)).toBe(true)
      counts.push(n())
    })
    await rawClient(s.port, { clientId: 'c13e' })
    // end-of-stream listened to all four; one 'close' listener is left (the close hooks)
    expect(counts[0]!.every((x, i) => x > counts[1]![i]!)).toBe(true)
    expect(counts[1]![0]).toBe(1)
    const gone = disconnected(s.broker)
    ;(s.clients[0]!.conn as Socket).destroy()
    expect(await gone).toBe('c13e')
  })

  it("C15 aedes: the socket's 'error' / 'end' listeners are emit.bind(client, 'error') / close.bind(client), the parser's 'error' one emit.bind; shared ones still err and close the Client", async () => {
    const found: number[] = []
    const s = await broker((c) => {
      seam.closeOnStreamClose(c)
      found.push(seam.shareSocketListeners(c), Number(seam.shareParserListener(c)), (c.conn as Socket).listenerCount('error'))
    })
    const a = await rawClient(s.port, { clientId: 'c14-a' })
    // destroyOnError and Aedes' 'error' listener: one listener doing both
    expect(found).toEqual([2, 1, 1])
    // a socket error: clientError with it, then the close
    const err = once(s.broker, 'clientError')
    const goneA = disconnected(s.broker)
    ;(s.clients[0]!.conn as Socket).destroy(new Error('c13 boom'))
    expect(((await err)[1] as Error).message).toBe('c13 boom')
    expect(await goneA).toBe('c14-a')
    // the peer's FIN: the Client closes on 'end'
    const b = await rawClient(s.port, { clientId: 'c14-b' })
    const goneB = disconnected(s.broker)
    b.raw.socket.end()
    expect(await goneB).toBe('c14-b')
    // a parse error (reserved packet type 0): clientError from the parser
    const c = await rawClient(s.port, { clientId: 'c14-c' })
    const perr = once(s.broker, 'clientError')
    c.raw.socket.write(Buffer.from([0x00, 0x00]))
    expect(((await perr)[0] as Client).id).toBe('c14-c')
    void a
  })

  it("C16 node EventEmitter _events of the Client and its parser: a prototype-free object; copied into a fast-mode one, the listeners still run ('connected' dequeues what came before CONNACK, 'packet', 'error')", async () => {
    const seen: Array<[boolean, boolean]> = []
    const s = await broker((c) => {
      const p = internals(c)._parser as unknown as object
      const events = (o: object) => (o as { _events: object })._events
      expect(Object.getPrototypeOf(events(c))).toBe(null)
      expect(Object.getPrototypeOf(events(p))).toBe(null)
      seen.push([seam.fastEvents(c), seam.fastEvents(p)])
      expect(Object.getPrototypeOf(events(c))).toBe(null)
      expect(Object.keys(events(c)).sort()).toEqual(['connected', 'error'])
      expect(Object.keys(events(p)).sort()).toEqual(['error', 'packet'])
    })
    // a PUBLISH in the CONNECT's write: queued by the parser's 'packet' listener, handled at 'connected'
    const { raw } = await rawClient(s.port, { clientId: 'c15', pipelined: [{ cmd: 'publish', topic: 'c15/t', payload: 'x', qos: 1, messageId: 9 }] })
    expect(seen).toEqual([[true, true]])
    await raw.until((ps) => ps.some((p) => p.cmd === 'puback' && p.messageId === 9), 5000, 'PUBACK of the pipelined PUBLISH')
    const err = once(s.broker, 'clientError')
    raw.socket.write(Buffer.from([0x00, 0x00]))
    expect(((await err)[0] as Client).id).toBe('c15')
  })

  it("M16 mqtt-packet parser._states: the four state names, one shared array; packets split across reads still parse", async () => {
    const shared: boolean[] = []
    const s = await broker((c) => {
      shared.push(seam.shareParserStates(c))
    })
    const { raw } = await rawClient(s.port, { clientId: 'm14' })
    expect(shared).toEqual([true])
    expect(internals(s.clients[0]!)._parser._states).toEqual(['_parseHeader', '_parseLength', '_parsePayload', '_newPacket'])
    expect(Object.isFrozen(internals(s.clients[0]!)._parser._states), 'the shared array').toBe(true)
    await rawSubscribe(raw, 'm14/t', 1)
    // a PUBLISH written one byte at a time, then two in one write
    const one = Buffer.from([0x32, 10, 0, 5, ...Buffer.from('m14/t'), 0, 7, 0x61])
    for (const byte of one) {
      raw.socket.write(Buffer.from([byte]))
      await new Promise((r) => setImmediate(r))
    }
    raw.socket.write(Buffer.concat([one, one]))
    await raw.until((ps) => ps.filter((p) => p.cmd === 'puback').length === 3 && ps.filter((p) => p.cmd === 'publish').length === 3, 5000, '3 PUBACKs and 3 deliveries')
  })

  it('M15 mqtt-packet parser.settings: the CONNECT packet after it is parsed; one shared settings object per version keeps v5 and 3.1.1 parsing', async () => {
    const s = await stockBroker({}, (b) => seam.lightenIdleConnections(b))
    const v5 = await rawClient(s.port, { clientId: 'm15-5', protocolVersion: 5 })
    const v4 = await rawClient(s.port, { clientId: 'm15-4' })
    const v5b = await rawClient(s.port, { clientId: 'm15-5b', protocolVersion: 5 })
    // Aedes emits 'connackSent' once the CONNACK is written: the client may see it first
    await eventually(() => (s.clients.every((c) => !('clientId' in internals(c)._parser.settings)) ? true : undefined), 3000, 'settings replaced')
    expect(s.clients.map((c) => internals(c)._parser.settings)).toEqual([{ protocolVersion: 5 }, { protocolVersion: 4 }, { protocolVersion: 5 }])
    expect(internals(s.clients[0]!)._parser.settings).toBe(internals(s.clients[2]!)._parser.settings)
    // v5 SUBSCRIBE with a Subscription Identifier parsed as v5; 3.1.1 as 3.1.1
    v5.raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'm15/t', qos: 1 }], properties: { subscriptionIdentifier: 7 } })
    await v5.raw.until((ps) => ps.some((p) => p.cmd === 'suback'))
    await rawSubscribe(v4.raw, 'm15/t', 1)
    v4.raw.send({ cmd: 'publish', topic: 'm15/t', payload: 'x', qos: 1, messageId: 2 })
    await v5.raw.until((ps) => ps.some((p) => p.cmd === 'publish' && p.properties?.subscriptionIdentifier === 7))
    await v4.raw.until((ps) => ps.some((p) => p.cmd === 'publish'))
    void v5b
  })

  it('M17 mqtt-packet parser.packet: a fresh Packet (cmd null, length -1) after each packet, read by parse(); the parser holds none between packets, packets split across reads and several in one read still parse', async () => {
    const lazy: boolean[] = []
    const s = await broker((c) => {
      lazy.push(seam.packetOnlyWhileReading(c))
    })
    const { raw } = await rawClient(s.port, { clientId: 'm17' })
    expect(lazy).toEqual([true])
    const parser = (s.clients[0] as unknown as { _parser: { packet: { cmd: unknown; length: number } } })._parser
    const idle = parser.packet
    expect(idle).toEqual({ cmd: null, length: -1 })
    expect(Object.isFrozen(idle), 'the shared stand-in').toBe(true)
    await rawSubscribe(raw, 'm17/t', 1)
    const one = Buffer.from([0x32, 10, 0, 5, ...Buffer.from('m17/t'), 0, 7, 0x61])
    // half a PUBLISH: the parser holds a Packet of its own for it
    raw.socket.write(one.subarray(0, 4))
    await eventually(() => (parser.packet !== idle ? true : undefined), 3000, 'a packet begun')
    expect(parser.packet.cmd).toBe('publish')
    raw.socket.write(one.subarray(4))
    raw.socket.write(Buffer.concat([one, one]))
    await raw.until((ps) => ps.filter((p) => p.cmd === 'puback').length === 3 && ps.filter((p) => p.cmd === 'publish').length === 3, 5000, '3 PUBACKs and 3 deliveries')
    expect(parser.packet).toBe(idle)
  })
})
