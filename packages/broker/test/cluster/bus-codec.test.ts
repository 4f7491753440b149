/** The cluster bus wire format round-trips every field Aedes puts on a packet. Pure, no Redis. */
import { describe, expect, it } from 'vitest'
import { decodeBatch, encodeBatch, originOf } from '../../src/cluster/bus-codec.js'

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

  it('carries the shared subscription choice (issue 12) in the extra section a node of an older release skips past', () => {
    const p = { cmd: 'publish', brokerId: 'n1', brokerCounter: 9, topic: 'a/b', payload: Buffer.from('m'), qos: 1, retain: false, dup: false, share: [['g/a/#', 'worker-1', 'n2'], ['h/a/#', 'w-2', 'n1']] }
    const r = { cmd: 'publish', brokerId: 'n1', brokerCounter: 9, topic: '$culex#share', shareTopic: 'a/b', payload: Buffer.from('m'), qos: 1, retain: false, dup: false, share: [['g/a/#', 'worker-3', 'n3']] }
    const buf = encodeBatch('o', [p, r], 1, 1)
    expect(buf[0]).toBe(2) // same batch version: the choice rides in the EXTRA JSON every version reads
    expect(decodeBatch(buf).packets).toEqual([p, r])
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
})
