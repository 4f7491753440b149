/**
 * `max_publishes_per_s` (limits/publish-quota.ts) on a real node, 1 per second (bursts of 2), raw
 * clients: an MQTT 5 publisher over it gets PUBACK / PUBREC 0x97 Quota exceeded for QoS 1/2
 * (§3.4.2.1, §3.5.2.1), its QoS 0 message is dropped, nothing over it is delivered, and it stays
 * connected; an MQTT 3.1.1 publisher over it is disconnected; culex_publish_quota_exceeded_total
 * counts both. Each connection has its own quota.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { Raw, destroyAll } from '../conformance/raw.js'
import { metric } from '../helpers/security-node.js'
import { useTestNode } from '../helpers/node.js'

const t = useTestNode({ max_publishes_per_s: 1 })
afterEach(destroyAll)

async function client(name: string, version: 4 | 5, topic?: string, properties?: Record<string, unknown>): Promise<Raw> {
  const c = await Raw.open(t.node.ports.mqtt, version)
  expect(await c.connect({ clientId: name, ...(properties ? { properties } : {}) })).toMatchObject(version === 5 ? { reasonCode: 0 } : { returnCode: 0 })
  if (topic) await c.subscribe(topic, 2)
  return c
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
/** [packet id, reason code] of the packets of kind `cmd` in `ps`, in order (PUBACKs keep their order, PUBRECs theirs [MQTT-4.6.0-2] [MQTT-4.6.0-3]; not with each other) */
const codes = (ps: Raw['packets'], cmd: string): Array<[number, number]> => ps.filter((p) => p.cmd === cmd).map((p) => [p.messageId as number, p.reasonCode as number])
/** the payloads `c` got before the first message on `mark` */
const before = async (c: Raw, mark: string): Promise<string[]> => (await c.until(mark)).filter((p) => p.cmd === 'publish').map((p) => String(p.payload))

describe('max_publishes_per_s', () => {
  it('MQTT 5: over the quota a QoS 1 / QoS 2 PUBLISH gets PUBACK / PUBREC 0x97 and is not delivered, a QoS 0 one is dropped; the client stays connected and its packet id is free again [MQTT-4.3.3-9]', async () => {
    const counted = await metric(t.node.ports.http, 'culex_publish_quota_exceeded_total')
    const sub = await client('pq-sub', 5, 'pq/v5/#')
    const pub = await client('pq-pub', 5)
    pub.send({ cmd: 'publish', topic: 'pq/v5/a', payload: 'a', qos: 1, messageId: 1 })
    pub.send({ cmd: 'publish', topic: 'pq/v5/b', payload: 'b', qos: 1, messageId: 2 })
    pub.send({ cmd: 'publish', topic: 'pq/v5/c', payload: 'c', qos: 1, messageId: 3 })
    pub.send({ cmd: 'publish', topic: 'pq/v5/d', payload: 'd', qos: 2, messageId: 4 })
    pub.send({ cmd: 'publish', topic: 'pq/v5/e', payload: 'e', qos: 0 })
    pub.send({ cmd: 'pingreq' })
    const acks = [await pub.next(), await pub.next(), await pub.next(), await pub.next(), await pub.next()]
    expect([codes(acks, 'puback'), codes(acks, 'pubrec'), acks.filter((p) => p.cmd === 'pingresp').length]).toEqual([
      [
        [1, 0],
        [2, 0],
        [3, 0x97],
      ],
      [[4, 0x97]],
      1,
    ])
    // with a Reason String, as Aedes puts on a refusal (none when the client set Request Problem Information 0)
    expect(acks.find((p) => p.messageId === 3)!.properties).toMatchObject({ reasonString: expect.stringMatching(/quota exceeded/) })
    // a second later one PUBLISH more is allowed: packet id 4 again is a new message
    await sleep(1100)
    await pub.publish('pq/v5/mark', 'mark', 2, false, 4)
    expect(await before(sub, 'pq/v5/mark')).toEqual(['a', 'b'])
    expect((await metric(t.node.ports.http, 'culex_publish_quota_exceeded_total')) - counted).toBe(3)
  })

  it('MQTT 5: a QoS 2 PUBLISH sent again (DUP 1) is not refused by the quota; it is answered and delivered once; a 0x97 ack that a Reason String would make larger than the Maximum Packet Size comes without it [MQTT-3.4.2-2]', async () => {
    const sub = await client('pq-dup-sub', 5, 'pq/dup/#')
    const pub = await client('pq-dup', 5, undefined, { maximumPacketSize: 16 })
    pub.send({ cmd: 'publish', topic: 'pq/dup/x', payload: 'x', qos: 2, messageId: 1 })
    pub.send({ cmd: 'publish', topic: 'pq/dup/y', payload: 'y', qos: 2, messageId: 2 })
    const first = [await pub.expect('pubrec'), await pub.expect('pubrec')]
    // the quota is used up: the copy of x still gets its PUBREC 0x00, a new message 0x97
    pub.send({ cmd: 'publish', topic: 'pq/dup/x', payload: 'x', qos: 2, messageId: 1, dup: true })
    pub.send({ cmd: 'publish', topic: 'pq/dup/z', payload: 'z', qos: 1, messageId: 3 })
    const acks = [...first, await pub.next(), await pub.next()]
    expect([codes(acks, 'pubrec'), codes(acks, 'puback')]).toEqual([
      [
        [1, 0],
        [2, 0],
        [1, 0],
      ],
      [[3, 0x97]],
    ])
    const refused = acks.find((p) => p.cmd === 'puback')!
    expect([refused.properties, refused.frame.length <= 16]).toEqual([undefined, true])
    pub.send({ cmd: 'pubrel', messageId: 1 })
    pub.send({ cmd: 'pubrel', messageId: 2 })
    await pub.expect('pubcomp')
    await pub.expect('pubcomp')
    await sleep(1100)
    await pub.publish('pq/dup/mark', 'mark', 1, false, 4)
    expect(await before(sub, 'pq/dup/mark')).toEqual(['x', 'y'])
  })

  it('MQTT 3.1.1: over the quota the connection is closed (a PUBACK cannot refuse), no PUBACK for the refused message; what came before is delivered; counted', async () => {
    const counted = await metric(t.node.ports.http, 'culex_publish_quota_exceeded_total')
    const sub = await client('pq-sub4', 4, 'pq/v4/#')
    const pub = await client('pq-pub4', 4)
    for (const [i, x] of ['a', 'b', 'c'].entries()) pub.send({ cmd: 'publish', topic: `pq/v4/${x}`, payload: x, qos: 1, messageId: i + 1 })
    await pub.closedBy()
    // the PUBACKs of the first two are held until they are delivered (broker/puback-after-publish.ts): the close may come first
    expect(pub.unread().filter((p) => p.cmd !== 'puback' || p.messageId === 3)).toEqual([])
    const mark = await client('pq-mark4', 4)
    await mark.publish('pq/v4/mark', 'mark', 1)
    expect(await before(sub, 'pq/v4/mark')).toEqual(['a', 'b'])
    expect((await metric(t.node.ports.http, 'culex_publish_quota_exceeded_total')) - counted).toBe(1)
  })
})
