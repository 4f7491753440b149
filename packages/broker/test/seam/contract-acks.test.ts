/**
 * Contract of seam/mqtt-acks.ts (docs/internals.md row M12, issue 11): the PUBACK, PUBREC,
 * PUBREL and PUBCOMP Culex writes itself are byte for byte what mqtt-packet 9's writeToStream
 * writes for MQTT 3.1.1 and 5 (checked against its `generate`, so an upgrade that changes the
 * encoding fails here), in one write, and what is unusual is left to mqtt-packet. One
 * difference: an MQTT 5 ack without a reason code (Aedes' successes) is written as mqtt-packet
 * writes reason code 0, the 2-byte form (§3.4.2.1), not `.. 04 id id 00 00`.
 */
import { describe, expect, it } from 'vitest'
import mqttPacket from 'mqtt-packet'
import { writeAck, writeAcks } from '../../src/seam/mqtt-acks.js'

function sink(): { chunks: Buffer[]; write(b: Buffer): boolean; bytes(): Buffer } {
  const chunks: Buffer[] = []
  return { chunks, write: (b) => (chunks.push(b), false), bytes: () => Buffer.concat(chunks) }
}

describe('seam contract: PUBACK/PUBREC/PUBREL/PUBCOMP encoding (mqtt-acks.ts)', () => {
  it('M12 the bytes of mqtt-packet 9 writeToStream in one write [MQTT-3.6.1-1] [MQTT-3.4.2-1]: each ack, 3.1.1 and 5, no reason code, reason code 0 (omitted in MQTT 5) and others, packet ids', () => {
    let n = 0
    for (const protocolVersion of [4, 5, 3]) {
      for (const cmd of ['puback', 'pubrec', 'pubrel', 'pubcomp']) {
        for (const reasonCode of [undefined, 0, 0x10, 0x80, 0x92, 255]) {
          for (const messageId of [0, 1, 255, 256, 65_535]) {
            const p = { cmd, messageId, ...(reasonCode === undefined ? {} : { reasonCode }) }
            const s = sink()
            const what = JSON.stringify({ ...p, protocolVersion })
            // true, as mqtt-packet's confirmation returns, even when the stream asks to wait
            expect(writeAck(p, s, { protocolVersion }), what).toBe(true)
            expect(s.chunks.length, what).toBe(1)
            // MQTT 5 without a reason code: as with 0x00, omitted with the property length
            const as = protocolVersion === 5 && reasonCode === undefined ? { ...p, reasonCode: 0 } : p
            expect(s.bytes().equals(mqttPacket.generate(as as unknown as mqttPacket.Packet, { protocolVersion: protocolVersion as 4 | 5 })), what).toBe(true)
            n++
          }
        }
      }
    }
    expect(n).toBe(3 * 4 * 6 * 5)
  })

  it('M12 an MQTT 5 success ack without a reason code is 4 bytes, as for 3.1.1 (§3.4.2.1: reason code and property length omitted; mqtt-packet itself writes 6)', () => {
    for (const cmd of ['puback', 'pubrec', 'pubrel', 'pubcomp']) {
      const s = sink()
      expect(writeAck({ cmd, messageId: 258 }, s, { protocolVersion: 5 })).toBe(true)
      expect(s.bytes().subarray(1).toString('hex'), cmd).toBe('020102')
      expect(mqttPacket.generate({ cmd, messageId: 258 } as unknown as mqttPacket.Packet, { protocolVersion: 5 }).length, cmd).toBe(6)
      // a v5 parser reads it as reason code 0x00 Success
      const parsed: Array<Record<string, unknown>> = []
      const parser = mqttPacket.parser({ protocolVersion: 5 })
      parser.on('packet', (pk) => void parsed.push(pk as unknown as Record<string, unknown>))
      parser.parse(s.bytes())
      expect(parsed[0], cmd).toMatchObject({ cmd, messageId: 258, reasonCode: 0 })
    }
  })

  it('M12 left to mqtt-packet (nothing written): properties, a DUP PUBREL, packet id or reason code out of range, other packets', () => {
    const s = sink()
    const none: [Record<string, unknown>, number][] = [
      [{ cmd: 'puback', messageId: 1, properties: {} }, 5],
      [{ cmd: 'puback', messageId: 1, reasonCode: 0x10, properties: { reasonString: 'x' } }, 5],
      [{ cmd: 'pubrel', messageId: 1, dup: true }, 5],
      [{ cmd: 'pubrel', messageId: 1, dup: true }, 4],
      [{ cmd: 'puback', messageId: 65_536 }, 4],
      [{ cmd: 'puback', messageId: '1' }, 4],
      [{ cmd: 'puback', messageId: 1, reasonCode: 256 }, 5],
      [{ cmd: 'puback', messageId: 1, reasonCode: 1.5 }, 5],
      [{ cmd: 'suback', messageId: 1, granted: [0] }, 4],
      [{ cmd: 'unsuback', messageId: 1 }, 4],
    ]
    for (const [p, protocolVersion] of none) expect(writeAck(p as { cmd: string }, s, { protocolVersion }), JSON.stringify(p)).toBeUndefined()
    expect(s.chunks.length).toBe(0)
  })

  it('M12 writeAcks: the acks a bus batch releases to one connection, writeAck\'s bytes one after the other in one write; nothing written when one is left to mqtt-packet', () => {
    for (const protocolVersion of [4, 5]) {
      const acks = [
        { cmd: 'puback', messageId: 1 },
        { cmd: 'puback', messageId: 258, reasonCode: 0x10 },
        { cmd: 'puback', messageId: 65_535, reasonCode: 0 },
        { cmd: 'pubrec', messageId: 7 },
      ]
      const one = sink()
      for (const a of acks) writeAck(a, one, { protocolVersion })
      const all = sink()
      expect(writeAcks(acks, all, { protocolVersion })).toBe(true)
      expect(all.chunks.length).toBe(1)
      expect(all.bytes().equals(one.bytes()), String(protocolVersion)).toBe(true)
      // a v5 client reads each in order, 0x10 where it was given [MQTT-4.6.0-2]
      const parsed: Array<Record<string, unknown>> = []
      const parser = mqttPacket.parser({ protocolVersion: protocolVersion as 4 | 5 })
      parser.on('packet', (pk) => void parsed.push(pk as unknown as Record<string, unknown>))
      parser.parse(all.bytes())
      expect(parsed.map((p) => p.messageId)).toEqual([1, 258, 65_535, 7])
      if (protocolVersion === 5) expect(parsed[1]).toMatchObject({ reasonCode: 0x10 })
    }
    const s = sink()
    expect(writeAcks([{ cmd: 'puback', messageId: 1 }, { cmd: 'puback', messageId: 2, properties: {} }], s, { protocolVersion: 5 })).toBe(false)
    expect(s.chunks.length).toBe(0)
  })
})
