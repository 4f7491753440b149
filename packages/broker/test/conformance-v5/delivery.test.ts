/**
 * MQTT 5.0: what a client sees of the messages it gets and of the connection, byte level, in every
 * mode (publishers on node 0, subscribers on node 1): one CONNACK first, QoS 0 deliveries without
 * DUP or packet id, the delivery QoS, retained messages replaced and removed, order, topics
 * compared byte for byte, nothing processed after a refused CONNECT.
 */
import { expect } from 'vitest'
import mqttPacket from 'mqtt-packet'
import type { Raw } from '../conformance/raw.js'
import { forEachMode5, test, type Mode } from './modes.js'

async function client(m: Mode, i: 0 | 1, name: string, clientId = m.id(name)): Promise<Raw> {
  const c = await m.raw(i)
  expect(await c.connect({ clientId })).toMatchObject({ reasonCode: 0 })
  return c
}

forEachMode5(
  (m) => {
    const it = test(m)

    it('[MQTT-3.2.0-1] [MQTT-3.2.0-2] [MQTT-3.1.3-5] a 23-character client id is accepted: one CONNACK, first, and only one', async () => {
      const c = await m.raw()
      c.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 60, clientId: `${m.name[0]}123456789abcdefghijKLMN`.slice(0, 23) })
      c.send({ cmd: 'pingreq' })
      await c.expect('connack')
      await c.expect('pingresp')
      c.send({ cmd: 'pingreq' })
      await c.expect('pingresp')
      expect(c.packets.map((p) => [p.cmd, p.reasonCode ?? 0])).toEqual([['connack', 0], ['pingresp', 0], ['pingresp', 0]])
    })

    it('[MQTT-2.2.1-2] [MQTT-3.3.1-2] [MQTT-4.3.1-1] a QoS 0 delivery has DUP 0 and no packet identifier, also from a QoS 0 subscription to a QoS 1 message', async () => {
      const topic = `q0/${m.id('t')}`
      const s = await client(m, 1, 'sub')
      await s.subscribe(topic, 0)
      const p = await client(m, 0, 'pub')
      await p.publish(topic, 'zero', 0)
      await p.publish(topic, 'one', 1)
      for (const payload of ['zero', 'one']) {
        const got = await s.expect('publish')
        expect([String(got.payload), got.frame[0]]).toEqual([payload, 0x30])
        // fixed header (2), topic (2 + length), then at once the properties: no packet id
        const pos = 2 + 2 + topic.length
        expect(pos + 1 + got.frame[pos]! + payload.length).toBe(got.frame.length)
      }
    })

    it('[MQTT-3.8.4-8] [MQTT-3.3.2-3] the delivery QoS is the lower of the message QoS and the granted QoS, on the topic published', async () => {
      const b = `qmin/${m.id('t')}`
      const s = await client(m, 1, 'sub')
      await s.subscribe(`${b}/one/#`, 1)
      await s.subscribe(`${b}/two/+`, 2, 2)
      const p = await client(m, 0, 'pub')
      await p.publish(`${b}/one/x`, 'a', 2, false, 1)
      await p.publish(`${b}/two/x`, 'b', 1, false, 2)
      const got: Array<[string, number]> = []
      for (let i = 0; i < 2; i++) {
        const x = await s.expect('publish')
        got.push([x.topic as string, x.qos as number])
        s.send({ cmd: 'puback', messageId: x.messageId })
      }
      expect(got).toEqual([[`${b}/one/x`, 1], [`${b}/two/x`, 1]])
    })

    it('[MQTT-3.3.1-5] [MQTT-3.3.1-6] [MQTT-3.3.1-7] [MQTT-3.3.1-8] a retained message is replaced by the next retained one, not by a non-retained one, and removed by an empty one', async () => {
      const topic = `ret/${m.id('t')}`
      const p = await client(m, 0, 'pub')
      await p.publish(topic, 'first', 1, true, 1)
      await p.publish(topic, 'second', 2, true, 2)
      await p.publish(topic, 'live only', 1, false, 3)
      const a = await client(m, 1, 'a')
      await a.subscribe(topic, 2)
      const got = await a.expect('publish')
      expect([String(got.payload), got.retain, got.qos]).toEqual(['second', true, 2])
      await p.publish(topic, '', 1, true, 4)
      const b = await client(m, 1, 'b')
      await b.subscribe(topic, 1)
      await b.subscribe(`${topic}-mark`, 0, 2)
      await p.publish(`${topic}-mark`, 'mark')
      expect(await b.until(`${topic}-mark`)).toEqual([])
    })

    it('[MQTT-4.6.0-5] [MQTT-4.6.0-6] messages of one publisher reach a subscriber in the order published', async () => {
      const topic = `order/${m.id('t')}`
      const s = await client(m, 1, 'sub')
      await s.subscribe(topic, 1)
      const p = await client(m, 0, 'pub')
      for (let i = 0; i < 20; i++) p.send({ cmd: 'publish', topic, payload: `m${i}`, qos: 1, messageId: i + 1 })
      const got: string[] = []
      for (let i = 0; i < 20; i++) {
        const x = await s.expect('publish')
        got.push(String(x.payload))
        s.send({ cmd: 'puback', messageId: x.messageId })
      }
      expect(got).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`))
    })

    it('[MQTT-4.7.3-4] [MQTT-1.5.4-3] topics are matched byte for byte: é and e + U+0301 differ, a leading U+FEFF is kept', async () => {
      const b = m.id('norm')
      const s = await client(m, 1, 'sub')
      await s.subscribe(`${b}/caf\u00e9`, 0)
      await s.subscribe(`\ufeff${b}`, 0, 2)
      await s.subscribe(`${b}-mark`, 0, 3)
      const p = await client(m, 0, 'pub')
      await p.publish(`${b}/cafe\u0301`, 'decomposed')
      await p.publish(`${b}/caf\u00e9`, 'composed')
      await p.publish(`\ufeff${b}`, 'bom')
      await p.publish(b, 'no bom')
      await p.publish(`${b}-mark`, 'mark')
      expect((await s.until(`${b}-mark`)).map((x) => [x.topic, String(x.payload)])).toEqual([
        [`${b}/caf\u00e9`, 'composed'],
        [`\ufeff${b}`, 'bom'],
      ])
    })

    it('[MQTT-3.1.4-6] nothing sent after a refused CONNECT is processed', async () => {
      const topic = `refused/${m.id('t')}`
      const s = await client(m, 1, 'sub')
      await s.subscribe(topic, 0)
      await s.subscribe(`${topic}-mark`, 0, 2)
      const c = await m.raw(0)
      // CONNACK 0x85 (client id too long), and a PUBLISH in the same write
      const connect = { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 60, clientId: 'x'.repeat(65) }
      c.send(Buffer.concat([bytesOf(connect), bytesOf({ cmd: 'publish', topic, payload: 'smuggled', qos: 0 })]))
      await c.closedBy()
      const p = await client(m, 0, 'pub')
      await p.publish(`${topic}-mark`, 'mark')
      expect(await s.until(`${topic}-mark`)).toEqual([])
    })
  },
  { max_client_id_length: 64 },
)

/** the bytes mqtt-packet writes for a v5 packet */
function bytesOf(packet: Record<string, unknown>): Buffer {
  return mqttPacket.generate(packet as unknown as mqttPacket.Packet, { protocolVersion: 5 })
}
