/**
 * MQTT 3.1.1 chapters 3.1.3-3.1.4 (CONNECT payload and response) and 3.2 (CONNACK, Session
 * Present), byte level, in every mode; a returning client moves to the other node in two-node mode.
 */
import { expect, it } from 'vitest'
import { connectBytes, str } from './raw.js'
import { forEachMode, type Mode } from './modes.js'

/** a clean:false session with one QoS 1 subscription, then DISCONNECT */
async function persistentSession(m: Mode, id: string, topic: string): Promise<void> {
  const c = await m.raw(0)
  expect(await c.connect({ clientId: id, clean: false })).toMatchObject({ returnCode: 0 })
  await c.subscribe(topic, 1)
  await c.disconnect()
}

forEachMode(
  (m) => {
    it('[MQTT-3.1.3-1] [MQTT-3.1.3-3] client id, will topic, will message, user name, password in that order are accepted and used', async () => {
      const topic = `order/${m.id('t')}`
      const watcher = await m.raw(1)
      await watcher.connect({ clientId: m.id('w') })
      await watcher.subscribe(topic)
      const c = await m.raw(0)
      c.send(connectBytes({ flags: 0x06, payload: [str(m.id('all')), str(topic), str('will-body')] }))
      expect(await c.expect('connack')).toMatchObject({ returnCode: 0 })
      c.destroy()
      expect(String((await watcher.expect('publish', 5000)).payload)).toBe('will-body')
      // user name and password follow the will: read as such (an unknown user: CONNACK 0x04, then closed)
      const u = await m.raw(0)
      u.send(connectBytes({ flags: 0xc6, payload: [str(m.id('all')), str(topic), str('will-body'), str('nobody'), str('pw')] }))
      await u.closedBy()
      expect(u.bytes).toEqual(Buffer.from([0x20, 0x02, 0x00, 0x04]))
    })

    it('[MQTT-3.1.3-3] a CONNECT without a client id field closes the connection without CONNACK', async () => {
      const c = await m.raw()
      c.send(connectBytes({ payload: [] }))
      await c.closedBy()
      expect(c.bytes.length).toBe(0)
    })

    it('[MQTT-3.1.3-4] [MQTT-1.5.3-1] a client id that is ill-formed UTF-8 closes the connection without CONNACK', async () => {
      const c = await m.raw()
      c.send(connectBytes({ payload: [str(Buffer.from([0x61, 0xc0, 0xaf]))] }))
      await c.closedBy()
      expect(c.bytes.length).toBe(0)
    })

    it('[MQTT-3.1.3-5] a 23-character alphanumeric client id is accepted', async () => {
      const c = await m.raw()
      expect(await c.connect({ clientId: `${m.name[0]}123456789abcdefghijKLMN`.slice(0, 23) })).toMatchObject({ returnCode: 0 })
    })

    it('[MQTT-3.1.3-6] a zero-length client id with clean session 1 is accepted and given a unique id', async () => {
      const a = await m.raw()
      const b = await m.raw()
      expect(await a.connect({ clientId: '' })).toMatchObject({ returnCode: 0, sessionPresent: false })
      expect(await b.connect({ clientId: '' })).toMatchObject({ returnCode: 0, sessionPresent: false })
      // both still connected: neither took the other's id over
      a.send({ cmd: 'pingreq' })
      b.send({ cmd: 'pingreq' })
      await a.expect('pingresp')
      await b.expect('pingresp')
    })

    it('[MQTT-3.1.3-8] [MQTT-3.2.2-4] [MQTT-3.2.2-5] a zero-length client id with clean session 0 gets CONNACK 0x02, then the connection is closed', async () => {
      const c = await m.raw()
      c.send(connectBytes({ flags: 0x00, payload: [str('')] }))
      await c.closedBy()
      expect(c.bytes).toEqual(Buffer.from([0x20, 0x02, 0x00, 0x02]))
    })

    it('[MQTT-3.1.3-9] a client id the server rejects (longer than max_client_id_length) gets CONNACK 0x02, then the connection is closed', async () => {
      const c = await m.raw()
      c.send(connectBytes({ payload: [str('x'.repeat(65))] }))
      await c.closedBy()
      expect(c.bytes).toEqual(Buffer.from([0x20, 0x02, 0x00, 0x02]))
    })

    it('[MQTT-3.1.3-10] [MQTT-1.5.3-1] a will topic that is ill-formed UTF-8 closes the connection without CONNACK', async () => {
      const c = await m.raw()
      c.send(connectBytes({ flags: 0x06, payload: [str(m.id('wt')), str(Buffer.from([0x77, 0xed, 0xa0, 0x80])), str('x')] }))
      await c.closedBy()
      expect(c.bytes.length).toBe(0)
    })

    it('[MQTT-3.1.3-11] [MQTT-1.5.3-1] a user name that is ill-formed UTF-8 closes the connection without CONNACK', async () => {
      const c = await m.raw()
      c.send(connectBytes({ flags: 0x82, payload: [str(m.id('un')), str(Buffer.from([0xff, 0xfe]))] }))
      await c.closedBy()
      expect(c.bytes.length).toBe(0)
    })

    it('[MQTT-3.1.4-2] a second connection with the same client id (on the other node in two-node mode) closes the first', async () => {
      const id = m.id('twin')
      const first = await m.raw(0)
      await first.connect({ clientId: id })
      const second = await m.raw(1)
      expect(await second.connect({ clientId: id })).toMatchObject({ returnCode: 0 })
      await first.closedBy(5000)
      second.send({ cmd: 'pingreq' })
      await second.expect('pingresp')
    })

    it('[MQTT-3.1.2-4] [MQTT-3.1.3-2] [MQTT-3.2.2-2] clean session 0 resumes the session of that client id: Session Present 1, subscription kept', async () => {
      const id = m.id('resume')
      const topic = `resume/${id}`
      await persistentSession(m, id, topic)
      const c = await m.raw(1)
      expect(await c.connect({ clientId: id, clean: false })).toMatchObject({ returnCode: 0, sessionPresent: true })
      const p = await m.raw(0)
      await p.connect({ clientId: m.id('pub') })
      await p.publish(topic, 'live', 1)
      expect(String((await c.expect('publish')).payload)).toBe('live')
      // another client id does not get that session
      const other = await m.raw(1)
      expect(await other.connect({ clientId: m.id('other'), clean: false })).toMatchObject({ sessionPresent: false })
    })

    it('[MQTT-3.1.2-5] [MQTT-3.2.0-1] [MQTT-4.1.0-1] QoS 1 and 2 messages published while a clean session 0 client is away are delivered when it returns, after its CONNACK', async () => {
      const id = m.id('away')
      const topic = `away/${id}`
      const c = await m.raw(0)
      await c.connect({ clientId: id, clean: false })
      c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 2 }] })
      await c.expect('suback')
      await c.disconnect()
      const p = await m.raw(0)
      await p.connect({ clientId: m.id('pub') })
      await p.publish(topic, 'q1', 1, false, 1)
      await p.publish(topic, 'q2', 2, false, 2)
      const back = await m.raw(1)
      back.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, keepalive: 60, clientId: id })
      const first = await back.next()
      expect(first).toMatchObject({ cmd: 'connack', sessionPresent: true })
      const a = await back.expect('publish')
      const b = await back.expect('publish')
      expect([String(a.payload), a.qos, String(b.payload), b.qos]).toEqual(['q1', 1, 'q2', 2])
    })

    it('[MQTT-3.1.2-6] [MQTT-3.1.4-3] [MQTT-3.2.2-1] clean session 1 discards the previous session: Session Present 0, subscription gone', async () => {
      const id = m.id('wipe')
      const topic = `wipe/${id}`
      await persistentSession(m, id, topic)
      const c = await m.raw(1)
      expect(await c.connect({ clientId: id, clean: true })).toMatchObject({ returnCode: 0, sessionPresent: false })
      const p = await m.raw(0)
      await p.connect({ clientId: m.id('pub') })
      await p.publish(topic, 'not for you', 1)
      await c.disconnect()
      // and it is not resumed afterwards either
      const again = await m.raw(0)
      expect(await again.connect({ clientId: id, clean: false })).toMatchObject({ sessionPresent: false })
      const mark = `mark/${id}`
      await again.subscribe(mark, 1)
      await p.publish(topic, 'nor this', 1)
      await p.publish(mark, 'mark', 1)
      expect(await again.until(mark)).toEqual([])
    })

    it('[MQTT-3.1.2-7] a retained message outlives the session of the client that published it', async () => {
      const id = m.id('ret-owner')
      const topic = `ret/${id}`
      const c = await m.raw(0)
      await c.connect({ clientId: id, clean: false })
      await c.publish(topic, 'stays', 1, true)
      await c.disconnect()
      // the session ends: clean session 1, then gone
      const wipe = await m.raw(1)
      expect(await wipe.connect({ clientId: id, clean: true })).toMatchObject({ sessionPresent: false })
      await wipe.disconnect()
      const s = await m.raw(1)
      await s.connect({ clientId: m.id('ret-sub') })
      await s.subscribe(topic, 1)
      const got = await s.expect('publish')
      expect([String(got.payload), got.retain]).toEqual(['stays', true])
    })

    it('[MQTT-3.2.2-2] Session Present 1 for a returning clean session 0 client whose session holds no subscription', async () => {
      const id = m.id('empty')
      const c = await m.raw(0)
      expect(await c.connect({ clientId: id, clean: false })).toMatchObject({ sessionPresent: false })
      await c.disconnect()
      const back = await m.raw(1)
      expect(await back.connect({ clientId: id, clean: false })).toMatchObject({ returnCode: 0, sessionPresent: true })
    })

    it('[MQTT-3.2.2-2] Session Present 1 when the session holds only a QoS 2 message waiting for PUBREL; the PUBREL then completes it', async () => {
      const id = m.id('pubrel')
      const topic = `pubrel/${id}`
      const watcher = await m.raw(1)
      await watcher.connect({ clientId: m.id('w') })
      await watcher.subscribe(topic, 2)
      const c = await m.raw(0)
      await c.connect({ clientId: id, clean: false })
      c.send({ cmd: 'publish', topic, payload: 'two', qos: 2, messageId: 7 })
      await c.expect('pubrec')
      c.destroy()
      const back = await m.raw(1)
      expect(await back.connect({ clientId: id, clean: false })).toMatchObject({ returnCode: 0, sessionPresent: true })
      back.send({ cmd: 'pubrel', messageId: 7 })
      expect(await back.expect('pubcomp')).toMatchObject({ messageId: 7 })
      const got = await watcher.expect('publish')
      expect(String(got.payload)).toBe('two')
    })

    it('[MQTT-3.2.2-3] Session Present 0 for a clean session 0 client id the server has no session for', async () => {
      const c = await m.raw(1)
      expect(await c.connect({ clientId: m.id('fresh'), clean: false })).toMatchObject({ returnCode: 0, sessionPresent: false })
    })
  },
  { max_client_id_length: 64 },
)
