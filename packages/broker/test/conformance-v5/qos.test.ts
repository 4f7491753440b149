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

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const session = { clean: false, properties: { sessionExpiryInterval: 60 } }

/** a subscriber to `topic` (QoS 2) with a session that outlives its connection, on node 1 */
async function persistent(m: Mode, id: string, topic: string): Promise<Raw> {
  const s = await m.raw(1)
  expect(await s.connect({ clientId: id, ...session })).toMatchObject({ reasonCode: 0 })
  await s.subscribe(topic, 2)
  return s
}

/** the session `id` returns on node 0 (the other node in two-node mode): Session Present 1 */
async function back(m: Mode, id: string): Promise<Raw> {
  const c = await m.raw(0)
  expect(await c.connect({ clientId: id, ...session })).toMatchObject({ reasonCode: 0, sessionPresent: true })
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

  it('[MQTT-4.3.2-3] [MQTT-4.3.3-3] [MQTT-4.3.3-6] a delivery is unacknowledged until its PUBACK / PUBREC: sent again when the session returns, DUP 1, same id; after PUBREC only the PUBREL is sent again', async () => {
    const id = m.id('unacked')
    const topic = `unacked/${id}`
    const s = await persistent(m, id, topic)
    const p = await client(m, 0, 'pub')
    await p.publish(topic, 'acked', 1)
    await p.publish(topic, 'q1', 1, false, 2)
    await p.publish(topic, 'q2', 2, false, 3)
    await p.publish(topic, 'recd', 2, false, 4)
    const [acked, q1, q2, recd] = [await s.expect('publish'), await s.expect('publish'), await s.expect('publish'), await s.expect('publish')]
    s.send({ cmd: 'puback', messageId: acked!.messageId })
    s.send({ cmd: 'pubrec', messageId: recd!.messageId })
    await s.expect('pubrel')
    s.destroy()
    await s.closedBy()
    const c = await back(m, id)
    const again = [await c.next(), await c.next(), await c.next(), ...(await c.quiet(300))]
    const seen = (x: (typeof again)[number]): unknown[] => (x.cmd === 'publish' ? ['publish', String(x.payload), x.dup, x.messageId] : [x.cmd, x.messageId])
    expect(again.map(seen)).toEqual([
      ['publish', 'q1', true, q1!.messageId],
      ['publish', 'q2', true, q2!.messageId],
      ['pubrel', recd!.messageId],
    ])
  })

  it('[MQTT-4.3.3-7] [MQTT-3.3.2-5] QoS 2 and 1 messages with a Message Expiry Interval are sent again after it passed once they were sent (DUP 1, same id); those still queued expire', async () => {
    const id = m.id('noexp')
    const topic = `noexp/${id}`
    const s = await persistent(m, id, topic)
    const p = await client(m, 0, 'pub')
    await p.publish(topic, 'sent2', 2, false, 1, { messageExpiryInterval: 1 })
    await p.publish(topic, 'sent1', 1, false, 2, { messageExpiryInterval: 1 })
    const sent = [await s.expect('publish'), await s.expect('publish')]
    s.destroy()
    await s.closedBy()
    await p.publish(topic, 'queued', 2, false, 3, { messageExpiryInterval: 1 })
    await sleep(1300)
    const c = await back(m, id)
    const got = [await c.expect('publish'), await c.expect('publish'), ...(await c.quiet(300))]
    expect(got.map((x) => [String(x.payload), x.qos, x.dup, x.messageId])).toEqual(sent.map((x) => [String(x.payload), x.qos, true, x.messageId]))
    // the remaining time is spent: 1 s, the least the property can say
    expect(got.map((x) => (x.properties as { messageExpiryInterval?: number }).messageExpiryInterval)).toEqual([1, 1])
  })

  it('[MQTT-4.3.3-9] after a PUBREC of 0x80 or more (0x99: payload not UTF-8) a PUBLISH with the same packet id is a new message: acknowledged and delivered', async () => {
    const topic = `rec80/${m.id('t')}`
    const s = await client(m, 1, 'sub')
    await s.subscribe(topic, 2)
    const p = await client(m, 0, 'pub')
    p.send({ cmd: 'publish', topic, payload: Buffer.from([0xc0, 0xaf]), qos: 2, messageId: 9, properties: { payloadFormatIndicator: true } })
    expect(await p.expect('pubrec')).toMatchObject({ messageId: 9, reasonCode: 0x99 })
    p.send({ cmd: 'publish', topic, payload: 'new', qos: 2, messageId: 9, dup: true })
    expect(await p.expect('pubrec')).toMatchObject({ messageId: 9, reasonCode: 0 })
    p.send({ cmd: 'pubrel', messageId: 9 })
    expect(await p.expect('pubcomp')).toMatchObject({ messageId: 9 })
    expect(String((await s.expect('publish')).payload)).toBe('new')
  })

  it('[MQTT-4.3.3-13] a QoS 2 flow whose message expired before its PUBREL is still completed: PUBCOMP', async () => {
    const topic = `exprel/${m.id('t')}`
    const s = await client(m, 1, 'sub')
    await s.subscribe(topic, 2)
    const p = await client(m, 0, 'pub')
    p.send({ cmd: 'publish', topic, payload: 'short', qos: 2, messageId: 3, properties: { messageExpiryInterval: 1 } })
    expect(await p.expect('pubrec')).toMatchObject({ messageId: 3, reasonCode: 0 })
    await sleep(1500)
    p.send({ cmd: 'pubrel', messageId: 3 })
    const comp = await p.expect('pubcomp')
    expect([comp.messageId, comp.reasonCode ?? 0]).toEqual([3, 0])
    expect(String((await s.expect('publish')).payload)).toBe('short')
  })
})
