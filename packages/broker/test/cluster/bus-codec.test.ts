/** The cluster bus wire format round-trips every field Aedes puts on a packet. Pure, no Redis. */
import { describe, expect, it } from 'vitest'
import { encodeBatch, needsV3, RESENT, type BusPacket } from '../../src/cluster/bus-codec.js'
import { decodeBatch, originOf } from '../../src/cluster/bus-decode.js'

/** an MQTT 5 PUBLISH as mqtt-packet parses it and aedes-packet keeps it (user properties: a null-prototype object) */
function v5Packet(): Record<string, unknown> & { topic: string; payload: Buffer; qos: number; retain: boolean; dup: boolean } {
  const userProperties = Object.create(null) as Record<string, unknown>
  userProperties['zone'] = ['ünïcode ✓', 'b']
  userProperties['__proto__'] = 'a name like any other'
  userProperties['a'] = ''
  return {
    cmd: 'publish', brokerId: 'node-a', brokerCounter: 3, topic: 'v5/t', payload: Buffer.from([0, 255]), qos: 1, retain: false, dup: false, clientId: 'p5',
    properties: { payloadFormatIndicator: true, contentType: 'application/octet-stream', responseTopic: 'v5/reply', correlationData: Buffer.from([0x00, 0xff, 0x10, 0x00]), userProperties, messageExpiryInterval: 60 },
    messageExpiry: 1_796_000_000_123,
  }
}

describe('cluster bus codec', () => {
  it('round-trips a batch of packets with their flags, ids and payloads', () => {
    const packets = [
      { cmd: 'publish', brokerId: 'node-a', brokerCounter: 42, topic: 'a/b', payload: Buffer.from('hello'), qos: 1, retain: false, dup: false, clientId: 'dev-1' },
      { cmd: 'publish', brokerId: 'node-a', brokerCounter: 2 ** 40, topic: 'ünïcode/✓', payload: Buffer.alloc(70_000, 7), qos: 2, retain: true, dup: true },
      { cmd: 'publish', brokerId: '', brokerCounter: 0, topic: '$SYS/x/heartbeat', payload: Buffer.alloc(0), qos: 0, retain: false, dup: false, nl: true },
    ]
    const buf = encodeBatch('origin-1', packets, 7, 5)
    expect(originOf(buf)).toBe('origin-1')
    const { origin, seq, base, packets: out } = decodeBatch(buf)
    expect(origin).toBe('origin-1')
    expect([seq, base]).toEqual([7, 5])
    expect(out).toEqual(packets)
  })

  it('gives each payload bytes of its own: the buffer read from Redis can change after decoding (small batch: views of one copy; large: a copy each)', () => {
    for (const size of [16, 20_000]) {
      const packets = [0, 1, 2].map((n) => ({ cmd: 'publish', brokerId: 'node-a', brokerCounter: n + 1, topic: 't', payload: Buffer.alloc(size, n + 1), qos: 1, retain: false, dup: false }))
      // a batch inside a larger read, as redis-parser hands it over
      const batch = encodeBatch('o', packets, 1, 1)
      const read = Buffer.concat([Buffer.from('junk'), batch, Buffer.from('more')])
      const { packets: out } = decodeBatch(read.subarray(4, 4 + batch.length))
      read.fill(0)
      expect(out.map((p) => p.payload)).toEqual(packets.map((p) => p.payload))
    }
  })

  it('decodes the broker ids of a peer to one string across batches', () => {
    const mk = (n: number): BusPacket => ({ cmd: 'publish', brokerId: 'node-q', brokerCounter: n, topic: 't', payload: Buffer.from([n]), qos: 1, retain: false, dup: false })
    const first = decodeBatch(encodeBatch('o', [mk(1)], 1, 1)).packets[0]!
    const second = decodeBatch(encodeBatch('o', [mk(2), { ...mk(3), brokerId: 'node-r' }], 2, 2)).packets
    expect([first.brokerId, second[0]!.brokerId, second[1]!.brokerId]).toEqual(['node-q', 'node-q', 'node-r'])
  })

  it('writes the bytes nodes of the previous release read (golden layout), and decodes ids, topics and client ids in any script and length', () => {
    const f64 = (n: number): Buffer => {
      const b = Buffer.alloc(8)
      b.writeDoubleBE(n)
      return b
    }
    const u = (bytes: number, n: number): Buffer => {
      const b = Buffer.alloc(bytes)
      b.writeUIntBE(n, 0, bytes)
      return b
    }
    const p = { cmd: 'publish', brokerId: 'n1', brokerCounter: 9, topic: 'a/✓', payload: Buffer.from('m'), qos: 1, retain: false, dup: false, clientId: 'c1' }
    const golden = Buffer.concat([
      Buffer.from([2, 1]), Buffer.from('o'), f64(3), f64(2), u(4, 1),
      Buffer.from([1 | 16, 2]), Buffer.from('n1'), f64(9), u(2, 5), Buffer.from('a/✓'), u(4, 1), Buffer.from('m'), u(2, 2), Buffer.from('c1'),
    ])
    expect(encodeBatch('o', [p], 3, 2).equals(golden)).toBe(true)
    const long = 'x/'.repeat(40) + 'é'
    const packets = [
      { cmd: 'publish', brokerId: 'node-a', brokerCounter: 1, topic: long, payload: Buffer.from('1'), qos: 1, retain: false, dup: false, clientId: 'ünï-✓' },
      { cmd: 'publish', brokerId: 'node-b', brokerCounter: 2, topic: 'a'.repeat(100), payload: Buffer.from('2'), qos: 0, retain: false, dup: false },
      { cmd: 'publish', brokerId: 'nöde', brokerCounter: 3, topic: 't', payload: Buffer.from('3'), qos: 2, retain: true, dup: false },
      { cmd: 'publish', brokerId: 'node-b', brokerCounter: 4, topic: 't', payload: Buffer.from('4'), qos: 1, retain: false, dup: true },
    ]
    expect(decodeBatch(encodeBatch('o', packets, 1, 1)).packets).toEqual(packets)
  })

  it('writes and reads runs of one broker id and topic (copied from the packet before) as the same bytes as packets apart, and tells topics of one length apart', () => {
    const mk = (brokerId: string, n: number, topic: string): Record<string, unknown> & { topic: string; payload: Buffer; qos: number; retain: boolean; dup: boolean } =>
      ({ cmd: 'publish', brokerId, brokerCounter: n, topic, payload: Buffer.from([n]), qos: 1, retain: false, dup: false })
    const packets = [mk('node-ä', 1, 'a/1'), mk('node-ä', 2, 'a/1'), mk('node-ä', 3, 'a/2'), mk('node-b', 4, 'a/2'), mk('node-ä', 5, 'ü/1'), mk('node-ä', 6, 'ü/1'), mk('node-ä', 7, 'a/1')]
    const buf = encodeBatch('o', packets, 1, 1)
    // each packet's bytes are those of a batch of that packet alone (after its 2 + 1 + 16 + 4 byte header)
    const alone = Buffer.concat(packets.map((p) => encodeBatch('o', [p], 1, 1).subarray(23)))
    expect(buf.subarray(23).equals(alone)).toBe(true)
    expect(decodeBatch(buf).packets).toEqual(packets)
  })

  it('carries the shared subscription choice (issue 12) in the extra section a node of an older release skips past', () => {
    const p = { cmd: 'publish', brokerId: 'n1', brokerCounter: 9, topic: 'a/b', payload: Buffer.from('m'), qos: 1, retain: false, dup: false, share: [['g/a/#', 'worker-1', 'n2'], ['h/a/#', 'w-2', 'n1']] }
    const r = { cmd: 'publish', brokerId: 'n1', brokerCounter: 9, topic: '$culex#share', shareTopic: 'a/b', payload: Buffer.from('m'), qos: 1, retain: false, dup: false, share: [['g/a/#', 'worker-3', 'n3']] }
    const buf = encodeBatch('o', [p, r], 1, 1)
    expect(buf[0]).toBe(2) // same batch version: the choice rides in the EXTRA JSON every version reads
    expect(decodeBatch(buf).packets).toEqual([p, r])
  })

  it('flags a message its node published again (RESENT, bit 6) in the same batch version: a node of the previous release reads the same packet', () => {
    const p = (): BusPacket => ({ cmd: 'publish', brokerId: 'n1', brokerCounter: 5, topic: 'a/b', payload: Buffer.from('m'), qos: 1, retain: false, dup: false })
    const again = { ...p(), [RESENT]: true as const }
    const plain = encodeBatch('o', [p()], 2, 1)
    const flagged = encodeBatch('o', [again, p()], 2, 1).subarray(0, plain.length)
    // the count differs, and the first packet's flags byte by bit 6, which older nodes do not read
    const diff = [...plain.keys()].filter((i) => plain[i] !== flagged[i])
    expect(flagged[0]).toBe(2)
    expect(diff.map((i) => flagged[i]! - plain[i]!)).toEqual([1, 64])
    const out = decodeBatch(encodeBatch('o', [again, p()], 2, 1))
    expect(out.resent).toBe(1)
    expect(out.packets.map((x) => x[RESENT])).toEqual([true, undefined])
    expect(out.packets[0]).toEqual(again)
  })

  it('reads a version 1 batch (from a node of an older release), which has no batch number', () => {
    const v2 = encodeBatch('o', [{ topic: 't', payload: Buffer.from('x'), qos: 1, retain: false, dup: false }], 3, 1)
    // version 1 = the same without the two f64 after the origin
    const v1 = Buffer.concat([Buffer.from([1]), v2.subarray(1, 3), v2.subarray(19)])
    const out = decodeBatch(v1)
    expect(out.seq).toBeUndefined()
    expect(out.packets.map((p) => [p.topic, p.payload.toString(), p.qos])).toEqual([['t', 'x', 1]])
  })

  it('refuses a batch of an unknown version or with trailing bytes', () => {
    const buf = encodeBatch('o', [{ topic: 't', payload: Buffer.from('x'), qos: 0, retain: false, dup: false }])
    expect(() => decodeBatch(Buffer.concat([buf, Buffer.from([0])]))).toThrow(/trailing/)
    const bad = Buffer.from(buf)
    bad[0] = 9
    expect(() => decodeBatch(bad)).toThrow(/version/)
  })

  it('[MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18] carries MQTT 5 properties byte-exact in batch version 3: correlation data as bytes, user properties in order, the absolute expiry', () => {
    const p = v5Packet()
    expect(needsV3(p)).toBe(true)
    const buf = encodeBatch('o', [p], 4, 4)
    expect(buf[0]).toBe(3)
    const [out] = decodeBatch(buf).packets
    expect(out).toEqual(p)
    const props = out!.properties as Record<string, unknown>
    expect(Buffer.isBuffer(props.correlationData)).toBe(true)
    expect((props.correlationData as Buffer).equals(Buffer.from([0x00, 0xff, 0x10, 0x00]))).toBe(true)
    // names in the order received, values of a repeated name in order, a prototype-like name kept
    const up = props.userProperties as Record<string, unknown>
    expect(Object.keys(up)).toEqual(['zone', '__proto__', 'a'])
    expect(up['__proto__']).toBe('a name like any other')
    expect(out!.messageExpiry).toBe(1_796_000_000_123)
  })

  it('writes version 2 (which a node of the previous release reads) for MQTT 5 packets without binary properties and for 3.1.1 ones', () => {
    const p = v5Packet()
    const props = p.properties as Record<string, unknown>
    delete props.correlationData
    const plain = { cmd: 'publish', brokerId: 'n', brokerCounter: 1, topic: 't', payload: Buffer.from('x'), qos: 1, retain: false, dup: false }
    expect([needsV3(p), needsV3(plain)]).toEqual([false, false])
    const buf = encodeBatch('o', [plain, p], 1, 1)
    expect(buf[0]).toBe(2)
    const out = decodeBatch(buf).packets
    expect(out[0]).toEqual(plain)
    expect(out[1]!.properties).toEqual({ ...props, userProperties: { ...(props.userProperties as object) } })
  })

  it('a batch holding one packet with binary properties is version 3 whole, and every packet in it round-trips', () => {
    const plain = { cmd: 'publish', brokerId: 'n', brokerCounter: 1, topic: 't', payload: Buffer.from('x'), qos: 0, retain: false, dup: false, share: [['g', 'w', 'n2']] }
    const buf = encodeBatch('o', [plain, v5Packet()], 2, 1)
    expect(buf[0]).toBe(3)
    expect(decodeBatch(buf).packets).toEqual([plain, v5Packet()])
  })
})
