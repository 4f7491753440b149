/** MQTT 3.1.1 chapter 3.1 (CONNECT: fixed and variable header, flags, will), byte level, in every mode. */
import { expect, it } from 'vitest'
import { connectBytes, pkt, str } from './raw.js'
import { forEachMode } from './modes.js'

const CONNACK_OK = Buffer.from([0x20, 0x02, 0x00, 0x00])

forEachMode((m) => {
  it('[MQTT-3.1.0-1] a first packet other than CONNECT closes the connection, unanswered', async () => {
    const c = await m.raw()
    c.send(Buffer.from([0xc0, 0x00])) // PINGREQ
    await c.closedBy()
    expect(c.bytes.length).toBe(0)
  })

  it('[MQTT-3.1.0-2] a second CONNECT is a protocol violation: the connection is closed', async () => {
    const c = await m.raw()
    await c.connect({ clientId: m.id('twice') })
    c.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId: m.id('twice') })
    await c.closedBy()
    expect(c.unread()).toEqual([])
  })

  for (const name of ['MQTX', 'MQIsdp']) {
    it(`[MQTT-3.1.2-1] a wrong protocol name (${name}) is not processed as MQTT 3.1.1: closed without CONNACK`, async () => {
      const c = await m.raw()
      c.send(connectBytes({ name }))
      await c.closedBy()
      expect(c.bytes.length).toBe(0)
    })
  }

  for (const level of [0, 6, 255]) {
    it(`[MQTT-3.1.2-2] [MQTT-3.2.2-4] [MQTT-3.2.2-5] protocol level ${level} gets CONNACK 0x01 (session present 0), then the connection is closed`, async () => {
      const c = await m.raw()
      c.send(connectBytes({ level }))
      await c.closedBy()
      expect(c.bytes).toEqual(Buffer.from([0x20, 0x02, 0x00, 0x01]))
    })
  }

  it('[MQTT-3.1.4-5] data sent after a refused CONNECT is not processed', async () => {
    const topic = `refused/${m.id('t')}`
    const c = await m.raw()
    // CONNECT with level 6 and, in the same write, a retained PUBLISH
    c.send(Buffer.concat([connectBytes({ level: 6 }), pkt(0x31, str(topic), Buffer.from('kept?'))]))
    await c.closedBy()
    const s = await m.raw(1)
    await s.connect({ clientId: m.id('refused-sub') })
    await s.subscribe(topic)
    expect(await s.quiet(250)).toEqual([])
  })

  it('[MQTT-3.1.2-3] [MQTT-3.2.2-6] a CONNECT whose reserved flag is 1 closes the connection without CONNACK', async () => {
    const c = await m.raw()
    c.send(connectBytes({ flags: 0x03 }))
    await c.closedBy()
    expect(c.bytes.length).toBe(0)
  })

  it('[MQTT-3.1.2-9] will flag 1 without will topic and message closes the connection without CONNACK', async () => {
    const c = await m.raw()
    c.send(connectBytes({ flags: 0x06, payload: [str(m.id('nowill'))] }))
    await c.closedBy()
    expect(c.bytes.length).toBe(0)
  })

  it('[MQTT-3.1.2-11] [MQTT-3.1.2-13] will flag 0 with will QoS 1 closes the connection without CONNACK', async () => {
    const c = await m.raw()
    c.send(connectBytes({ flags: 0x0a, payload: [str(m.id('q'))] }))
    await c.closedBy()
    expect(c.bytes.length).toBe(0)
  })

  it('[MQTT-3.1.2-11] [MQTT-3.1.2-15] will flag 0 with will retain 1 closes the connection without CONNACK', async () => {
    const c = await m.raw()
    c.send(connectBytes({ flags: 0x22, payload: [str(m.id('r'))] }))
    await c.closedBy()
    expect(c.bytes.length).toBe(0)
  })

  it('[MQTT-3.1.2-14] will QoS 3 closes the connection without CONNACK', async () => {
    const c = await m.raw()
    c.send(connectBytes({ flags: 0x1e, payload: [str(m.id('q3')), str('w/t'), str('x')] }))
    await c.closedBy()
    expect(c.bytes.length).toBe(0)
  })

  for (const [name, topic] of [['empty', ''], ['with a wildcard', 'will/#'], ['with a wildcard', 'will/+/x']] as const) {
    it(`[MQTT-3.1.4-1] [MQTT-3.3.2-2] [MQTT-4.7.3-1] a will topic that is ${name} (${JSON.stringify(topic)}) is refused: no CONNACK 0, the connection closed`, async () => {
      const c = await m.raw()
      c.send(connectBytes({ flags: 0x06, payload: [str(m.id('wt')), str(topic), str('x')] }))
      await c.closedBy()
      expect(c.packets.filter((p) => p.cmd === 'connack' && p.returnCode === 0)).toEqual([])
    })
  }

  it('[MQTT-3.1.2-8] [MQTT-3.1.2-16] a will is published when the connection drops, not retained when will retain is 0', async () => {
    const topic = `will/${m.id('w')}`
    const watcher = await m.raw(1)
    await watcher.connect({ clientId: m.id('watch') })
    await watcher.subscribe(topic, 1)
    const c = await m.raw(0)
    await c.connect({ clientId: m.id('dies'), will: { topic, payload: Buffer.from('bye'), qos: 1, retain: false } })
    c.destroy()
    const will = await watcher.expect('publish', 5000)
    expect([will.topic, String(will.payload), will.qos, will.retain]).toEqual([topic, 'bye', 1, false])
    const late = await m.raw(0)
    await late.connect({ clientId: m.id('late') })
    await late.subscribe(topic)
    expect(await late.quiet(250)).toEqual([])
  })

  it('[MQTT-3.1.2-17] a will with will retain 1 is published as a retained message', async () => {
    const topic = `will/${m.id('wr')}`
    const c = await m.raw(0)
    await c.connect({ clientId: m.id('dies-r'), will: { topic, payload: Buffer.from('gone'), qos: 1, retain: true } })
    const watcher = await m.raw(1)
    await watcher.connect({ clientId: m.id('watch-r') })
    await watcher.subscribe(topic, 1)
    c.destroy()
    await watcher.expect('publish', 5000)
    const late = await m.raw(1)
    await late.connect({ clientId: m.id('late-r') })
    await late.subscribe(topic, 1)
    const kept = await late.expect('publish')
    expect([String(kept.payload), kept.retain]).toEqual(['gone', true])
  })

  it('[MQTT-3.1.2-10] [MQTT-3.14.4-3] a DISCONNECT removes the will: it is not published', async () => {
    const topic = `will/${m.id('d')}`
    const watcher = await m.raw(1)
    await watcher.connect({ clientId: m.id('watch-d') })
    await watcher.subscribe(topic, 1)
    const c = await m.raw(0)
    await c.connect({ clientId: m.id('leaves'), will: { topic, payload: Buffer.from('bye'), qos: 1, retain: false } })
    await c.disconnect()
    expect(await watcher.quiet(250)).toEqual([])
  })

  it('[MQTT-3.1.2-10] a will is published once, then removed: a later drop of the same client id publishes nothing', async () => {
    const topic = `will/${m.id('once')}`
    const id = m.id('once')
    const watcher = await m.raw(1)
    await watcher.connect({ clientId: m.id('watch-once') })
    await watcher.subscribe(topic, 1)
    const c = await m.raw(0)
    await c.connect({ clientId: id, will: { topic, payload: Buffer.from('bye'), qos: 1, retain: false } })
    c.destroy()
    await watcher.expect('publish', 5000)
    const again = await m.raw(1)
    await again.connect({ clientId: id })
    again.destroy()
    expect(await watcher.quiet(250)).toEqual([])
  })

  it('[MQTT-3.1.2-12] will flag 0: nothing is published when the connection drops', async () => {
    const watcher = await m.raw(1)
    await watcher.connect({ clientId: m.id('watch-n') })
    await watcher.subscribe('#', 0)
    const c = await m.raw(0)
    await c.connect({ clientId: m.id('nowill') })
    c.destroy()
    expect((await watcher.quiet(250)).filter((p) => p.cmd === 'publish' && !p.retain)).toEqual([])
  })

  it('[MQTT-3.1.2-18] [MQTT-3.1.4-1] user name flag 0 with a user name in the payload closes the connection without CONNACK', async () => {
    const c = await m.raw()
    c.send(connectBytes({ flags: 0x02, payload: [str(m.id('u0')), str('alice')] }))
    await c.closedBy()
    expect(c.bytes.length).toBe(0)
  })

  it('[MQTT-3.1.2-19] user name flag 1 without a user name closes the connection without CONNACK', async () => {
    const c = await m.raw()
    c.send(connectBytes({ flags: 0x82, payload: [str(m.id('u1'))] }))
    await c.closedBy()
    expect(c.bytes.length).toBe(0)
  })

  it('[MQTT-3.1.2-20] password flag 0 with a password in the payload closes the connection without CONNACK', async () => {
    const c = await m.raw()
    c.send(connectBytes({ flags: 0x82, payload: [str(m.id('p0')), str('alice'), str('secret')] }))
    await c.closedBy()
    expect(c.bytes.length).toBe(0)
  })

  it('[MQTT-3.1.2-21] password flag 1 without a password closes the connection without CONNACK', async () => {
    const c = await m.raw()
    c.send(connectBytes({ flags: 0xc2, payload: [str(m.id('p1')), str('alice')] }))
    await c.closedBy()
    expect(c.bytes.length).toBe(0)
  })

  it('[MQTT-3.1.2-22] [MQTT-3.1.4-1] password flag 1 with user name flag 0 closes the connection without CONNACK', async () => {
    const c = await m.raw()
    c.send(connectBytes({ flags: 0x42, payload: [str(m.id('p')), str('secret')] }))
    await c.closedBy()
    expect(c.bytes.length).toBe(0)
  })

  it('[MQTT-3.1.2-24] a client silent for 1.5 x its keepalive (1 s) is disconnected', async () => {
    const c = await m.raw()
    const t0 = Date.now()
    expect(await c.connect({ clientId: m.id('silent'), keepalive: 1 })).toMatchObject({ returnCode: 0 })
    await c.closedBy(4000)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400)
  })

  it('[MQTT-3.1.4-4] an accepted CONNECT gets CONNACK 0x00, byte exact', async () => {
    const c = await m.raw()
    c.send(connectBytes({ payload: [str(m.id('ok'))] }))
    await c.expect('connack')
    expect(c.bytes).toEqual(CONNACK_OK)
  })
})
