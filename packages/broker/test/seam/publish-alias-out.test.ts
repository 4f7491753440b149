/**
 * Topic Aliases on outgoing MQTT 5 PUBLISHes, as seam/mqtt-publish.ts encodes them (opt-in:
 * broker/topic-alias-out.ts): the bytes are mqtt-packet 9's for the same PUBLISH with the Topic
 * Alias property added last and, once the alias is known, an empty topic; the packet object
 * (shared properties included) is left as it was; aliases stop at the maximum [MQTT-3.3.2-11],
 * and are left out where they would make a packet larger than the client's Maximum Packet Size;
 * a PUBLISH that has its own alias, and MQTT 3.1.1, are not touched.
 */
import { describe, expect, it } from 'vitest'
import mqttPacket from 'mqtt-packet'
import { writePublish, type TopicAliasesOut } from '../../src/seam/mqtt-publish.js'

const generated = (p: Record<string, unknown>, version = 5): Buffer => mqttPacket.generate(p as unknown as mqttPacket.Packet, { protocolVersion: version })
function written(p: { cmd: string } & Record<string, unknown>, aliases: TopicAliasesOut, version = 5): Buffer {
  const chunks: Buffer[] = []
  expect(writePublish(p, { write: (b: Buffer) => (chunks.push(b), true) }, { protocolVersion: version }, aliases)).toBe(true)
  return Buffer.concat(chunks)
}
const aliases = (max: number): TopicAliasesOut => ({ max, byTopic: new Map() })

const propertySets: Array<Record<string, unknown> | undefined> = [
  undefined,
  {},
  { messageExpiryInterval: 10 },
  { userProperties: { k: 'v' }, subscriptionIdentifier: [5, 6], contentType: 'c', correlationData: Buffer.alloc(40, 9) },
]

describe('seam: Topic Aliases on outgoing MQTT 5 PUBLISHes (mqtt-publish.ts)', () => {
  it('first the topic with a new alias, then an empty topic with it: the bytes of mqtt-packet for those PUBLISHes; the packet object unchanged', () => {
    for (const properties of propertySets) {
      for (const qos of [0, 1, 2]) {
        for (const payload of [Buffer.from('x'), Buffer.alloc(5000, 2)]) {
          const a = aliases(2)
          const p = { cmd: 'publish', topic: 'sensors/ü/1', payload, qos, dup: false, retain: false, messageId: qos ? 7 : undefined, properties }
          const before = JSON.stringify(p)
          const withAlias = { ...p, properties: { ...properties, topicAlias: 1 } }
          expect(written(p, a)).toEqual(generated(withAlias))
          expect(written(p, a)).toEqual(generated({ ...withAlias, topic: '' }))
          expect(JSON.stringify(p)).toBe(before)
          expect([...a.byTopic]).toEqual([['sensors/ü/1', 1]])
        }
      }
    }
  })

  it('[MQTT-3.3.2-11] no more aliases than the maximum: further topics go out whole; a PUBLISH with its own alias and an MQTT 3.1.1 PUBLISH are written as they are', () => {
    const a = aliases(2)
    const pub = (topic: string, properties?: Record<string, unknown>): { cmd: string } & Record<string, unknown> => ({ cmd: 'publish', topic, payload: Buffer.from(topic), qos: 0, properties })
    expect(written(pub('t/1'), a)).toEqual(generated({ ...pub('t/1'), properties: { topicAlias: 1 } }))
    expect(written(pub('t/2'), a)).toEqual(generated({ ...pub('t/2'), properties: { topicAlias: 2 } }))
    expect(written(pub('t/3'), a)).toEqual(generated(pub('t/3')))
    expect(written(pub('t/3'), a)).toEqual(generated(pub('t/3')))
    expect(written(pub('t/2'), a)).toEqual(generated({ ...pub(''), payload: Buffer.from('t/2'), properties: { topicAlias: 2 } }))
    expect(written(pub('t/4', { topicAlias: 9 }), a)).toEqual(generated(pub('t/4', { topicAlias: 9 })))
    expect(written(pub('t/1'), a, 4)).toEqual(generated(pub('t/1'), 4))
    expect(a.byTopic.size).toBe(2)
  })

  it('[MQTT-3.1.2-24] an alias that would make the packet larger than the client\'s Maximum Packet Size is left out: the packet goes out whole, the alias is not taken', () => {
    const pub = { cmd: 'publish', topic: 'ab', payload: Buffer.alloc(20, 1), qos: 1, messageId: 3, properties: { contentType: 'c' } }
    const whole = generated(pub)
    const a: TopicAliasesOut = { max: 4, byTopic: new Map(), maxPacket: whole.length }
    expect(written(pub, a)).toEqual(whole)
    expect(a.byTopic.size).toBe(0)
    // with room for it, the alias is taken; alone it saves nothing on a 2-byte topic, so it is left out again
    a.maxPacket = whole.length + 3
    expect(written(pub, a)).toEqual(generated({ ...pub, properties: { contentType: 'c', topicAlias: 1 } }))
    a.maxPacket = whole.length
    expect(written(pub, a)).toEqual(whole)
  })
})
