import { parser, type IPublishPacket, type Packet } from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import { ackPacket, PublishTemplate } from '../src/client/packets.js'
import { decodePayload, encodePayload, FLAG_PROBE, HEADER_SIZE } from '../src/payload.js'

function parse(buf: Buffer, protocolVersion: 4 | 5 = 4): Packet[] {
  const out: Packet[] = []
  const p = parser({ protocolVersion })
  p.on('packet', (pk: Packet) => out.push(pk))
  p.parse(buf)
  return out
}

describe('payload', () => {
  it('round-trips publisher id, sequence and send time', () => {
    const sendNs = process.hrtime.bigint()
    const buf = encodePayload(100, { flags: FLAG_PROBE, runId: 0xdeadbeef, pubId: 42, seq: 123_456, sendNs })
    expect(buf.length).toBe(100)
    expect(decodePayload(buf)).toEqual({ flags: FLAG_PROBE, runId: 0xdeadbeef, pubId: 42, seq: 123_456, sendNs })
  })

  it('ignores payloads that are not ours', () => {
    expect(decodePayload(Buffer.from('hello world, this is not a bench payload'))).toBeNull()
    expect(decodePayload(Buffer.alloc(HEADER_SIZE - 1))).toBeNull()
  })

  it('refuses sizes smaller than the header', () => {
    expect(() => encodePayload(HEADER_SIZE - 1, { flags: 0, runId: 1, pubId: 1, seq: 1, sendNs: 1n })).toThrow(RangeError)
    expect(() => new PublishTemplate('t', 0, 10)).toThrow(/at least/)
  })
})

describe('PublishTemplate', () => {
  for (const qos of [0, 1, 2] as const) {
    it(`builds valid QoS ${qos} PUBLISH packets with patched id and header`, () => {
      const tpl = new PublishTemplate('culex-bench/abc/pair/7', qos, 300)
      const [a, b] = [tpl.build(17, { flags: 0, runId: 9, pubId: 7, seq: 0, sendNs: 5n }), tpl.build(65535, { flags: 0, runId: 9, pubId: 7, seq: 1, sendNs: 6n })]
      const packets = parse(Buffer.concat([a, b])) as IPublishPacket[]
      expect(packets).toHaveLength(2)
      for (const [i, pk] of packets.entries()) {
        expect(pk).toMatchObject({ cmd: 'publish', topic: 'culex-bench/abc/pair/7', qos, retain: false, dup: false })
        if (qos > 0) expect(pk.messageId).toBe(i === 0 ? 17 : 65535)
        expect(pk.payload.length).toBe(300)
        expect(decodePayload(pk.payload as Buffer)).toEqual({ flags: 0, runId: 9, pubId: 7, seq: i, sendNs: BigInt(5 + i) })
      }
    })
  }

  it('builds MQTT 5 PUBLISH packets (empty property section) that a v5 parser reads with the payload intact', () => {
    const tpl = new PublishTemplate('culex-bench/v5', 1, 64, 5)
    const [pk] = parse(tpl.build(42, { flags: 0, runId: 3, pubId: 1, seq: 7, sendNs: 9n }), 5) as IPublishPacket[]
    expect(pk).toMatchObject({ cmd: 'publish', topic: 'culex-bench/v5', qos: 1, messageId: 42 })
    expect(pk?.payload.length).toBe(64)
    expect(decodePayload(pk?.payload as Buffer)).toEqual({ flags: 0, runId: 3, pubId: 1, seq: 7, sendNs: 9n })
    // the same bytes read as 3.1.1 would take the property length byte for payload: the templates differ
    expect(new PublishTemplate('culex-bench/v5', 1, 64, 4).build(42, { flags: 0, runId: 3, pubId: 1, seq: 7, sendNs: 9n }).length).toBe(
      tpl.build(42, { flags: 0, runId: 3, pubId: 1, seq: 7, sendNs: 9n }).length - 1,
    )
  })

  it('handles payloads whose length needs a multi-byte remaining length', () => {
    const tpl = new PublishTemplate('t', 1, 200_000)
    const [pk] = parse(tpl.build(3, { flags: 0, runId: 1, pubId: 2, seq: 3, sendNs: 4n })) as IPublishPacket[]
    expect(pk?.messageId).toBe(3)
    expect(decodePayload(pk?.payload as Buffer)?.seq).toBe(3)
  })
})

describe('acknowledgement packets', () => {
  it('carry the packet id they acknowledge', () => {
    const pks = parse(Buffer.concat([ackPacket('puback', 1), ackPacket('pubrec', 258), ackPacket('pubrel', 4000), ackPacket('pubcomp', 65535)]))
    expect(pks.map((p) => [p.cmd, p.messageId])).toEqual([
      ['puback', 1],
      ['pubrec', 258],
      ['pubrel', 4000],
      ['pubcomp', 65535],
    ])
  })
})
