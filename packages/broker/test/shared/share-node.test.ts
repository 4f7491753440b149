/** Shared subscriptions `$share/<group>/<filter>` on a single node in memory, seen from MQTT 3.1.1 clients. */
import type { MqttClient } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { collect, connect, startTestNode, useTestNode, waitFor } from '../helpers/node.js'
import { closeRaw, rawClient, rawSubscribe } from '../helpers/raw-mqtt.js'

const t = useTestNode()
afterEach(closeRaw)

const closed = (c: MqttClient): Promise<void> => new Promise((r) => (c.connected ? c.once('close', () => r()) : r()))
const payloads = (got: Array<{ payload: string }>): string[] => got.map((g) => g.payload)

async function members(n: number, filter: string, prefix: string, qos: 0 | 1 | 2 = 1): Promise<Array<{ c: MqttClient; got: ReturnType<typeof collect> }>> {
  const out = []
  for (let i = 0; i < n; i++) {
    const c = await connect(t.url, { clientId: `${prefix}-${i}` })
    const got = collect(c)
    const granted = await c.subscribeAsync(filter, { qos })
    expect(granted[0]!.qos).toBe(qos)
    out.push({ c, got })
  }
  return out
}

describe('shared subscriptions, one node', () => {
  it('each message goes to exactly one member of each group, every member gets a share; a plain subscriber gets every message', async () => {
    const g = await members(3, '$share/g1/sh/#', 'g1')
    const h = await members(2, '$share/g2/sh/#', 'g2')
    const plain = await connect(t.url)
    const all = collect(plain)
    await plain.subscribeAsync('sh/#', { qos: 1 })
    const pub = await connect(t.url)
    const N = 300
    for (let i = 0; i < N; i++) await pub.publishAsync(`sh/${i % 7}`, String(i), { qos: 1 })
    const count = (ms: typeof g): number => ms.reduce((n, m) => n + m.got.length, 0)
    await waitFor(() => count(g) === N && count(h) === N && all.length === N, 10_000, 'every message in each group and the plain subscriber')
    for (const group of [g, h]) {
      const seen = group.flatMap((m) => payloads(m.got)).sort((a, b) => Number(a) - Number(b))
      expect(seen).toEqual(Array.from({ length: N }, (_, i) => String(i)))
      // round robin: an even share
      for (const m of group) expect(m.got.length).toBeGreaterThanOrEqual(Math.floor(N / group.length) - 1)
      for (const m of group) expect(m.got.every((x) => x.qos === 1 && !x.retain)).toBe(true)
    }
  })

  it('a member gets messages at most at the QoS it subscribed with [MQTT-3.8.4-6]', async () => {
    const [m] = await members(1, '$share/q0/qq/#', 'q0', 0)
    const pub = await connect(t.url)
    await pub.publishAsync('qq/x', 'hello', { qos: 2 })
    await waitFor(() => m!.got.length === 1, 3000, 'the message')
    expect(m!.got[0]).toMatchObject({ topic: 'qq/x', payload: 'hello', qos: 0 })
  })

  it('[MQTT-4.8.2-1] [MQTT-4.8.2-2] (v5) invalid share names get 0x80 in the SUBACK [MQTT-3.9.3-2]; the connection stays', async () => {
    const { raw } = await rawClient(t.node.ports.mqtt, { clientId: 'bad-names' })
    const bad = ['$share/+/a', '$share//a', '$share/g', '$share/g/', '$share/#', '$share']
    raw.send({ cmd: 'subscribe', messageId: 7, subscriptions: [...bad, 'ok/topic'].map((topic) => ({ topic, qos: 1 })) })
    await raw.until((ps) => ps.some((p) => p.cmd === 'suback'), 5000, 'SUBACK')
    expect(raw.packets.find((p) => p.cmd === 'suback')!.granted).toEqual([...bad.map(() => 128), 1])
    raw.send({ cmd: 'pingreq' })
    await raw.until((ps) => ps.some((p) => p.cmd === 'pingresp'), 5000, 'PINGRESP')
  })

  it('[MQTT-4.7.1-2] a share name with # inside the group is a malformed filter: the connection is closed [MQTT-4.8.0-1]', async () => {
    const { raw } = await rawClient(t.node.ports.mqtt, { clientId: 'bad-hash' })
    raw.send({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: '$share/g#/a', qos: 1 }] })
    await raw.until(() => raw.closed, 5000, 'the connection closed')
    expect(raw.packets.some((p) => p.cmd === 'suback')).toBe(false)
  })

  it('a will on a $share/... topic is refused at CONNECT (CONNACK 5)', async () => {
    await expect(connect(t.url, { will: { topic: '$share/g/w', payload: Buffer.from('x'), qos: 1, retain: false } })).rejects.toMatchObject({ code: 5 })
  })

  it('a PUBLISH to $share/... closes the connection and reaches nobody', async () => {
    const [m] = await members(1, '$share/x/#', 'xx')
    const pub = await connect(t.url)
    const gone = closed(pub)
    pub.publish('$share/x/y', 'nope', { qos: 1 })
    await gone
    const probe = await connect(t.url)
    await probe.publishAsync('probe', 'p', { qos: 1 })
    await waitFor(() => m!.got.length === 1, 3000, 'the probe')
    expect(payloads(m!.got)).toEqual(['p'])
  })

  it('[MQTT-4.8.2 v5] no retained message is sent to a shared subscription; a live retained message arrives with RETAIN 0 [MQTT-3.3.1-9]', async () => {
    const pub = await connect(t.url)
    await pub.publishAsync('ret/a', 'old', { qos: 1, retain: true })
    const plain = await connect(t.url)
    const plainGot = collect(plain)
    await plain.subscribeAsync('ret/#', { qos: 1 })
    const [m] = await members(1, '$share/r/ret/#', 'ret')
    await waitFor(() => plainGot.length === 1, 3000, 'the retained message for the plain subscriber')
    await pub.publishAsync('ret/b', 'live', { qos: 1, retain: true })
    await waitFor(() => m!.got.length === 1, 3000, 'the live message')
    expect(m!.got).toEqual([{ topic: 'ret/b', payload: 'live', qos: 1, retain: false }])
    await pub.publishAsync('ret/a', '', { qos: 1, retain: true })
    await pub.publishAsync('ret/b', '', { qos: 1, retain: true })
  })

  it('unacknowledged QoS 1 messages of a member whose connection ends go to another member', async () => {
    const keeper = await connect(t.url, { clientId: 'ua-keeper' })
    const kept = collect(keeper)
    await keeper.subscribeAsync('$share/ua/ua/#', { qos: 1 })
    // a member that never acknowledges
    const { raw: mute } = await rawClient(t.node.ports.mqtt, { clientId: 'ua-mute' })
    await rawSubscribe(mute, '$share/ua/ua/#', 1)
    const muted = (): number => mute.publishes().length
    const pub = await connect(t.url)
    const N = 40
    for (let i = 0; i < N; i++) await pub.publishAsync('ua/x', String(i), { qos: 1 })
    await waitFor(() => kept.length + muted() === N, 5000, 'all handed out')
    expect(muted()).toBeGreaterThan(0)
    await mute.drop()
    await waitFor(() => kept.length === N, 5000, 'the muted member\'s messages at the other member')
    expect(payloads(kept).sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: N }, (_, i) => String(i)))
  })

  it('[MQTT-4.8.2-4] (v5 rule, 3.1.1 member) QoS 2 to a persistent member whose connection ends before PUBCOMP: never sent to the other member; back, it gets the PUBLISH again (DUP 1, same id), or the PUBREL once it sent PUBREC', async () => {
    const { raw: a } = await rawClient(t.node.ports.mqtt, { clientId: 'q2p-a', clean: false })
    await rawSubscribe(a, '$share/q2p/q2p/#', 2)
    const pub = await connect(t.url)
    await pub.publishAsync('q2p/x', 'unacked', { qos: 2 })
    await pub.publishAsync('q2p/x', 'recd', { qos: 2 })
    await pub.publishAsync('q2p/x', 'qos1', { qos: 1 })
    await a.until((ps) => ps.filter((p) => p.cmd === 'publish').length === 3, 5000, 'three deliveries')
    const [unacked, recd] = a.publishes()
    a.send({ cmd: 'pubrec', messageId: recd!.messageId })
    await a.until((ps) => ps.some((p) => p.cmd === 'pubrel'), 5000, 'PUBREL')
    const keeper = await connect(t.url, { clientId: 'q2p-keeper' })
    const kept = collect(keeper)
    await keeper.subscribeAsync('$share/q2p/q2p/#', { qos: 2 })
    await a.drop()
    // the QoS 1 one goes on when the connection ends [MQTT-4.8.2 v5 allows it]; the QoS 2 ones with it would
    await waitFor(() => kept.length === 1, 5000, 'the QoS 1 message at the other member')
    await new Promise((r) => setTimeout(r, 300))
    expect(payloads(kept)).toEqual(['qos1'])
    const { raw: back } = await rawClient(t.node.ports.mqtt, { clientId: 'q2p-a', clean: false })
    await back.until((ps) => ps.some((p) => p.cmd === 'pubrel'), 5000, 'the replay')
    expect(back.packets.filter((p) => p.cmd !== 'connack').map((p) => [p.cmd, p.cmd === 'publish' ? String(p.payload) : '', p.dup ?? false, p.messageId])).toEqual([
      ['publish', 'unacked', true, unacked!.messageId],
      ['pubrel', '', false, recd!.messageId],
    ])
    await (await connect(t.url, { clientId: 'q2p-a', clean: true })).endAsync()
  })

  it('a group with only offline persistent members keeps QoS 1 messages for the first to come back', async () => {
    const a = await connect(t.url, { clientId: 'off-a', clean: false })
    await a.subscribeAsync('$share/off/off/#', { qos: 1 })
    await a.endAsync()
    const pub = await connect(t.url)
    for (let i = 0; i < 20; i++) await pub.publishAsync('off/x', String(i), { qos: 1 })
    await pub.publishAsync('off/x', 'q0', { qos: 0 })
    const back = await connect(t.url, { clientId: 'off-a', clean: false })
    const got = collect(back)
    await waitFor(() => got.length >= 20, 5000, 'the kept messages')
    expect(payloads(got)).toEqual(Array.from({ length: 20 }, (_, i) => String(i)))
    await back.unsubscribeAsync('$share/off/off/#')
    await pub.publishAsync('off/x', 'after', { qos: 1 })
    await back.endAsync()
  })

  it('QoS 2 to a persistent member: each message once, and once acknowledged (PUBCOMP) nothing goes to another member when it leaves', async () => {
    const a = await connect(t.url, { clientId: 'q2-a', clean: false })
    const gotA = collect(a)
    await a.subscribeAsync('$share/q2/q2/#', { qos: 2 })
    const b = await connect(t.url, { clientId: 'q2-b' })
    const gotB = collect(b)
    await b.subscribeAsync('$share/q2/q2/#', { qos: 2 })
    const pub = await connect(t.url)
    for (let i = 0; i < 20; i++) await pub.publishAsync('q2/x', String(i), { qos: 2 })
    await waitFor(() => gotA.length + gotB.length === 20, 5000, 'every message')
    expect(gotA.length).toBe(10)
    expect(gotA.every((g) => g.qos === 2)).toBe(true)
    // mqtt.js has sent its PUBCOMP once the next message is handled: a last one shows they all went
    await a.endAsync()
    await pub.publishAsync('q2/x', 'last', { qos: 2 })
    await waitFor(() => gotB.length === 11, 5000, 'the last message at the remaining member')
    expect(payloads(gotB).filter((p) => p !== 'last').length).toBe(10)
    expect(new Set([...payloads(gotA), ...payloads(gotB)]).size).toBe(21)
    const metrics = await (await fetch(`${t.ops}/metrics`)).text()
    expect(metrics).toMatch(/^culex_shared_messages_total\{group="q2\/q2\/#"\} 21$/m)
    expect(metrics).toMatch(/^culex_shared_redispatched_total\{group="q2\/q2\/#"\} 0$/m)
    await (await connect(t.url, { clientId: 'q2-a', clean: true })).endAsync()
  })

  it('hash_topic keeps each topic on one member', async () => {
    const node = await startTestNode({ shared_strategy: 'hash_topic' })
    try {
      const url = `mqtt://127.0.0.1:${node.ports.mqtt}`
      const ms: Array<ReturnType<typeof collect>> = []
      for (let i = 0; i < 3; i++) {
        const c = await connect(url, { clientId: `ht-${i}` })
        ms.push(collect(c))
        await c.subscribeAsync('$share/ht/ht/#', { qos: 1 })
      }
      const pub = await connect(url)
      for (let i = 0; i < 60; i++) await pub.publishAsync(`ht/${i % 6}`, String(i), { qos: 1 })
      await waitFor(() => ms.reduce((n, m) => n + m.length, 0) === 60, 5000, 'every message')
      for (let k = 0; k < 6; k++) expect(ms.filter((m) => m.some((g) => g.topic === `ht/${k}`)).length).toBe(1)
    } finally {
      await node.close()
    }
  })
})
