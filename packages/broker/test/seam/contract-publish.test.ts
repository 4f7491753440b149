/**
 * Contract of seam/mqtt-publish.ts (docs/internals.md row M11): the PUBLISH packets Culex writes
 * itself are byte for byte what mqtt-packet's writeToStream writes (checked against its
 * `generate`, so an upgrade that changes the encoding fails here), a QoS 0 message is encoded
 * once for all its subscribers, and what is not a 3.1.1 PUBLISH within range is left to
 * mqtt-packet. Then through a stock Aedes broker with the seam's write wrapper installed: raw
 * subscribers parse what arrives, with its flags.
 */
import { afterEach, describe, expect, it } from 'vitest'
import mqttPacket from 'mqtt-packet'
import * as seam from '../../src/seam/index.js'
import { writePublish } from '../../src/seam/mqtt-publish.js'
import { closeRaw, rawClient, rawSubscribe } from '../helpers/raw-mqtt.js'
import { closeStock, stockBroker } from './stock.js'

afterEach(async () => {
  await closeRaw()
  await closeStock()
})

/** a stream that keeps what is written to it */
function sink(): { chunks: Buffer[]; write(b: Buffer): boolean; bytes(): Buffer } {
  const chunks: Buffer[] = []
  return { chunks, write: (b) => (chunks.push(b), true), bytes: () => Buffer.concat(chunks) }
}
const encoded = (p: Record<string, unknown>): Buffer => {
  const s = sink()
  expect(writePublish(p as { cmd: string }, s)).toBe(true)
  return s.bytes()
}
const generated = (p: Record<string, unknown>): Buffer => mqttPacket.generate(p as unknown as mqttPacket.Packet)

describe('seam contract: PUBLISH encoding (mqtt-publish.ts)', () => {
  it('M11 the bytes of mqtt-packet 9 writeToStream for MQTT 3.1.1 PUBLISH [MQTT-2.2.2-2] [MQTT-3.3.1-9]: QoS, DUP, RETAIN, each Remaining Length size, string and Buffer topics and payloads, packet ids', () => {
    const payloads: unknown[] = [undefined, Buffer.alloc(0), 'text ü', Buffer.alloc(100, 1), Buffer.alloc(200, 2), Buffer.alloc(2048, 3), Buffer.alloc(2049, 4), Buffer.alloc(20_000, 5), Buffer.alloc(2_100_000, 6)]
    const topics: unknown[] = ['a', 'sensors/ünïcode/€', '', Buffer.from('buf/topic'), 't'.repeat(300)]
    let n = 0
    for (const qos of [0, 1, 2]) {
      for (const payload of payloads) {
        for (const topic of topics) {
          for (const flags of [{}, { retain: true }, { dup: true }, { retain: true, dup: true }]) {
            const p = { cmd: 'publish', topic, payload, qos, ...flags, ...(qos > 0 ? { messageId: [0, 1, 255, 256, 65_535][n % 5] } : {}) }
            expect(encoded(p).equals(generated(p)), JSON.stringify({ ...p, payload: typeof payload === 'string' ? payload : (payload as Buffer | undefined)?.length })).toBe(true)
            n++
          }
        }
      }
    }
  })

  it('M11 a QoS 0 message is encoded once for all its subscribers (same payload Buffer, topic and flags); another topic or RETAIN gets its own bytes; a large payload is written after the header, not copied', () => {
    const payload = Buffer.from('shared')
    const [a, b, c, d] = [sink(), sink(), sink(), sink()]
    writePublish({ cmd: 'publish', topic: 'x/y', payload, qos: 0 }, a)
    writePublish({ cmd: 'publish', topic: 'x/y', payload, qos: 0 }, b)
    expect(b.chunks[0]).toBe(a.chunks[0])
    writePublish({ cmd: 'publish', topic: 'x/z', payload, qos: 0 }, c)
    expect(c.bytes().equals(generated({ cmd: 'publish', topic: 'x/z', payload, qos: 0 }))).toBe(true)
    writePublish({ cmd: 'publish', topic: 'x/z', payload, qos: 0, retain: true }, d)
    expect(d.bytes().equals(generated({ cmd: 'publish', topic: 'x/z', payload, qos: 0, retain: true }))).toBe(true)
    const big = Buffer.alloc(10_000, 7)
    const e = sink()
    writePublish({ cmd: 'publish', topic: 'big', payload: big, qos: 1, messageId: 9 }, e)
    expect(e.chunks.length).toBe(2)
    expect(e.chunks[1]).toBe(big)
  })

  it('M11 left to mqtt-packet (nothing written): an MQTT 5 property a PUBLISH does not carry, other packets, QoS 3, a missing or out-of-range packet id, a topic that is not a string or Buffer, a payload that is neither', () => {
    const s = sink()
    const none = [
      [{ cmd: 'publish', topic: 'a', payload: 'x', qos: 0, properties: { sessionExpiryInterval: 1 } }, { protocolVersion: 5 }],
      [{ cmd: 'puback', messageId: 1 }],
      [{ cmd: 'publish', topic: 'a', payload: 'x', qos: 3, messageId: 1 }],
      [{ cmd: 'publish', topic: 'a', payload: 'x', qos: 1 }],
      [{ cmd: 'publish', topic: 'a', payload: 'x', qos: 1, messageId: 65_536 }],
      [{ cmd: 'publish', topic: 'a', payload: 'x', qos: 1, messageId: 1.5 }],
      [{ cmd: 'publish', topic: 7, payload: 'x', qos: 0 }],
      [{ cmd: 'publish', topic: 'a', payload: new Uint8Array([1]), qos: 0 }],
    ] as const
    for (const [p, opts] of none) expect(writePublish(p as { cmd: string }, s, opts as { protocolVersion?: number } | undefined), JSON.stringify(p)).toBeUndefined()
    expect(s.chunks.length).toBe(0)
  })

  it('M11 through Aedes with the write wrapper installed: QoS 0 to three subscribers and QoS 1 arrive parsed, with their flags and packet ids [MQTT-3.3.1-9]', async () => {
    const s = await stockBroker()
    const subs = await Promise.all([0, 1, 2].map((i) => rawClient(s.port, { clientId: `m11-${i}`, autoAck: true })))
    // the wrapper is process-wide once installed; count what the fast path writes to one subscriber
    let writes = 0
    const conn = s.clients[0]!.conn as unknown as NodeJS.WritableStream & { write(...a: unknown[]): boolean }
    const write = conn.write.bind(conn)
    conn.write = (...a: unknown[]) => (writes++, write(...a))
    seam.onWrite(conn, () => {})
    for (const { raw } of subs) await rawSubscribe(raw, 'm11/#', 1)
    writes = 0
    const { raw: pub } = await rawClient(s.port, { clientId: 'm11-pub' })
    pub.send({ cmd: 'publish', topic: 'm11/zero', payload: 'q0', qos: 0 })
    pub.send({ cmd: 'publish', topic: 'm11/one', payload: 'q1', qos: 1, messageId: 5 })
    pub.send({ cmd: 'publish', topic: 'm11/kept', payload: 'r', qos: 0, retain: true })
    for (const { raw } of subs) await raw.until((ps) => ps.filter((p) => p.cmd === 'publish').length === 3, 5000, 'three messages')
    const { raw: late } = await rawClient(s.port, { clientId: 'm11-late' })
    await rawSubscribe(late, 'm11/kept', 0)
    await late.until((ps) => ps.some((p) => p.cmd === 'publish'), 5000, 'the retained message')
    for (const { raw } of subs) {
      // stock Aedes: a QoS 1 message may arrive after a later QoS 0 one (Culex orders them, broker/session-order.ts)
      const got = raw.publishes().map((p) => ({ topic: p.topic, payload: String(p.payload), qos: p.qos, retain: p.retain, id: typeof p.messageId }))
      expect(got.sort((x, y) => (x.topic < y.topic ? -1 : 1))).toEqual([
        { topic: 'm11/kept', payload: 'r', qos: 0, retain: false, id: 'undefined' },
        { topic: 'm11/one', payload: 'q1', qos: 1, retain: false, id: 'number' },
        { topic: 'm11/zero', payload: 'q0', qos: 0, retain: false, id: 'undefined' },
      ])
    }
    // one write per PUBLISH (mqtt-packet: 5-6)
    expect(writes).toBe(3)
    expect(late.publishes().map((p) => ({ topic: p.topic, payload: String(p.payload), retain: p.retain }))).toEqual([{ topic: 'm11/kept', payload: 'r', retain: true }])
  })
})
