/**
 * MQTT 3.1.1 chapters 3.8-3.14 (SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, DISCONNECT),
 * byte level, in every mode; publishers sit on the other node in two-node mode.
 */
import { expect, it } from 'vitest'
import { pkt, str } from './raw.js'
import { forEachMode, type Mode } from './modes.js'

async function client(m: Mode, i: 0 | 1, name: string, opts: Record<string, unknown> = {}) {
  const c = await m.raw(i)
  await c.connect({ clientId: m.id(name), ...opts })
  return c
}

const msgId = Buffer.from([0x00, 0x0a])

forEachMode((m) => {
  for (const first of [0x80, 0x83, 0x8a]) {
    it(`[MQTT-3.8.1-1] [MQTT-2.2.2-1] [MQTT-2.2.2-2] a SUBSCRIBE with fixed header flags ${(first & 0xf).toString(2).padStart(4, '0')} closes the connection`, async () => {
      const c = await client(m, 0, 'sflags')
      c.send(pkt(first, msgId, str('a/b'), Buffer.from([0])))
      await c.closedBy()
      expect(c.unread()).toEqual([])
    })
  }

  it('[MQTT-3.8.3-1] [MQTT-1.5.3-1] a topic filter that is ill-formed UTF-8 closes the connection', async () => {
    const c = await client(m, 0, 'sutf')
    c.send(pkt(0x82, msgId, str(Buffer.from([0x61, 0xed, 0xbf, 0xbf])), Buffer.from([0])))
    await c.closedBy()
    expect(c.unread()).toEqual([])
  })

  it('[MQTT-3.8.3-2] wildcard filters are supported: granted, and they match', async () => {
    const base = m.id('w')
    const s = await client(m, 1, 's')
    s.send({ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: `${base}/+/x`, qos: 1 }, { topic: `${base}/#`, qos: 0 }] })
    expect((await s.expect('suback')).granted).toEqual([1, 0])
    const p = await client(m, 0, 'p')
    await p.publish(`${base}/a/x`, 'hit', 1)
    expect(String((await s.expect('publish')).payload)).toBe('hit')
  })

  it('[MQTT-3.8.3-3] a SUBSCRIBE without a topic filter closes the connection, unanswered', async () => {
    const c = await client(m, 0, 'sempty')
    c.send(pkt(0x82, msgId))
    await c.closedBy()
    expect(c.unread()).toEqual([])
  })

  for (const [name, options] of [['QoS 3', 0x03], ['reserved bits', 0x04], ['reserved bit 7', 0x81]] as const) {
    it(`[MQTT-3.8.3-4] a SUBSCRIBE requesting ${name} (options 0x${options.toString(16)}) closes the connection`, async () => {
      const c = await client(m, 0, 'sres')
      c.send(pkt(0x82, msgId, str('a/b'), Buffer.from([options])))
      await c.closedBy()
      expect(c.unread()).toEqual([])
    })
  }

  it('[MQTT-3.8.4-1] [MQTT-3.8.4-2] [MQTT-2.3.1-7] [MQTT-3.9.3-2] a SUBSCRIBE gets a SUBACK with its packet id, byte exact', async () => {
    const c = await client(m, 0, 'sack')
    c.send(pkt(0x82, Buffer.from([0xab, 0xcd]), str('x/y'), Buffer.from([2])))
    expect((await c.expect('suback')).frame).toEqual(Buffer.from([0x90, 0x03, 0xab, 0xcd, 0x02]))
  })

  it('[MQTT-3.8.4-3] a SUBSCRIBE with an existing filter replaces its subscription and re-sends the retained message', async () => {
    const topic = `rep/${m.id('t')}`
    const p = await client(m, 0, 'p')
    await p.publish(topic, 'kept', 2, true)
    const s = await client(m, 1, 's')
    await s.subscribe(`${topic}/mark`, 1, 3)
    await s.subscribe(topic, 2, 1)
    expect((await s.expect('publish')).qos).toBe(2)
    await s.subscribe(topic, 1, 2)
    const again = await s.expect('publish')
    expect([String(again.payload), again.retain, again.qos]).toEqual(['kept', true, 1])
    await p.publish(topic, 'live', 2, false, 9)
    const live = await s.expect('publish')
    expect([String(live.payload), live.qos]).toEqual(['live', 1])
    // one subscription, not two: no second copy before the marker
    await p.publish(`${topic}/mark`, 'mark', 1, false, 10)
    expect(await s.until(`${topic}/mark`)).toEqual([])
  })

  it('[MQTT-3.8.4-4] [MQTT-3.8.4-5] [MQTT-3.9.3-1] several filters in one SUBSCRIBE: one SUBACK with a return code per filter, in order', async () => {
    const base = m.id('multi')
    const s = await client(m, 1, 's')
    s.send({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: `${base}/2`, qos: 2 }, { topic: `${base}/0`, qos: 0 }, { topic: `${base}/1`, qos: 1 }] })
    expect((await s.expect('suback')).frame).toEqual(Buffer.from([0x90, 0x05, 0x00, 0x03, 0x02, 0x00, 0x01]))
    const p = await client(m, 0, 'p')
    for (const n of [0, 1, 2]) await p.publish(`${base}/${n}`, String(n), 2, false, n + 1)
    const got = [await s.expect('publish'), await s.expect('publish'), await s.expect('publish')]
    expect(got.map((g) => `${String(g.payload)}:${g.qos}`).sort()).toEqual(['0:0', '1:1', '2:2'])
  })

  for (const [granted, published, expected] of [[1, 2, 1], [0, 2, 0], [2, 1, 1], [1, 0, 0]] as const) {
    it(`[MQTT-3.8.4-6] a QoS ${published} message on a wildcard filter granted QoS ${granted} is delivered at QoS ${expected}`, async () => {
      const base = m.id('min')
      const s = await client(m, 1, 's')
      await s.subscribe(`${base}/#`, granted)
      const p = await client(m, 0, 'p')
      await p.publish(`${base}/x`, 'x', published)
      expect((await s.expect('publish')).qos).toBe(expected)
    })
  }

  it('[MQTT-3.8.4-6] a retained QoS 2 message is sent at the QoS granted to the wildcard filter (1)', async () => {
    const base = m.id('minr')
    const p = await client(m, 0, 'p')
    await p.publish(`${base}/x`, 'x', 2, true)
    const s = await client(m, 1, 's')
    await s.subscribe(`${base}/+`, 1)
    expect((await s.expect('publish')).qos).toBe(1)
  })

  it('[MQTT-3.10.1-1] an UNSUBSCRIBE whose fixed header flags are not 0010 closes the connection', async () => {
    const c = await client(m, 0, 'uflags')
    c.send(pkt(0xa0, msgId, str('a/b')))
    await c.closedBy()
    expect(c.unread()).toEqual([])
  })

  it('[MQTT-3.10.3-1] [MQTT-1.5.3-1] an UNSUBSCRIBE filter that is ill-formed UTF-8 closes the connection', async () => {
    const c = await client(m, 0, 'uutf')
    c.send(pkt(0xa2, msgId, str(Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]))))
    await c.closedBy()
    expect(c.unread()).toEqual([])
  })

  it('[MQTT-3.10.3-2] an UNSUBSCRIBE without a topic filter closes the connection, no UNSUBACK', async () => {
    const c = await client(m, 0, 'uempty')
    c.send(pkt(0xa2, msgId))
    await c.closedBy()
    expect(c.unread()).toEqual([])
  })

  it('[MQTT-3.10.4-1] [MQTT-3.10.4-2] UNSUBSCRIBE removes only the filter equal character by character; then no new message for it', async () => {
    const base = m.id('u')
    const s = await client(m, 1, 's')
    await s.subscribe(`${base}-mark`, 0, 9)
    await s.subscribe(`${base}/+`, 1)
    s.send({ cmd: 'unsubscribe', messageId: 4, unsubscriptions: [`${base}/a`] })
    await s.expect('unsuback')
    const p = await client(m, 0, 'p')
    await p.publish(`${base}/a`, 'still', 1, false, 1)
    expect(String((await s.expect('publish')).payload)).toBe('still')
    s.send({ cmd: 'puback', messageId: (s.packets.at(-1) as { messageId: number }).messageId })
    s.send({ cmd: 'unsubscribe', messageId: 5, unsubscriptions: [`${base}/+`] })
    await s.expect('unsuback')
    await p.publish(`${base}/a`, 'gone', 1, false, 2)
    await p.publish(`${base}-mark`, 'mark', 1, false, 3)
    expect(await s.until(`${base}-mark`)).toEqual([])
  })

  it('[MQTT-3.10.4-3] a QoS 2 delivery started before the UNSUBSCRIBE is completed after it', async () => {
    const topic = `u3/${m.id('t')}`
    const s = await client(m, 1, 's')
    await s.subscribe(topic, 2)
    const p = await client(m, 0, 'p')
    await p.publish(topic, 'x', 2)
    const got = await s.expect('publish')
    s.send({ cmd: 'unsubscribe', messageId: 6, unsubscriptions: [topic] })
    await s.expect('unsuback')
    s.send({ cmd: 'pubrec', messageId: got.messageId })
    expect(await s.expect('pubrel')).toMatchObject({ messageId: got.messageId })
  })

  it('[MQTT-3.10.4-4] [MQTT-3.10.4-5] [MQTT-2.3.1-7] an UNSUBSCRIBE of a filter never subscribed still gets an UNSUBACK with its packet id, byte exact', async () => {
    const c = await client(m, 0, 'unone')
    c.send(pkt(0xa2, Buffer.from([0x12, 0x34]), str('never/subscribed')))
    expect((await c.expect('unsuback')).frame).toEqual(Buffer.from([0xb0, 0x02, 0x12, 0x34]))
  })

  it('[MQTT-3.10.4-6] several filters in one UNSUBSCRIBE: all removed, one UNSUBACK', async () => {
    const base = m.id('umulti')
    const s = await client(m, 1, 's')
    s.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `${base}/a`, qos: 1 }, { topic: `${base}/b`, qos: 1 }, { topic: `${base}-mark`, qos: 0 }] })
    await s.expect('suback')
    s.send({ cmd: 'unsubscribe', messageId: 7, unsubscriptions: [`${base}/a`, `${base}/b`] })
    expect(await s.expect('unsuback')).toMatchObject({ messageId: 7 })
    const p = await client(m, 0, 'p')
    await p.publish(`${base}/a`, 'x', 1, false, 1)
    await p.publish(`${base}/b`, 'x', 1, false, 2)
    await p.publish(`${base}-mark`, 'mark', 1, false, 3)
    expect(await s.until(`${base}-mark`)).toEqual([])
  })

  it('[MQTT-3.12.4-1] a PINGREQ gets a PINGRESP, byte exact', async () => {
    const c = await client(m, 0, 'ping')
    c.send(Buffer.from([0xc0, 0x00]))
    expect((await c.expect('pingresp')).frame).toEqual(Buffer.from([0xd0, 0x00]))
  })

  it('[MQTT-3.14.1-1] a DISCONNECT with reserved bits set closes the connection as a failure: the will is published', async () => {
    const topic = `d/${m.id('t')}`
    const w = await client(m, 1, 'w')
    await w.subscribe(topic, 1)
    const c = await client(m, 0, 'dis', { will: { topic, payload: Buffer.from('will'), qos: 1, retain: false } })
    c.send(Buffer.from([0xe1, 0x00]))
    await c.closedBy()
    expect(String((await w.expect('publish', 5000)).payload)).toBe('will')
  })
})
