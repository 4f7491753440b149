/**
 * Contract of seam/mqtt-publish.ts + mqtt-publish-props.ts for MQTT 5 (docs/internals.md row
 * M11, issue 11): an MQTT 5 PUBLISH Culex writes itself, property section included (§3.3.2.3),
 * is byte for byte what mqtt-packet 9's writeToStream writes (checked against its `generate`
 * with protocolVersion 5 over many combinations, so an upgrade that changes the encoding fails
 * here); what mqtt-packet would treat as unusual or as an error is left to it.
 */
import { describe, expect, it } from 'vitest'
import mqttPacket from 'mqtt-packet'
import { writePublish } from '../../src/seam/mqtt-publish.js'

const V5 = { protocolVersion: 5 }
function sink(): { chunks: Buffer[]; write(b: Buffer): boolean; bytes(): Buffer } {
  const chunks: Buffer[] = []
  return { chunks, write: (b) => (chunks.push(b), true), bytes: () => Buffer.concat(chunks) }
}
const generated = (p: Record<string, unknown>): Buffer => mqttPacket.generate(p as unknown as mqttPacket.Packet, V5)

/** property sets a delivery can carry, one or several at a time, in different key orders */
const propertySets: (Record<string, unknown> | undefined)[] = [
  undefined,
  {},
  { payloadFormatIndicator: true },
  { payloadFormatIndicator: false, messageExpiryInterval: 0 },
  { messageExpiryInterval: 0xffff_ffff, topicAlias: 1 },
  { topicAlias: 65_535, contentType: 'application/json' },
  { contentType: '', responseTopic: 'reply/ü' },
  { responseTopic: 'r', correlationData: Buffer.from([1, 2, 3]) },
  { correlationData: Buffer.alloc(0) },
  { correlationData: 'as text €' },
  { subscriptionIdentifier: 1 },
  { subscriptionIdentifier: 127 },
  { subscriptionIdentifier: 128 },
  { subscriptionIdentifier: [1, 16_384, 2_097_152, 268_435_455] },
  { userProperties: { a: 'b' } },
  { userProperties: { ü: ['1', '', 'three'], b: 'x'.repeat(300) } },
  { userProperties: { k: 'v' }, subscriptionIdentifier: [5, 6], topicAlias: 3, payloadFormatIndicator: true, messageExpiryInterval: 60, contentType: 'c', responseTopic: 'rt', correlationData: Buffer.alloc(40, 9) },
  { subscriptionIdentifier: 9, userProperties: { z: 'y', a: 'b' }, correlationData: Buffer.alloc(200, 1), contentType: 'long'.repeat(40) },
  { topicAlias: undefined, contentType: 'skip undefined' },
]

describe('seam contract: MQTT 5 PUBLISH encoding (mqtt-publish.ts)', () => {
  it('M11 the bytes of mqtt-packet 9 writeToStream for MQTT 5 PUBLISH [MQTT-2.2.2-2] [MQTT-3.3.1-9]: every PUBLISH property (§3.3.2.3), several Subscription Identifiers [MQTT-3.3.4-4], QoS, flags, Remaining Length sizes', () => {
    const payloads: unknown[] = [undefined, 'text ü', Buffer.alloc(100, 1), Buffer.alloc(2049, 4), Buffer.alloc(20_000, 5)]
    const topics: unknown[] = ['a', '', 'sensors/ünïcode/€', Buffer.from('buf/topic')]
    let n = 0
    for (const properties of propertySets) {
      for (const qos of [0, 1, 2]) {
        for (const payload of payloads) {
          for (const topic of topics) {
            const flags = [{}, { retain: true }, { dup: true }, { retain: true, dup: true }][n % 4]
            const p = { cmd: 'publish', topic, payload, qos, ...flags, ...(qos > 0 ? { messageId: [1, 255, 256, 65_535][n % 4] } : {}), ...(properties ? { properties } : {}) }
            const s = sink()
            const what = JSON.stringify({ ...p, payload: typeof payload === 'string' ? payload : (payload as Buffer | undefined)?.length })
            expect(writePublish(p, s, V5), what).toBe(true)
            expect(s.bytes().equals(generated(p)), what).toBe(true)
            n++
          }
        }
      }
    }
    expect(n).toBe(propertySets.length * 3 * 5 * 4)
  })

  it('M11 a QoS 0 MQTT 5 message without properties is encoded once for its subscribers, apart from its 3.1.1 encoding; with properties (Subscription Identifier, Topic Alias) each gets its own', () => {
    const payload = Buffer.from('shared5')
    const [a, b, c, d] = [sink(), sink(), sink(), sink()]
    writePublish({ cmd: 'publish', topic: 't', payload, qos: 0 }, a, V5)
    writePublish({ cmd: 'publish', topic: 't', payload, qos: 0, properties: {} }, b, V5)
    expect(b.chunks[0]).toBe(a.chunks[0])
    writePublish({ cmd: 'publish', topic: 't', payload, qos: 0 }, c)
    expect(c.bytes().equals(mqttPacket.generate({ cmd: 'publish', topic: 't', payload, qos: 0, dup: false, retain: false }))).toBe(true)
    writePublish({ cmd: 'publish', topic: 't', payload, qos: 0, properties: { subscriptionIdentifier: 3 } }, d, V5)
    expect(d.bytes().equals(generated({ cmd: 'publish', topic: 't', payload, qos: 0, properties: { subscriptionIdentifier: 3 } }))).toBe(true)
  })

  it('M11 a message\'s properties written to many subscribers (one object, its encoding kept from the second write on) give each the bytes of mqtt-packet, whatever the topic, QoS, packet id or Topic Alias after them', () => {
    const properties = { userProperties: { k: 'v', ü: ['1', '2'] }, contentType: 'text/plain', correlationData: Buffer.from([7, 8]), subscriptionIdentifier: 4 }
    for (let i = 0; i < 6; i++) {
      const qos = i % 3
      const p = { cmd: 'publish', topic: `t/${i}`, payload: Buffer.from(`m${i}`), qos, dup: false, retain: i === 4, ...(qos > 0 ? { messageId: 100 + i } : {}), properties }
      const s = sink()
      const aliases = i === 5 ? { max: 4, byTopic: new Map<string, number>() } : undefined
      expect(writePublish(p, s, V5, aliases), `write ${i}`).toBe(true)
      const want = aliases ? generated({ ...p, properties: { ...properties, topicAlias: 1 } }) : generated(p)
      expect(s.bytes().equals(want), `write ${i}`).toBe(true)
    }
  })

  it('M11 a Message Expiry Interval rewritten in place between writes (Aedes\' session replay, lib/handlers/connect.js) goes out as it is at each write', () => {
    const properties: Record<string, unknown> = { messageExpiryInterval: 60, userProperties: { a: 'b' } }
    for (const left of [60, 59, 30, 1]) {
      properties.messageExpiryInterval = left
      const p = { cmd: 'publish', topic: 'e', payload: Buffer.from('x'), qos: 1, messageId: left, dup: false, retain: false, properties }
      const s = sink()
      writePublish(p, s, V5)
      expect(s.bytes().equals(generated(p)), `interval ${left}`).toBe(true)
    }
  })

  it('M11 left to mqtt-packet (nothing written): properties of other packets, null, wrong types, out of range, empty userProperties or arrays', () => {
    const s = sink()
    const none: unknown[] = [
      { sessionExpiryInterval: 1 },
      { reasonString: 'x' },
      { topicAlias: null },
      { topicAlias: 65_536 },
      { topicAlias: 1.5 },
      { messageExpiryInterval: -1 },
      { payloadFormatIndicator: 1 },
      { subscriptionIdentifier: 0 },
      { subscriptionIdentifier: [] },
      { contentType: ['a', 'b'] },
      { contentType: 5 },
      { correlationData: null },
      { userProperties: {} },
      { userProperties: { a: 1 } },
      { userProperties: { a: [] } },
      null,
      [],
    ]
    for (const properties of none) {
      expect(writePublish({ cmd: 'publish', topic: 'a', payload: 'x', qos: 1, messageId: 1, properties }, s, V5), JSON.stringify(properties)).toBeUndefined()
    }
    expect(s.chunks.length).toBe(0)
  })
})
