/**
 * PUBACK / PUBREC reason codes for MQTT 5 publishers on one node (broker/mqtt5-puback.ts,
 * broker/no-subscribers.ts; the cluster: puback-codes-cluster.test.ts):
 * - 0x10 No matching subscribers (§3.4.2.1) when no subscription matches, the message still
 *   retained; 0x00 when one does (online, a `$share` group, an offline persistent session);
 * - 0x99 Payload format invalid for Payload Format Indicator 1 with a payload that is not UTF-8
 *   (§3.3.2.3.2): not delivered, the connection stays; QoS 0: dropped;
 * - 3.1.1 publishers: plain PUBACK, unchanged.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { closeRaw, rawClient, rawSubscribe, type Raw } from '../helpers/raw-mqtt.js'
import { useTestNode } from '../helpers/node.js'

const t = useTestNode()
afterAll(closeRaw)

const NOT_UTF8 = Buffer.from([0x61, 0xff, 0xfe])

/** the PUBACKs / PUBRECs `raw` got, as [cmd, packet id, reason code] once `n` arrived */
async function acks(raw: Raw, n: number): Promise<Array<[string, number, number]>> {
  await raw.until((ps) => ps.filter((p) => p.cmd === 'puback' || p.cmd === 'pubrec').length >= n, 5000, `${n} acknowledgements`)
  return raw.packets.filter((p) => p.cmd === 'puback' || p.cmd === 'pubrec').map((p) => [p.cmd, p.messageId as number, p.reasonCode ?? 0])
}

describe('0x10 No matching subscribers (v5, §3.4.2.1 / §3.5.2.1)', () => {
  it('a QoS 1 and a QoS 2 PUBLISH nobody subscribed to get PUBACK / PUBREC 0x10; with a subscriber 0x00; PUBACKs in PUBLISH order [MQTT-4.6.0-2], PUBRECs too [MQTT-4.6.0-3]', async () => {
    const { raw: sub } = await rawClient(t.node.ports.mqtt, { clientId: 'pc-sub', protocolVersion: 5 })
    await rawSubscribe(sub, 'pc/with/+', 0)
    const { raw } = await rawClient(t.node.ports.mqtt, { clientId: 'pc-pub', protocolVersion: 5 })
    raw.send({ cmd: 'publish', topic: 'pc/none', payload: 'a', qos: 1, messageId: 1 })
    raw.send({ cmd: 'publish', topic: 'pc/with/x', payload: 'b', qos: 1, messageId: 2 })
    raw.send({ cmd: 'publish', topic: 'pc/none', payload: 'c', qos: 2, messageId: 3 })
    raw.send({ cmd: 'publish', topic: 'pc/with/y', payload: 'd', qos: 2, messageId: 4 })
    const got = await acks(raw, 4)
    expect(got.filter(([cmd]) => cmd === 'puback')).toEqual([
      ['puback', 1, 0x10],
      ['puback', 2, 0],
    ])
    expect(got.filter(([cmd]) => cmd === 'pubrec')).toEqual([
      ['pubrec', 3, 0x10],
      ['pubrec', 4, 0],
    ])
    await sub.until((ps) => ps.filter((p) => p.cmd === 'publish').length === 2, 5000, 'the two matching messages')
  })

  it('0x10 is a success: a retained message nobody subscribed to is kept and sent to a later subscriber', async () => {
    const { raw } = await rawClient(t.node.ports.mqtt, { clientId: 'pc-ret', protocolVersion: 5 })
    raw.send({ cmd: 'publish', topic: 'pc/retained', payload: 'kept', qos: 1, messageId: 1, retain: true })
    expect(await acks(raw, 1)).toEqual([['puback', 1, 0x10]])
    const { raw: later } = await rawClient(t.node.ports.mqtt, { clientId: 'pc-later', protocolVersion: 5 })
    await rawSubscribe(later, 'pc/retained', 1)
    await later.until((ps) => ps.some((p) => p.cmd === 'publish'), 5000, 'the retained message')
    expect(later.publishes()[0]!.payload.toString()).toBe('kept')
  })

  it('a subscription that left (UNSUBSCRIBE, closed clean session) no longer counts; an offline persistent session and a $share group do', async () => {
    const { raw: gone } = await rawClient(t.node.ports.mqtt, { clientId: 'pc-gone', protocolVersion: 5 })
    await rawSubscribe(gone, 'pc/gone', 1)
    gone.send({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: ['pc/gone'] })
    await gone.until((ps) => ps.some((p) => p.cmd === 'unsuback'), 5000, 'UNSUBACK')
    const { raw: off } = await rawClient(t.node.ports.mqtt, { clientId: 'pc-off', protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 300 } })
    await rawSubscribe(off, 'pc/offline/#', 1)
    off.send({ cmd: 'disconnect' })
    await off.until(() => off.closed, 5000, 'closed')
    const { raw: member } = await rawClient(t.node.ports.mqtt, { clientId: 'pc-member', protocolVersion: 5 })
    await rawSubscribe(member, '$share/g/pc/shared', 1)
    const { raw } = await rawClient(t.node.ports.mqtt, { clientId: 'pc-pub2', protocolVersion: 5 })
    raw.send({ cmd: 'publish', topic: 'pc/gone', payload: 'x', qos: 1, messageId: 1 })
    raw.send({ cmd: 'publish', topic: 'pc/offline/a', payload: 'x', qos: 1, messageId: 2 })
    raw.send({ cmd: 'publish', topic: 'pc/shared', payload: 'x', qos: 1, messageId: 3 })
    expect(await acks(raw, 3)).toEqual([
      ['puback', 1, 0x10],
      ['puback', 2, 0],
      ['puback', 3, 0],
    ])
    const back = await rawClient(t.node.ports.mqtt, { clientId: 'pc-off', protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 300 } })
    await back.raw.until((ps) => ps.some((p) => p.cmd === 'publish'), 5000, 'the queued message')
  })

  it('the code follows the subscriptions of one topic as they come and go, the answer remembered per topic only while they stay the same', async () => {
    const { raw } = await rawClient(t.node.ports.mqtt, { clientId: 'pc-churn-pub', protocolVersion: 5 })
    let id = 0
    const publish = async (topic: string): Promise<number> => {
      const messageId = ++id
      raw.send({ cmd: 'publish', topic, payload: 'x', qos: 1, messageId })
      await raw.until((ps) => ps.some((p) => p.cmd === 'puback' && p.messageId === messageId), 5000, `PUBACK ${messageId}`)
      return raw.packets.find((p) => p.cmd === 'puback' && p.messageId === messageId)!.reasonCode ?? 0
    }
    const unsubscribe = async (s: Raw, filter: string, messageId: number): Promise<void> => {
      s.send({ cmd: 'unsubscribe', messageId, unsubscriptions: [filter] })
      await s.until((ps) => ps.some((p) => p.cmd === 'unsuback' && p.messageId === messageId), 5000, 'UNSUBACK')
    }
    expect([await publish('pc/churn/a'), await publish('pc/churn/a')]).toEqual([0x10, 0x10])
    const { raw: s1 } = await rawClient(t.node.ports.mqtt, { clientId: 'pc-churn-1', protocolVersion: 5 })
    const { raw: s2 } = await rawClient(t.node.ports.mqtt, { clientId: 'pc-churn-2', protocolVersion: 5 })
    await rawSubscribe(s1, 'pc/churn/+', 1)
    expect([await publish('pc/churn/a'), await publish('pc/churn/a')]).toEqual([0, 0])
    // the same filter twice: one leaving leaves the other
    await rawSubscribe(s2, 'pc/churn/+', 1)
    await unsubscribe(s1, 'pc/churn/+', 2)
    expect(await publish('pc/churn/a')).toBe(0)
    await unsubscribe(s2, 'pc/churn/+', 2)
    expect([await publish('pc/churn/a'), await publish('pc/churn/b')]).toEqual([0x10, 0x10])
    await rawSubscribe(s1, 'pc/churn/b', 1, 3)
    expect([await publish('pc/churn/a'), await publish('pc/churn/b')]).toEqual([0x10, 0])
  })

  it('a filter with a wildcard first level counts for a topic it matches: 0x00 [MQTT-4.7.2-1: not for a `$` topic]', async () => {
    const { raw: sub } = await rawClient(t.node.ports.mqtt, { clientId: 'pc-wild-sub', protocolVersion: 5 })
    await rawSubscribe(sub, '+/pc-wild/#', 1)
    const { raw } = await rawClient(t.node.ports.mqtt, { clientId: 'pc-wild-pub', protocolVersion: 5 })
    raw.send({ cmd: 'publish', topic: 'a/pc-wild/b', payload: 'x', qos: 1, messageId: 1 })
    raw.send({ cmd: 'publish', topic: 'a/pc-wild-not/b', payload: 'x', qos: 1, messageId: 2 })
    expect(await acks(raw, 2)).toEqual([
      ['puback', 1, 0],
      ['puback', 2, 0x10],
    ])
    await sub.until((ps) => ps.some((p) => p.cmd === 'publish'), 5000, 'the matching message')
  })

  it('a 3.1.1 publisher gets a plain PUBACK / PUBREC (no reason code) for a topic nobody subscribed to', async () => {
    const { raw } = await rawClient(t.node.ports.mqtt, { clientId: 'pc-v4' })
    raw.send({ cmd: 'publish', topic: 'pc/v4/none', payload: 'x', qos: 1, messageId: 1 })
    raw.send({ cmd: 'publish', topic: 'pc/v4/none', payload: 'x', qos: 2, messageId: 2 })
    expect((await acks(raw, 2)).sort((a, b) => a[1] - b[1])).toEqual([
      ['puback', 1, 0],
      ['pubrec', 2, 0],
    ])
    // the bytes: remaining length 2, no reason code
    expect(raw.packets.filter((p) => p.cmd === 'puback' || p.cmd === 'pubrec').map((p) => p.length)).toEqual([2, 2])
  })
})

describe('0x99 Payload format invalid (v5, §3.3.2.3.2)', () => {
  it('Payload Format Indicator 1 with a payload that is not UTF-8: PUBACK / PUBREC 0x99, not delivered nor retained, QoS 0 dropped, the connection stays', async () => {
    const { raw: sub } = await rawClient(t.node.ports.mqtt, { clientId: 'pf-sub', protocolVersion: 5 })
    await rawSubscribe(sub, 'pf/#', 2)
    const { raw } = await rawClient(t.node.ports.mqtt, { clientId: 'pf-pub', protocolVersion: 5 })
    const utf8 = { payloadFormatIndicator: true }
    raw.send({ cmd: 'publish', topic: 'pf/a', payload: NOT_UTF8, qos: 1, messageId: 1, retain: true, properties: utf8 })
    raw.send({ cmd: 'publish', topic: 'pf/a', payload: NOT_UTF8, qos: 2, messageId: 2, properties: utf8 })
    raw.send({ cmd: 'publish', topic: 'pf/a', payload: NOT_UTF8, qos: 0, properties: utf8 })
    // not UTF-8 but not said to be, and UTF-8 said to be: both fine
    raw.send({ cmd: 'publish', topic: 'pf/b', payload: NOT_UTF8, qos: 1, messageId: 3 })
    raw.send({ cmd: 'publish', topic: 'pf/c', payload: Buffer.from('héllo'), qos: 1, messageId: 4, properties: utf8 })
    const got = await acks(raw, 4)
    expect(got.sort((a, b) => a[1] - b[1])).toEqual([
      ['puback', 1, 0x99],
      ['pubrec', 2, 0x99],
      ['puback', 3, 0],
      ['puback', 4, 0],
    ])
    // the Reason String, since the client did not set Request Problem Information 0 [MQTT-3.1.2-29]
    expect(raw.packets.find((p) => p.cmd === 'puback')!.properties?.reasonString).toMatch(/UTF-8/)
    await sub.until((ps) => ps.filter((p) => p.cmd === 'publish').length === 2, 5000, 'the two valid messages')
    expect(sub.publishes().map((p) => p.topic)).toEqual(['pf/b', 'pf/c'])
    expect(raw.closed).toBe(false)
    const { raw: later } = await rawClient(t.node.ports.mqtt, { clientId: 'pf-later', protocolVersion: 5 })
    await rawSubscribe(later, 'pf/a', 1)
    raw.send({ cmd: 'pingreq' })
    await raw.until((ps) => ps.some((p) => p.cmd === 'pingresp'), 5000, 'PINGRESP: the connection still answers')
    expect(later.publishes()).toEqual([])
  })

  it('Request Problem Information 0: the 0x99 PUBACK carries no Reason String [MQTT-3.1.2-29]', async () => {
    const { raw } = await rawClient(t.node.ports.mqtt, { clientId: 'pf-quiet', protocolVersion: 5, properties: { requestProblemInformation: false } })
    raw.send({ cmd: 'publish', topic: 'pf/q', payload: NOT_UTF8, qos: 1, messageId: 1, properties: { payloadFormatIndicator: true } })
    expect(await acks(raw, 1)).toEqual([['puback', 1, 0x99]])
    expect(raw.packets.find((p) => p.cmd === 'puback')!.properties).toBeUndefined()
  })
})

describe('puback_no_subscribers false', () => {
  const off = useTestNode({ puback_no_subscribers: false })
  it('a QoS 1 and a QoS 2 PUBLISH nobody subscribed to get PUBACK / PUBREC 0x00, and are still retained', async () => {
    const { raw } = await rawClient(off.node.ports.mqtt, { clientId: 'pc-off', protocolVersion: 5 })
    raw.send({ cmd: 'publish', topic: 'pc/off', payload: 'a', qos: 1, messageId: 1, retain: true })
    raw.send({ cmd: 'publish', topic: 'pc/off/2', payload: 'b', qos: 2, messageId: 2 })
    expect(await acks(raw, 2)).toEqual([
      ['puback', 1, 0],
      ['pubrec', 2, 0],
    ])
    const { raw: later } = await rawClient(off.node.ports.mqtt, { clientId: 'pc-off-later', protocolVersion: 5 })
    await rawSubscribe(later, 'pc/off', 1)
    await later.until((ps) => ps.some((p) => p.cmd === 'publish'), 5000, 'the retained message')
  })
})
