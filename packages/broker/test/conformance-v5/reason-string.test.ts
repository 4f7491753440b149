/**
 * MQTT 5.0: no Reason String or User Property that would make a packet larger than the receiver's
 * Maximum Packet Size (3.2.2, 3.6.2, 3.7.2, 3.9.2, 3.11.2, 3.14.2), byte level, in every mode.
 * Culex puts a Reason String on one kind of packet only, the PUBACK / PUBREC of a refused PUBLISH
 * (0x87, 0x97, 0x99), and leaves it out when it would not fit (broker/mqtt5-puback.ts; tested in
 * ch3-publish.test.ts). Here, for every other packet it sends, each reason code a client can get
 * from it without special configuration: none carries either property, whatever the client's
 * Maximum Packet Size (the least that lets the packet through), so none can grow past it.
 */
import { expect } from 'vitest'
import type { Any, Raw } from '../conformance/raw.js'
import { forEachMode5, test, type Mode } from './modes.js'

/** every packet in `ps` without Reason String and User Property, within `max` bytes */
function bare(ps: Any[], max: number): void {
  for (const p of ps) {
    const props = (p.properties ?? {}) as Record<string, unknown>
    expect([p.cmd, props.reasonString, props.userProperties], p.cmd!).toEqual([p.cmd, undefined, undefined])
    expect(p.frame.length, p.cmd!).toBeLessThanOrEqual(max)
  }
}

async function client(m: Mode, i: 0 | 1, name: string, max: number, opts: Record<string, unknown> = {}): Promise<Raw> {
  const c = await m.raw(i)
  expect(await c.connect({ clientId: m.id(name), properties: { maximumPacketSize: max }, ...opts })).toMatchObject({ reasonCode: 0 })
  return c
}

forEachMode5((m) => {
  const it = test(m)

  it('[MQTT-3.2.2-19] [MQTT-3.2.2-20] a CONNACK, accepting (0x00) or refusing (0x86 bad user name or password, 0x8C authentication method), has no Reason String or User Property', async () => {
    const max = 64
    const acks: Any[] = []
    const ok = await m.raw()
    acks.push(await ok.connect({ clientId: m.id('ok'), properties: { maximumPacketSize: max } }))
    for (const extra of [{ username: 'nobody', password: Buffer.from('pw') }, { properties: { maximumPacketSize: max, authenticationMethod: 'SCRAM-SHA-1' } }]) {
      const c = await m.raw()
      c.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 60, clientId: m.id('no'), properties: { maximumPacketSize: max }, ...extra })
      await c.closedBy()
      acks.push(...c.packets)
    }
    expect(acks.map((p) => [p.cmd, p.reasonCode])).toEqual([
      ['connack', 0],
      ['connack', 0x86],
      ['connack', 0x8c],
    ])
    bare(acks, max)
  })

  it('[MQTT-3.6.2-2] [MQTT-3.7.2-2] the PUBREL Culex sends as QoS 2 sender and the PUBCOMP it sends as receiver have no Reason String: 4 bytes', async () => {
    const topic = `rel/${m.id('t')}`
    const s = await client(m, 1, 'sub', 32)
    await s.subscribe(topic, 2)
    const p = await client(m, 0, 'pub', 8)
    p.send({ cmd: 'publish', topic, payload: 'x', qos: 2, messageId: 1 })
    await p.expect('pubrec')
    p.send({ cmd: 'pubrel', messageId: 1 })
    const comp = await p.expect('pubcomp')
    const got = await s.expect('publish')
    s.send({ cmd: 'pubrec', messageId: got.messageId })
    const rel = await s.expect('pubrel')
    bare([comp, rel], 4)
  })

  it('[MQTT-3.9.2-1] [MQTT-3.11.2-1] SUBACK and UNSUBACK have no Reason String, also for a refused filter (0x8F) or a subscription that did not exist (0x11)', async () => {
    const t = m.id('t')
    const c = await client(m, 0, 'acks', 8)
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `${t}/#`, qos: 1 }, { topic: `${t}/a#`, qos: 1 }] })
    const suback = await c.expect('suback')
    c.send({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: [`${t}/#`, `${t}/none`, `${t}/a#`] })
    const unsuback = await c.expect('unsuback')
    expect([suback.granted, unsuback.granted]).toEqual([
      [1, 0x8f],
      [0, 0x11, 0x8f],
    ])
    bare([suback, unsuback], 8)
  })

  it('[MQTT-3.14.2-3] [MQTT-3.14.2-4] a DISCONNECT from Culex has no Reason String or User Property: 0x8E session taken over, 0x82 protocol error, 0x94 topic alias invalid', async () => {
    const max = 8
    const id = m.id('twin')
    const first = await client(m, 0, 'twin', max, { clientId: id })
    await client(m, 1, 'twin', max, { clientId: id })
    const proto = await client(m, 0, 'proto', max)
    proto.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `$share/g/${id}`, qos: 0, nl: true }] })
    const alias = await client(m, 0, 'alias', max)
    alias.send({ cmd: 'publish', topic: id, payload: 'x', qos: 0, properties: { topicAlias: 0 } })
    const sent: Any[] = []
    for (const c of [first, proto, alias]) {
      await c.closedBy(5000)
      sent.push(...c.unread())
    }
    expect(sent.map((p) => [p.cmd, p.reasonCode])).toEqual([
      ['disconnect', 0x8e],
      ['disconnect', 0x82],
      ['disconnect', 0x94],
    ])
    bare(sent, max)
  })
})
