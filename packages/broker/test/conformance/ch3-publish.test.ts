/**
 * MQTT 3.1.1 chapters 3.3-3.7 (PUBLISH, retained messages, PUBACK, PUBREC, PUBREL, PUBCOMP) and
 * [MQTT-4.8.0-1] for acks of the wrong kind, byte level, in every mode; a later subscriber sits on
 * the other node in two-node mode.
 */
import { expect, it } from 'vitest'
import { pkt, str } from './raw.js'
import { forEachMode, type Mode } from './modes.js'

/** a connected raw client on node i */
async function client(m: Mode, i: 0 | 1, name: string) {
  const c = await m.raw(i)
  await c.connect({ clientId: m.id(name) })
  return c
}

forEachMode((m) => {
  it('[MQTT-3.3.1-2] [MQTT-3.3.1-3] [MQTT-4.3.1-1] a message delivered at QoS 0 has DUP 0, whatever DUP its PUBLISH had', async () => {
    const topic = `dup/${m.id('t')}`
    const s = await client(m, 1, 's')
    await s.subscribe(topic, 0)
    const p = await client(m, 0, 'p')
    p.send({ cmd: 'publish', topic, payload: 'x', qos: 1, dup: true, messageId: 3 })
    await p.expect('puback')
    expect((await s.expect('publish')).frame[0]).toBe(0x30) // PUBLISH, DUP 0, QoS 0, RETAIN 0
  })

  it('[MQTT-3.3.1-3] a first delivery at QoS 1 has DUP 0 even when the incoming PUBLISH had DUP 1', async () => {
    const topic = `dup1/${m.id('t')}`
    const s = await client(m, 1, 's')
    await s.subscribe(topic, 1)
    const p = await client(m, 0, 'p')
    p.send({ cmd: 'publish', topic, payload: 'x', qos: 1, dup: true, messageId: 4 })
    const got = await s.expect('publish')
    expect([got.qos, got.dup]).toEqual([1, false])
  })

  it('[MQTT-3.3.1-4] a PUBLISH with both QoS bits set closes the connection', async () => {
    const c = await client(m, 0, 'q3')
    c.send(pkt(0x36, str('q/3'), Buffer.from([0, 1]), Buffer.from('x')))
    await c.closedBy()
  })

  it('[MQTT-3.3.1-5] [MQTT-3.3.1-8] a retained message is stored with its QoS and sent with RETAIN 1 to a later subscriber', async () => {
    const topic = `ret/${m.id('t')}`
    const p = await client(m, 0, 'p')
    await p.publish(topic, 'kept', 1, true)
    const s = await client(m, 1, 's')
    await s.subscribe(topic, 2)
    const got = await s.expect('publish')
    expect([String(got.payload), got.qos, got.retain]).toEqual(['kept', 1, true])
    expect(got.frame[0]).toBe(0x33) // PUBLISH, DUP 0, QoS 1, RETAIN 1
  })

  it('[MQTT-3.3.1-6] a new subscription gets the last retained message of each matching topic', async () => {
    const base = `ret6/${m.id('t')}`
    const p = await client(m, 0, 'p')
    await p.publish(`${base}/a`, 'a1', 1, true, 1)
    await p.publish(`${base}/a`, 'a2', 1, true, 2)
    await p.publish(`${base}/b`, 'b1', 1, true, 3)
    const s = await client(m, 1, 's')
    await s.subscribe(`${base}/+`, 1)
    const got = [await s.expect('publish'), await s.expect('publish')].map((g) => `${g.topic}=${g.payload}`).sort()
    expect(got).toEqual([`${base}/a=a2`, `${base}/b=b1`])
    expect(await s.quiet(200)).toEqual([])
  })

  it('[MQTT-3.3.1-7] a retained QoS 0 message replaces the retained message of its topic', async () => {
    const topic = `ret7/${m.id('t')}`
    const p = await client(m, 0, 'p')
    await p.publish(topic, 'old', 1, true)
    await p.publish(topic, 'new', 0, true)
    p.send({ cmd: 'pingreq' })
    await p.expect('pingresp')
    const s = await client(m, 1, 's')
    await s.subscribe(topic, 1)
    const got = await s.quiet(250)
    expect(got.map((g) => String(g.payload))).not.toContain('old')
  })

  it('[MQTT-3.3.1-9] a retained message sent to an established subscription has RETAIN 0', async () => {
    const topic = `ret9/${m.id('t')}`
    const s = await client(m, 1, 's')
    await s.subscribe(topic, 1)
    const p = await client(m, 0, 'p')
    await p.publish(topic, 'live', 1, true)
    expect((await s.expect('publish')).retain).toBe(false)
  })

  it('[MQTT-3.3.1-10] [MQTT-3.3.1-11] a zero-byte retained PUBLISH is delivered normally, removes the retained message and is not stored', async () => {
    const topic = `ret10/${m.id('t')}`
    const p = await client(m, 0, 'p')
    await p.publish(topic, 'old', 1, true, 1)
    const s = await client(m, 1, 's')
    await s.subscribe(topic, 1)
    await s.expect('publish')
    await p.publish(topic, '', 1, true, 2)
    const empty = await s.expect('publish')
    expect([(empty.payload as Buffer).length, empty.retain]).toEqual([0, false])
    const late = await client(m, 1, 'late')
    await late.subscribe(topic, 1)
    expect(await late.quiet(250)).toEqual([])
  })

  it('[MQTT-3.3.1-12] a PUBLISH with RETAIN 0 neither stores nor replaces the retained message', async () => {
    const topic = `ret12/${m.id('t')}`
    const p = await client(m, 0, 'p')
    await p.publish(topic, 'kept', 1, true, 1)
    await p.publish(topic, 'passing', 1, false, 2)
    const s = await client(m, 1, 's')
    await s.subscribe(topic, 1)
    expect(String((await s.expect('publish')).payload)).toBe('kept')
    expect(await s.quiet(200)).toEqual([])
  })

  it('[MQTT-3.3.2-1] [MQTT-1.5.3-1] a topic name that is ill-formed UTF-8 closes the connection', async () => {
    const c = await client(m, 0, 'utf')
    c.send(pkt(0x30, str(Buffer.from([0x61, 0x2f, 0xc3, 0x28])), Buffer.from('x')))
    await c.closedBy()
  })

  for (const topic of ['a/+', 'a/#', '#']) {
    it(`[MQTT-3.3.2-2] [MQTT-4.7.1-1] a topic name with a wildcard (${topic}) closes the connection`, async () => {
      const c = await client(m, 0, 'wild')
      c.send(pkt(0x30, str(topic), Buffer.from('x')))
      await c.closedBy()
    })
  }

  it('[MQTT-3.3.2-3] the topic name sent to a subscriber is the published one, which matches its filter', async () => {
    const base = m.id('t')
    const s = await client(m, 1, 's')
    await s.subscribe(`${base}/+/c`, 0)
    const p = await client(m, 0, 'p')
    await p.publish(`${base}/b/c`, 'x', 1)
    expect((await s.expect('publish')).topic).toBe(`${base}/b/c`)
  })

  it('[MQTT-3.3.4-1] [MQTT-2.3.1-6] PUBLISH is answered per its QoS: nothing, PUBACK or PUBREC, then PUBCOMP, with its packet id', async () => {
    const c = await client(m, 0, 'resp')
    c.send({ cmd: 'publish', topic: 'resp/0', payload: 'x', qos: 0 })
    c.send({ cmd: 'publish', topic: 'resp/1', payload: 'x', qos: 1, messageId: 0x1234 })
    expect(await c.next()).toMatchObject({ cmd: 'puback', messageId: 0x1234 })
    c.send({ cmd: 'publish', topic: 'resp/2', payload: 'x', qos: 2, messageId: 0xfffe })
    expect(await c.next()).toMatchObject({ cmd: 'pubrec', messageId: 0xfffe })
    c.send({ cmd: 'pubrel', messageId: 0xfffe })
    expect(await c.next()).toMatchObject({ cmd: 'pubcomp', messageId: 0xfffe })
    expect(c.bytes.subarray(0, 4 + 4)).toEqual(Buffer.from([0x20, 2, 0, 0, 0x40, 2, 0x12, 0x34]))
  })

  it('[MQTT-3.3.5-1] a client matching a message through overlapping subscriptions gets it at the highest of their QoS', async () => {
    const base = m.id('o')
    const s = await client(m, 1, 's')
    s.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `${base}/#`, qos: 0 }, { topic: `${base}/x`, qos: 1 }] })
    await s.expect('suback')
    const p = await client(m, 0, 'p')
    await p.publish(`${base}/x`, 'x', 1)
    const got = [await s.expect('publish'), ...(await s.quiet(200))]
    expect(Math.max(...got.map((g) => g.qos as number))).toBe(1)
  })

  it('[MQTT-3.6.1-1] [MQTT-2.2.2-2] a PUBREL whose fixed header flags are not 0010 closes the connection', async () => {
    const c = await client(m, 0, 'rel')
    c.send({ cmd: 'publish', topic: 'rel/x', payload: 'x', qos: 2, messageId: 5 })
    await c.expect('pubrec')
    c.send(Buffer.from([0x60, 0x02, 0x00, 0x05]))
    await c.closedBy()
  })

  for (const [sent, wrong] of [[1, 'pubrec'], [1, 'pubcomp'], [2, 'puback']] as const) {
    it(`[MQTT-4.8.0-1] a ${wrong.toUpperCase()} for a message the server sent at QoS ${sent} is a protocol violation: closed`, async () => {
      const topic = `ack/${m.id('t')}`
      const s = await client(m, 0, 's')
      await s.subscribe(topic, 2)
      const p = await client(m, 0, 'p')
      await p.publish(topic, 'x', sent)
      const got = await s.expect('publish')
      expect(got.qos).toBe(sent)
      s.send({ cmd: wrong, messageId: got.messageId })
      await s.closedBy()
      expect(s.unread().map((x) => x.cmd)).not.toContain('pubrel')
    })
  }
})
