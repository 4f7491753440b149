/**
 * MQTT 5.0 chapter 4 and the limits of 3.1.2 a client sets, byte level, in every mode: the
 * client's Receive Maximum (flow control, 4.9) and Maximum Packet Size on what Culex sends, QoS 2
 * exactly once, re-delivery on a session's return (on the other node in two-node mode), topics
 * starting with `$`, and a Malformed Packet or Protocol Error closing the connection (4.13).
 */
import { expect } from 'vitest'
import { pkt, str, type Raw } from '../conformance/raw.js'
import { forEachMode5, test, type Mode } from './modes.js'

async function client(m: Mode, i: 0 | 1, name: string, opts: Record<string, unknown> = {}): Promise<Raw> {
  const c = await m.raw(i)
  expect(await c.connect({ clientId: m.id(name), ...opts })).toMatchObject({ reasonCode: 0 })
  return c
}

forEachMode5((m) => {
  const it = test(m)

  it('[MQTT-3.3.4-9] [MQTT-4.9.0-2] no more unacknowledged QoS 1 PUBLISHes than the Receive Maximum of the client (a PINGREQ meanwhile is answered); a PUBACK lets the next one go', async () => {
    const topic = `rm/${m.id('t')}`
    const s = await client(m, 1, 'sub', { properties: { receiveMaximum: 2 } })
    await s.subscribe(topic, 1)
    const p = await client(m, 0, 'pub')
    for (let i = 0; i < 4; i++) await p.publish(topic, `m${i}`, 1, false, i + 1)
    const first = [await s.expect('publish'), await s.expect('publish')]
    s.send({ cmd: 'pingreq' })
    await s.expect('pingresp')
    expect(s.unread().filter((x) => x.cmd === 'publish')).toEqual([])
    s.send({ cmd: 'puback', messageId: first[0]!.messageId })
    expect(String((await s.expect('publish')).payload)).toBe('m2')
    expect(s.unread().filter((x) => x.cmd === 'publish')).toEqual([])
  })

  it('[MQTT-3.1.2-24] [MQTT-3.1.2-25] a message larger than the Maximum Packet Size of the client is not sent to it; the next one that fits is', async () => {
    const topic = `mps/${m.id('t')}`
    const s = await client(m, 1, 'sub', { properties: { maximumPacketSize: 200 } })
    await s.subscribe(topic, 1)
    const p = await client(m, 0, 'pub')
    await p.publish(topic, 'x'.repeat(500), 1, false, 1)
    await p.publish(topic, 'small', 1, false, 2)
    const got = await s.expect('publish')
    expect(String(got.payload)).toBe('small')
    expect(s.packets.every((x) => x.frame.length <= 200)).toBe(true)
  })

  it('[MQTT-4.3.3-8] [MQTT-4.3.3-10] [MQTT-4.3.3-11] [MQTT-2.2.1-5] a QoS 2 PUBLISH sent again before PUBREL gets another PUBREC and is delivered once; PUBREL gets PUBCOMP', async () => {
    const topic = `q2/${m.id('t')}`
    const s = await client(m, 1, 'sub')
    await s.subscribe(topic, 2)
    await s.subscribe(`${topic}-mark`, 0, 2)
    const p = await client(m, 0, 'pub')
    p.send({ cmd: 'publish', topic, payload: 'once', qos: 2, messageId: 5 })
    expect(await p.expect('pubrec')).toMatchObject({ messageId: 5 })
    p.send({ cmd: 'publish', topic, payload: 'once', qos: 2, messageId: 5, dup: true })
    expect(await p.expect('pubrec')).toMatchObject({ messageId: 5 })
    p.send({ cmd: 'pubrel', messageId: 5 })
    expect(await p.expect('pubcomp')).toMatchObject({ messageId: 5 })
    await p.publish(`${topic}-mark`, 'mark')
    const got = (await s.until(`${topic}-mark`)).filter((x) => x.cmd === 'publish')
    expect(got.map((x) => String(x.payload))).toEqual(['once'])
  })

  it('[MQTT-4.4.0-1] [MQTT-3.3.1-1] an unacknowledged QoS 1 message is sent again, DUP 1 and same packet id, when the session returns with Clean Start 0', async () => {
    const id = m.id('redo')
    const topic = `redo/${id}`
    const s = await m.raw(0)
    await s.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })
    await s.subscribe(topic, 1)
    const p = await client(m, 0, 'pub')
    await p.publish(topic, 'again', 1)
    const first = await s.expect('publish')
    s.destroy()
    await s.closedBy()
    const back = await m.raw(1)
    expect(await back.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })).toMatchObject({ sessionPresent: true })
    const again = await back.expect('publish')
    expect([String(again.payload), again.dup, again.messageId]).toEqual(['again', true, first.messageId])
  })

  it('[MQTT-4.1.0-1] the session state outlives its Session Expiry Interval while the connection is open: subscription and unacknowledged message kept', async () => {
    const id = m.id('open')
    const topic = `open/${id}`
    const props = { clean: false, properties: { sessionExpiryInterval: 1 } }
    const s = await client(m, 1, 'sub', { clientId: id, ...props })
    await s.subscribe(topic, 1)
    const p = await client(m, 0, 'pub')
    await p.publish(topic, 'kept', 1)
    const kept = await s.expect('publish')
    // the interval counts from the end of the connection, not while it is open
    await new Promise((r) => setTimeout(r, 1500))
    await p.publish(topic, 'still', 1, false, 2)
    expect(String((await s.expect('publish')).payload)).toBe('still')
    s.destroy()
    await s.closedBy()
    const back = await m.raw(0)
    expect(await back.connect({ clientId: id, ...props })).toMatchObject({ sessionPresent: true })
    const again = await back.expect('publish')
    expect([String(again.payload), again.messageId, again.dup]).toEqual(['kept', kept.messageId, true])
  })

  it('[MQTT-4.7.2-1] filters starting with a wildcard do not match topics starting with $', async () => {
    const b = m.id('dollar')
    const s = await client(m, 1, 'sub')
    s.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '#', qos: 0 }] })
    await s.expect('suback')
    await s.subscribe(`+/${b}`, 0, 2)
    const p = await client(m, 0, 'pub')
    await p.publish(`$x/${b}`, 'hidden', 1)
    await p.publish(`mark/${b}`, 'mark', 1)
    expect((await s.until(`mark/${b}`)).filter((x) => x.cmd === 'publish' && String(x.topic).startsWith('$'))).toEqual([])
  })

  it('[MQTT-4.13.1-1] [MQTT-1.5.4-1] [MQTT-3.3.2-1] a Malformed Packet (a topic that is not UTF-8) closes the connection, nothing delivered', async () => {
    const s = await client(m, 1, 'sub')
    await s.subscribe('#', 0)
    const c = await client(m, 0, 'bad')
    c.send(pkt(0x30, str(Buffer.from([0x61, 0xc0, 0xaf])), Buffer.from([0]), Buffer.from('x')))
    await c.closedBy()
    expect((await s.quiet(200)).filter((x) => x.cmd === 'publish' && String(x.topic).startsWith('a'))).toEqual([])
  })

  it('[MQTT-4.7.3-2] [MQTT-1.5.4-2] a topic holding U+0000 closes the connection', async () => {
    const c = await client(m, 0, 'nul')
    c.send(pkt(0x30, str('a\u0000b'), Buffer.from([0]), Buffer.from('x')))
    await c.closedBy()
  })
})
