/** MQTT 3.1.1 chapter 2 (fixed header flags, packet identifiers), byte level, in every mode. */
import { expect, it } from 'vitest'
import { pkt, str } from './raw.js'
import { forEachMode, type Mode } from './modes.js'

async function client(m: Mode, i: 0 | 1, name: string) {
  const c = await m.raw(i)
  await c.connect({ clientId: m.id(name) })
  return c
}

forEachMode((m) => {
  for (const [name, bytes] of [
    ['PUBACK with flags 0001', [0x41, 0x02, 0x00, 0x01]],
    ['PUBCOMP with flags 1000', [0x78, 0x02, 0x00, 0x01]],
    ['PINGREQ with flags 0100', [0xc4, 0x00]],
    ['UNSUBSCRIBE with flags 0000', [0xa0, 0x05, 0x00, 0x01, 0x00, 0x01, 0x61]],
  ] as const) {
    it(`[MQTT-2.2.2-1] [MQTT-2.2.2-2] a ${name} (reserved flags wrong) closes the connection`, async () => {
      const c = await client(m, 0, 'flags')
      c.send(Buffer.from(bytes))
      await c.closedBy()
      expect(c.unread()).toEqual([])
    })
  }

  it('[MQTT-2.3.1-4] [MQTT-4.3.2-1] QoS 1 messages the server sends carry distinct non-zero packet ids while unacknowledged, with DUP 0', async () => {
    const topic = `ids/${m.id('t')}`
    const s = await client(m, 1, 's')
    await s.subscribe(topic, 1)
    const p = await client(m, 0, 'p')
    for (let i = 1; i <= 5; i++) await p.publish(topic, String(i), 1, false, i)
    const got = []
    for (let i = 0; i < 5; i++) got.push(await s.expect('publish'))
    const ids = got.map((g) => g.messageId as number)
    expect(new Set(ids).size).toBe(5)
    expect(ids.every((id) => id > 0 && id <= 0xffff)).toBe(true)
    expect(got.every((g) => g.qos === 1 && g.dup === false)).toBe(true)
  })

  it('[MQTT-2.3.1-5] a QoS 0 PUBLISH from the server has no packet id: byte exact', async () => {
    const topic = `q0/${m.id('t')}`
    const s = await client(m, 1, 's')
    await s.subscribe(topic, 2)
    const p = await client(m, 0, 'p')
    await p.publish(topic, 'zero', 0)
    expect((await s.expect('publish')).frame).toEqual(pkt(0x30, str(topic), Buffer.from('zero')))
  })

  it('[MQTT-2.3.1-6] [MQTT-4.3.3-1] the server, sending QoS 2, answers PUBREC with a PUBREL of the same packet id, then takes PUBCOMP', async () => {
    const topic = `q2/${m.id('t')}`
    const s = await client(m, 1, 's')
    await s.subscribe(topic, 2)
    const p = await client(m, 0, 'p')
    await p.publish(topic, 'two', 2)
    const got = await s.expect('publish')
    expect([got.qos, got.dup]).toEqual([2, false])
    const id = got.messageId as number
    s.send({ cmd: 'pubrec', messageId: id })
    expect((await s.expect('pubrel')).frame).toEqual(Buffer.from([0x62, 0x02, id >> 8, id & 0xff]))
    s.send({ cmd: 'pubcomp', messageId: id })
    s.send({ cmd: 'pingreq' })
    await s.expect('pingresp')
  })
})
