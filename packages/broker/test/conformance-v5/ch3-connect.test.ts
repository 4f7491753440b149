/**
 * MQTT 5.0 chapters 3.1 (CONNECT) and 3.2 (CONNACK), byte level, in every mode: reason codes,
 * Clean Start with Session Expiry, the CONNACK properties (assigned client identifier, receive
 * maximum, topic alias maximum, shared subscriptions, server keep alive), takeover with DISCONNECT
 * 0x8E, AUTH with a method Culex does not support. A returning client moves to the other node in
 * two-node mode.
 */
import { expect } from 'vitest'
import { connectBytes, str, type Raw } from '../conformance/raw.js'
import { forEachMode5, test, type Mode } from './modes.js'

/** a Clean Start 0 session with Session Expiry `sei` s and one QoS 1 subscription, then DISCONNECT */
async function session(m: Mode, id: string, topic: string, sei = 60): Promise<void> {
  const c = await m.raw(0)
  expect(await c.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: sei } })).toMatchObject({ reasonCode: 0 })
  await c.subscribe(topic, 1)
  await c.disconnect()
}

forEachMode5(
  (m) => {
    const it = test(m)

    it('[MQTT-3.1.2-2] a CONNECT of protocol level 6 closes the connection, after at most a CONNACK', async () => {
      const c = await m.raw()
      c.send(connectBytes({ level: 6, payload: [Buffer.from([0]), str(m.id('l6'))] }))
      await c.closedBy()
      expect(c.packets.every((p) => p.cmd === 'connack')).toBe(true)
    })

    for (const name of ['MQTX', 'MQIsdp']) {
      it(`[MQTT-3.1.2-1] a level 5 CONNECT with protocol name ${name} closes the connection, after at most a CONNACK`, async () => {
        const c = await m.raw()
        c.send(connectBytes({ name, level: 5, payload: [Buffer.from([0]), str(m.id('name'))] }))
        await c.closedBy()
        expect(c.packets.every((p) => p.cmd === 'connack')).toBe(true)
      })
    }

    it('[MQTT-3.1.0-1] a first packet other than CONNECT closes the connection, unanswered', async () => {
      const c = await m.raw()
      c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a', qos: 0 }] })
      await c.closedBy()
      expect(c.packets).toEqual([])
    })

    it('[MQTT-3.1.0-2] a second CONNECT closes the connection', async () => {
      const c = await m.raw()
      await c.connect({ clientId: m.id('twice') })
      c.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 60, clientId: m.id('twice') })
      await c.closedBy()
    })

    it('[MQTT-3.1.2-3] [MQTT-3.1.4-1] a CONNECT whose reserved flag is 1 closes the connection without CONNACK', async () => {
      const c = await m.raw()
      c.send(connectBytes({ level: 5, flags: 0x03, payload: [Buffer.from([0]), str(m.id('rsv'))] }))
      await c.closedBy()
      expect(c.packets).toEqual([])
    })

    it('[MQTT-3.1.2-5] [MQTT-3.1.2-23] [MQTT-3.2.2-3] [MQTT-3.2.2-1] [MQTT-3.1.3-2] [MQTT-3.1.4-5] Clean Start 0 with a Session Expiry Interval resumes the session: Session Present 1, subscription kept', async () => {
      const id = m.id('resume')
      const topic = `resume/${id}`
      await session(m, id, topic)
      const c = await m.raw(1)
      const ack = await c.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })
      expect(ack).toMatchObject({ reasonCode: 0, sessionPresent: true })
      expect(ack.frame[2]).toBe(0x01)
      const p = await m.raw(0)
      await p.connect({ clientId: m.id('pub') })
      await p.publish(topic, 'live', 1)
      expect(String((await c.expect('publish')).payload)).toBe('live')
    })

    it('[MQTT-3.1.2-5] [MQTT-4.6.0-6] Clean Start 0 and a new Session Expiry Interval of 0 still resume the session: its queued QoS 1 messages arrive, in order', async () => {
      const id = m.id('resume0')
      const topic = `resume0/${id}`
      await session(m, id, topic)
      const p = await m.raw(0)
      await p.connect({ clientId: m.id('pub0') })
      for (const n of ['q1', 'q2', 'q3']) await p.publish(topic, n, 1)
      const c = await m.raw(1)
      expect(await c.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 0 } })).toMatchObject({ reasonCode: 0, sessionPresent: true })
      const got: string[] = []
      for (let i = 0; i < 3; i++) got.push(String((await c.expect('publish')).payload))
      expect(got).toEqual(['q1', 'q2', 'q3'])
    })

    it('[MQTT-3.1.2-4] [MQTT-3.2.2-2] [MQTT-3.1.4-4] Clean Start 1 discards the session: Session Present 0, subscription gone', async () => {
      const id = m.id('wipe')
      const topic = `wipe/${id}`
      await session(m, id, topic)
      const c = await m.raw(1)
      expect(await c.connect({ clientId: id, clean: true, properties: { sessionExpiryInterval: 60 } })).toMatchObject({ reasonCode: 0, sessionPresent: false })
      const mark = `mark/${id}`
      await c.subscribe(mark, 1)
      const p = await m.raw(0)
      await p.connect({ clientId: m.id('pub') })
      await p.publish(topic, 'not for you', 1)
      await p.publish(mark, 'mark', 1)
      expect(await c.until(mark)).toEqual([])
    })

    it('[MQTT-3.1.2-23] a session begun with Clean Start 1 and a Session Expiry Interval is kept after its connection closes', async () => {
      const id = m.id('clean1')
      const topic = `clean1/${id}`
      const c = await m.raw(0)
      expect(await c.connect({ clientId: id, clean: true, properties: { sessionExpiryInterval: 60 } })).toMatchObject({ reasonCode: 0, sessionPresent: false })
      await c.subscribe(topic, 1)
      await c.disconnect()
      const back = await m.raw(1)
      expect(await back.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })).toMatchObject({ reasonCode: 0, sessionPresent: true })
    })

    it('[MQTT-3.1.2-6] [MQTT-3.2.2-3] Clean Start 0 without a stored session: Session Present 0', async () => {
      const c = await m.raw(1)
      expect(await c.connect({ clientId: m.id('fresh'), clean: false, properties: { sessionExpiryInterval: 60 } })).toMatchObject({ reasonCode: 0, sessionPresent: false })
    })

    it('[MQTT-4.1.0-2] a session with no Session Expiry Interval ends with its connection, one of 1 s is gone 1 s after it', async () => {
      const id0 = m.id('sei0')
      const id1 = m.id('sei1')
      await session(m, id0, `sei/${id0}`, 0)
      await session(m, id1, `sei/${id1}`, 1)
      const a = await m.raw(1)
      expect(await a.connect({ clientId: id0, clean: false })).toMatchObject({ sessionPresent: false })
      await new Promise((r) => setTimeout(r, 2200))
      const b = await m.raw(1)
      expect(await b.connect({ clientId: id1, clean: false, properties: { sessionExpiryInterval: 1 } })).toMatchObject({ sessionPresent: false })
    })

    it('[MQTT-3.1.3-6] [MQTT-3.1.3-7] [MQTT-3.2.2-16] [MQTT-3.12.4-1] a zero-length client id gets a unique Assigned Client Identifier in the CONNACK, and PINGRESP to PINGREQ', async () => {
      const a = await m.raw(0)
      const b = await m.raw(1)
      const ida = (await a.connect({ clientId: '' })).properties as { assignedClientIdentifier?: string }
      const idb = (await b.connect({ clientId: '' })).properties as { assignedClientIdentifier?: string }
      expect(ida.assignedClientIdentifier).toMatch(/./)
      expect(idb.assignedClientIdentifier).toMatch(/./)
      expect(ida.assignedClientIdentifier).not.toBe(idb.assignedClientIdentifier)
      a.send({ cmd: 'pingreq' })
      await a.expect('pingresp')
    })

    it('[MQTT-3.1.3-1] client id, will properties, will topic, will payload, user name, password in that order are read as such', async () => {
      const topic = `order/${m.id('t')}`
      const w = await m.raw(1)
      await w.connect({ clientId: m.id('w') })
      await w.subscribe(topic)
      // level 5, no CONNECT properties; the will's properties: Content Type (0x03) "text/plain"
      const head = (flags: number): Buffer => Buffer.concat([str('MQTT'), Buffer.from([5, flags, 0, 60, 0])])
      const will = [str(m.id('all')), Buffer.concat([Buffer.from([13, 0x03]), str('text/plain')]), str(topic), str('will-body')]
      const c = await m.raw(0)
      c.send(Buffer.concat([Buffer.from([0x10, head(0x06).length + Buffer.concat(will).length]), head(0x06), ...will]))
      expect(await c.expect('connack')).toMatchObject({ reasonCode: 0 })
      c.destroy()
      const got = await w.expect('publish', 5000)
      expect([String(got.payload), (got.properties as Record<string, unknown> | undefined)?.contentType]).toEqual(['will-body', 'text/plain'])
      // user name and password follow the will: read as such (an unknown user: CONNACK 0x86, then closed)
      const u = await m.raw(0)
      const all = [...will, str('nobody'), str('pw')]
      u.send(Buffer.concat([Buffer.from([0x10, head(0xc6).length + Buffer.concat(all).length]), head(0xc6), ...all]))
      await u.closedBy()
      expect(u.packets.map((p) => [p.cmd, p.reasonCode])).toEqual([['connack', 0x86]])
    })

    it('[MQTT-3.1.3-8] [MQTT-3.2.2-6] [MQTT-3.2.2-7] [MQTT-3.14.0-1] [MQTT-4.13.2-1] a client id the server rejects gets CONNACK 0x85 with Session Present 0, then the connection is closed', async () => {
      const c = await m.raw()
      c.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: false, keepalive: 60, clientId: 'x'.repeat(65) })
      await c.closedBy()
      expect(c.packets.map((p) => [p.cmd, p.reasonCode, p.sessionPresent])).toEqual([['connack', 0x85, false]])
    })

    it('[MQTT-3.1.4-2] [MQTT-3.2.2-8] a bad user name or password gets CONNACK 0x86, then the connection is closed', async () => {
      const c = await m.raw()
      c.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 60, clientId: m.id('bad'), username: 'nobody', password: Buffer.from('pw') })
      await c.closedBy()
      expect(c.packets.map((p) => [p.cmd, p.reasonCode])).toEqual([['connack', 0x86]])
    })

    /** two connections of one client id, the second on node `i`: what the first got before its close */
    async function takeover(name: string, i: 0 | 1): Promise<Raw['packets']> {
      const id = m.id(name)
      const first = await m.raw(0)
      await first.connect({ clientId: id, properties: { sessionExpiryInterval: 30 } })
      const second = await m.raw(i)
      expect(await second.connect({ clientId: id })).toMatchObject({ reasonCode: 0 })
      await first.closedBy(5000)
      return first.unread()
    }

    it('[MQTT-3.14.2-1] [MQTT-3.14.2-2] [MQTT-3.14.4-1] [MQTT-3.14.4-2] a connection taken over on its node gets DISCONNECT 0x8E without Session Expiry Interval, nothing after it, then its close', async () => {
      const sent = await takeover('twin0', 0)
      expect(sent.map((p) => [p.cmd, p.reasonCode])).toEqual([['disconnect', 0x8e]])
      expect((sent[0]!.properties as Record<string, unknown> | undefined)?.sessionExpiryInterval).toBeUndefined()
    })

    it('[MQTT-3.1.4-3] a second connection with the same client id on the other node (in two-node mode) gets the first a DISCONNECT 0x8E, then its close', async () => {
      expect((await takeover('twin1', 1)).map((p) => [p.cmd, p.reasonCode])).toEqual([['disconnect', 0x8e]])
    })

    it('[MQTT-3.2.2-22] [MQTT-3.1.2-22] without a Server Keep Alive the client keep alive holds: a silent client is closed after 1.5 x it', async () => {
      const c = await m.raw()
      const ack = await c.connect({ clientId: m.id('ka'), keepalive: 1 })
      expect((ack.properties as Record<string, unknown> | undefined)?.serverKeepAlive).toBeUndefined()
      const t0 = Date.now()
      await c.closedBy(4000)
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1000)
    })

    it('[MQTT-3.2.2-22] a keep alive above keepalive_max_s is answered with a Server Keep Alive of the cap', async () => {
      const c = await m.raw()
      const ack = await c.connect({ clientId: m.id('kamax'), keepalive: 600 })
      expect(ack).toMatchObject({ reasonCode: 0 })
      expect((ack.properties as Record<string, unknown> | undefined)?.serverKeepAlive).toBe(120)
    })

    it('[MQTT-3.2.2-9] [MQTT-4.12.0-6] [MQTT-3.1.2-28] the CONNACK advertises what Culex supports: no Maximum QoS (2), shared subscriptions available, no authentication method', async () => {
      const c = await m.raw()
      const props = (await c.connect({ clientId: m.id('caps') })).properties as Record<string, unknown>
      expect(props.maximumQoS).toBeUndefined()
      expect(props.sharedSubscriptionAvailable).toBe(true)
      expect(props.authenticationMethod).toBeUndefined()
      expect(props.responseInformation).toBeUndefined()
    })

    it('[MQTT-4.12.0-1] an Authentication Method Culex does not support gets CONNACK 0x8C, then the connection is closed', async () => {
      const c = await m.raw()
      c.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 60, clientId: m.id('scram'), properties: { authenticationMethod: 'SCRAM-SHA-1', authenticationData: Buffer.from('n,,n=user,r=abc') } })
      await c.closedBy()
      expect(c.packets.map((p) => [p.cmd, p.reasonCode])).toEqual([['connack', 0x8c]])
    })
  },
  { max_client_id_length: 64, keepalive_max_s: 120 },
)
