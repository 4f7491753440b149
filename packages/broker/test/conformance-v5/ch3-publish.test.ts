/**
 * MQTT 5.0 chapter 3.3 (PUBLISH) and 3.4-3.7 (its acknowledgements), byte level, in every mode:
 * properties forwarded unchanged (to a subscriber on the other node in two-node mode), Message
 * Expiry with the remaining interval, topic aliases from the client, PUBACK and PUBREC reason codes.
 */
import { expect } from 'vitest'
import type { Raw } from '../conformance/raw.js'
import { forEachMode5, test, type Mode } from './modes.js'

async function client(m: Mode, i: 0 | 1, name: string, props: Record<string, unknown> = {}): Promise<Raw> {
  const c = await m.raw(i)
  expect(await c.connect({ clientId: m.id(name), properties: props })).toMatchObject({ reasonCode: 0 })
  return c
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

forEachMode5((m) => {
  const it = test(m)

  it('[MQTT-3.3.2-4] [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20] payload format, response topic, correlation data, user properties in their order and content type reach the subscriber unchanged', async () => {
    const topic = `props/${m.id('t')}`
    const s = await client(m, 1, 'sub')
    await s.subscribe(topic, 1)
    const p = await client(m, 0, 'pub')
    const properties = {
      payloadFormatIndicator: true,
      responseTopic: 'reply/here',
      correlationData: Buffer.from([0, 0xff, 0x80, 1]),
      userProperties: { z: 'last-first', a: ['1', '2'], m: 'é' },
      contentType: 'application/json; charset=utf-8',
    }
    for (const qos of [0, 1] as const) {
      await p.publish(topic, '{"x":1}', qos, false, 1, properties)
      const got = await s.expect('publish')
      if (qos) s.send({ cmd: 'puback', messageId: got.messageId })
      const props = got.properties as typeof properties
      expect(props.payloadFormatIndicator).toBe(true)
      expect(props.responseTopic).toBe('reply/here')
      expect([...props.correlationData]).toEqual([0, 0xff, 0x80, 1])
      expect(props.contentType).toBe('application/json; charset=utf-8')
      expect(Object.entries(props.userProperties)).toEqual([['z', 'last-first'], ['a', ['1', '2']], ['m', 'é']])
    }
  })

  it('[MQTT-3.3.2-5] [MQTT-3.3.2-6] a retained message is dropped once its Message Expiry Interval passed, and sent with the interval that remains before', async () => {
    const b = `expiry/${m.id('t')}`
    const p = await client(m, 0, 'pub')
    await p.publish(`${b}/short`, 'short', 1, true, 1, { messageExpiryInterval: 1 })
    await p.publish(`${b}/long`, 'long', 1, true, 2, { messageExpiryInterval: 100 })
    await sleep(2100)
    const s = await client(m, 1, 'sub')
    await s.subscribe(`${b}/#`, 1)
    const got = await s.expect('publish')
    expect(got.topic).toBe(`${b}/long`)
    const left = (got.properties as { messageExpiryInterval?: number }).messageExpiryInterval
    expect(left).toBeGreaterThanOrEqual(90)
    expect(left).toBeLessThanOrEqual(98)
    s.send({ cmd: 'puback', messageId: got.messageId })
    expect(await s.quiet(200)).toEqual([])
  })

  it('[MQTT-3.3.2-6] [MQTT-4.5.0-1] a message queued for an offline session is sent with the Message Expiry Interval that remains', async () => {
    const id = m.id('offline')
    const topic = `expiry-q/${id}`
    const s = await m.raw(0)
    await s.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })
    await s.subscribe(topic, 1)
    await s.disconnect()
    const p = await client(m, 0, 'pub')
    await p.publish(topic, 'queued', 1, false, 1, { messageExpiryInterval: 100 })
    await sleep(1100)
    const back = await m.raw(1)
    expect(await back.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })).toMatchObject({ sessionPresent: true })
    const got = await back.expect('publish')
    const left = (got.properties as { messageExpiryInterval?: number }).messageExpiryInterval
    expect(left).toBeGreaterThanOrEqual(90)
    expect(left).toBeLessThanOrEqual(99)
  })

  it('[MQTT-3.3.2-12] a topic alias up to the Topic Alias Maximum of the CONNACK is accepted: a PUBLISH with the alias and an empty topic goes to that topic', async () => {
    const topic = `alias/${m.id('t')}`
    const s = await client(m, 1, 'sub')
    await s.subscribe(topic, 1)
    const p = await m.raw(0)
    const max = ((await p.connect({ clientId: m.id('pub') })).properties as { topicAliasMaximum?: number }).topicAliasMaximum ?? 0
    expect(max).toBeGreaterThan(0)
    await p.publish(topic, 'first', 1, false, 1, { topicAlias: max })
    await p.publish('', 'second', 1, false, 2, { topicAlias: max })
    const a = await s.expect('publish')
    const b = await s.expect('publish')
    expect([a.topic, String(a.payload), b.topic, String(b.payload)]).toEqual([topic, 'first', topic, 'second'])
  })

  it('[MQTT-3.3.2-7] a topic alias is not carried to a new connection: an alias with no topic on it closes the connection', async () => {
    const id = m.id('alias-id')
    const p = await m.raw(0)
    await p.connect({ clientId: id })
    await p.publish(`alias/${id}`, 'set', 1, false, 1, { topicAlias: 1 })
    await p.disconnect()
    const again = await m.raw(1)
    await again.connect({ clientId: id })
    again.send({ cmd: 'publish', topic: '', payload: 'where?', qos: 1, messageId: 2, properties: { topicAlias: 1 } })
    await again.closedBy()
    expect(again.unread().filter((x) => x.cmd === 'puback')).toEqual([])
  })

  it('[MQTT-3.3.2-11] [MQTT-3.1.2-27] a client that sent no Topic Alias Maximum gets no topic alias', async () => {
    const topic = `noalias/${m.id('t')}`
    const s = await client(m, 1, 'sub')
    await s.subscribe(topic, 0)
    const p = await client(m, 0, 'pub')
    for (let i = 0; i < 3; i++) await p.publish(topic, `m${i}`, 1, false, i + 1)
    for (let i = 0; i < 3; i++) {
      const got = await s.expect('publish')
      expect([got.topic, (got.properties as { topicAlias?: number } | undefined)?.topicAlias]).toEqual([topic, undefined])
    }
  })

  it('[MQTT-3.3.4-6] a PUBLISH from the client holding a Subscription Identifier closes the connection', async () => {
    const p = await client(m, 0, 'subid')
    p.send({ cmd: 'publish', topic: `subid/${m.id('t')}`, payload: 'x', qos: 1, messageId: 1, properties: { subscriptionIdentifier: 5 } })
    await p.closedBy()
    expect(p.unread().filter((x) => x.cmd === 'puback')).toEqual([])
  })

  it('[MQTT-3.4.2-1] [MQTT-3.5.2-1] [MQTT-3.7.2-1] [MQTT-3.3.4-1] [MQTT-4.3.2-4] PUBACK, PUBREC and PUBCOMP carry reason codes of their tables: 0x00 with a subscriber (on the other node in two-node mode), 0x10 No matching subscribers without one', async () => {
    const topic = `rc/${m.id('t')}`
    const s = await client(m, 1, 'sub')
    await s.subscribe(topic, 2)
    const p = await client(m, 0, 'pub')
    for (const [t, ok] of [[topic, [0]], [`${topic}-nobody`, [0x10]]] as const) {
      p.send({ cmd: 'publish', topic: t, payload: 'x', qos: 1, messageId: 1 })
      expect(ok).toContain((await p.expect('puback')).reasonCode ?? 0)
      p.send({ cmd: 'publish', topic: t, payload: 'x', qos: 2, messageId: 2 })
      expect(ok).toContain((await p.expect('pubrec')).reasonCode ?? 0)
      p.send({ cmd: 'pubrel', messageId: 2 })
      expect((await p.expect('pubcomp')).reasonCode ?? 0).toBe(0)
    }
  })

  it('[MQTT-3.1.2-29] Payload Format Indicator 1 with a payload that is not UTF-8: PUBACK 0x99 (§3.3.2.3.2), with a Reason String unless Request Problem Information is 0; nothing forwarded', async () => {
    const topic = `pfi/${m.id('t')}`
    const s = await client(m, 1, 'sub')
    await s.subscribe(topic, 1)
    const bad = Buffer.from([0xc3, 0x28])
    for (const [name, props, reasonString] of [['loud', {}, true], ['quiet', { requestProblemInformation: false }, false]] as const) {
      const p = await client(m, 0, name, props)
      p.send({ cmd: 'publish', topic, payload: bad, qos: 1, messageId: 1, properties: { payloadFormatIndicator: true } })
      const ack = await p.expect('puback')
      expect(ack.reasonCode).toBe(0x99)
      const ackProps = ack.properties as Record<string, unknown> | undefined
      expect(ackProps?.reasonString !== undefined).toBe(reasonString)
      if (!reasonString) expect(ackProps).toBeUndefined()
    }
    expect(await s.quiet()).toEqual([])
  })

  it('[MQTT-3.4.2-2] [MQTT-3.5.2-2] no Reason String on a PUBACK / PUBREC 0x99 it would make larger than the Maximum Packet Size of the client', async () => {
    const topic = `pfi-max/${m.id('t')}`
    const bad = Buffer.from([0xc3, 0x28])
    const p = await client(m, 0, 'small', { maximumPacketSize: 32 })
    p.send({ cmd: 'publish', topic, payload: bad, qos: 1, messageId: 1, properties: { payloadFormatIndicator: true } })
    const puback = await p.expect('puback')
    p.send({ cmd: 'publish', topic, payload: bad, qos: 2, messageId: 2, properties: { payloadFormatIndicator: true } })
    const pubrec = await p.expect('pubrec')
    for (const ack of [puback, pubrec]) {
      expect(ack.reasonCode).toBe(0x99)
      expect(ack.properties).toBeUndefined()
      expect(ack.length! + 2).toBeLessThanOrEqual(32)
    }
  })

  it('[MQTT-3.4.2-3] [MQTT-3.5.2-3] [MQTT-3.6.2-3] [MQTT-3.7.2-3] no User Property on a PUBACK, PUBREC, PUBREL or PUBCOMP, so none can make it larger than the Maximum Packet Size of the client (those of the packets it answers are not echoed)', async () => {
    const topic = `ack-up/${m.id('t')}`
    const max = 64
    const userProperties = { echo: 'x'.repeat(100) }
    const s = await client(m, 1, 'ack-up-sub', { maximumPacketSize: max })
    await s.subscribe(topic, 2)
    const p = await client(m, 0, 'ack-up-pub', { maximumPacketSize: max })
    const acks = []
    p.send({ cmd: 'publish', topic: `${topic}/nobody`, payload: 'a', qos: 1, messageId: 1, properties: { userProperties } })
    acks.push(await p.expect('puback'))
    p.send({ cmd: 'publish', topic, payload: 'b', qos: 2, messageId: 2, properties: { userProperties: { k: 'v' } } })
    acks.push(await p.expect('pubrec'))
    p.send({ cmd: 'pubrel', messageId: 2, properties: { userProperties } })
    acks.push(await p.expect('pubcomp'))
    const got = await s.expect('publish')
    s.send({ cmd: 'pubrec', messageId: got.messageId, properties: { userProperties } })
    acks.push(await s.expect('pubrel'))
    s.send({ cmd: 'pubcomp', messageId: got.messageId })
    expect(acks.map((a) => a.cmd)).toEqual(['puback', 'pubrec', 'pubcomp', 'pubrel'])
    for (const ack of acks) {
      expect((ack.properties as Record<string, unknown> | undefined)?.userProperties, ack.cmd).toBeUndefined()
      expect(1 + 1 + ack.length!, ack.cmd).toBeLessThanOrEqual(max)
    }
  })

  it('[MQTT-4.4.0-2] a PUBACK with a reason code of 0x80 or more from the subscriber ends that delivery: it is not sent again when the session returns', async () => {
    const topic = `nack/${m.id('t')}`
    const id = m.id('nack')
    const s = await m.raw(1)
    await s.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })
    await s.subscribe(topic, 1)
    const p = await client(m, 0, 'pub')
    await p.publish(topic, 'refused', 1)
    const got = await s.expect('publish')
    s.send({ cmd: 'puback', messageId: got.messageId, reasonCode: 0x80 })
    await s.disconnect()
    const back = await m.raw(1)
    expect(await back.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })).toMatchObject({ sessionPresent: true })
    await back.subscribe(`${topic}-mark`, 0, 3)
    await p.publish(`${topic}-mark`, 'mark')
    expect(await back.until(`${topic}-mark`)).toEqual([])
  })
})
