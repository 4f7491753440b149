/**
 * MQTT 5.0 section 4.3, Culex as the sender and the receiver of QoS 1 and 2 flows, byte level, in
 * every mode (publishers on node 0, subscribers on node 1): packet ids, DUP, PUBREL after PUBREC,
 * and a packet id reused after its flow completed.
 */
import { expect } from 'vitest'
import type { Raw } from '../conformance/raw.js'
import { forEachMode5, test, type Mode } from './modes.js'

async function client(m: Mode, i: 0 | 1, name: string): Promise<Raw> {
  const c = await m.raw(i)
  expect(await c.connect({ clientId: m.id(name) })).toMatchObject({ reasonCode: 0 })
  return c
}

forEachMode5((m) => {
  const it = test(m)

  it('[MQTT-2.2.1-4] [MQTT-4.3.2-1] [MQTT-4.3.2-2] [MQTT-4.3.3-1] [MQTT-4.3.3-2] [MQTT-3.3.1-3] unacknowledged QoS 1 and 2 deliveries have distinct non-zero packet ids and DUP 0, also for a PUBLISH that came in with DUP 1', async () => {
    const topic = `ids/${m.id('t')}`
    const s = await client(m, 1, 'sub')
    await s.subscribe(topic, 2)
    const p = await client(m, 0, 'pub')
    p.send({ cmd: 'publish', topic, payload: 'a', qos: 1, messageId: 1, dup: true })
    await p.expect('puback')
    await p.publish(topic, 'b', 2, false, 2)
    await p.publish(topic, 'c', 1, false, 3)
    const got = [await s.expect('publish'), await s.expect('publish'), await s.expect('publish')]
    expect(got.map((x) => [String(x.payload), x.qos, x.dup])).toEqual([['a', 1, false], ['b', 2, false], ['c', 1, false]])
    const ids = got.map((x) => x.messageId as number)
    expect(ids.every((id) => id > 0)).toBe(true)
    expect(new Set(ids).size).toBe(3)
  })

  it('[MQTT-4.3.3-4] [MQTT-3.6.2-1] [MQTT-4.3.3-5] Culex answers a PUBREC with a PUBREL of the same id and reason code 0x00, and finishes on PUBCOMP', async () => {
    const topic = `rel/${m.id('t')}`
    const s = await client(m, 1, 'sub')
    await s.subscribe(topic, 2)
    const p = await client(m, 0, 'pub')
    await p.publish(topic, 'two', 2)
    const got = await s.expect('publish')
    s.send({ cmd: 'pubrec', messageId: got.messageId })
    const rel = await s.expect('pubrel')
    expect([rel.messageId, rel.reasonCode ?? 0, rel.frame[0]]).toEqual([got.messageId, 0, 0x62])
    s.send({ cmd: 'pubcomp', messageId: got.messageId })
    s.send({ cmd: 'pingreq' })
    await s.expect('pingresp')
  })

  it('[MQTT-4.3.2-5] [MQTT-4.3.3-12] a packet id reused after its PUBACK or PUBCOMP is a new message: delivered again', async () => {
    const topic = `reuse/${m.id('t')}`
    const s = await client(m, 1, 'sub')
    await s.subscribe(topic, 0)
    const p = await client(m, 0, 'pub')
    await p.publish(topic, 'q1-a', 1, false, 7)
    p.send({ cmd: 'publish', topic, payload: 'q1-b', qos: 1, messageId: 7, dup: true })
    await p.expect('puback')
    await p.publish(topic, 'q2-a', 2, false, 8)
    await p.publish(topic, 'q2-b', 2, false, 8)
    const got: string[] = []
    for (let i = 0; i < 4; i++) got.push(String((await s.expect('publish')).payload))
    expect(got).toEqual(['q1-a', 'q1-b', 'q2-a', 'q2-b'])
  })
})
