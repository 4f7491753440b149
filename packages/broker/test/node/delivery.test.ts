/** Message delivery on one node, as an MQTT 3.1.1 client sees it. */
import { describe, expect, it } from 'vitest'
import { collect, connect, sleep, useTestNode, waitFor } from '../helpers/node.js'

const t = useTestNode()

describe('delivery', () => {
  for (const qos of [0, 1, 2] as const) {
    it(`QoS ${qos} message reaches a QoS ${qos} subscriber${qos === 2 ? ' exactly once [MQTT-4.3.3-1]' : ''}`, async () => {
      const sub = await connect(t.url)
      const got = collect(sub)
      await sub.subscribeAsync(`d/q${qos}`, { qos })
      const pub = await connect(t.url)
      for (let i = 0; i < 20; i++) await pub.publishAsync(`d/q${qos}`, `m${i}`, { qos })
      await waitFor(() => got.length >= 20, 5000, '20 messages')
      await sleep(qos === 2 ? 200 : 50)
      expect(got.map((m) => m.payload)).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`))
      expect(got.every((m) => m.qos === qos)).toBe(true)
    })
  }

  it('one SUBSCRIBE with several filters gets one SUBACK with a code per filter [MQTT-3.8.4-4] [MQTT-3.9.3-1]', async () => {
    const sub = await connect(t.url)
    const got = collect(sub)
    const granted = await sub.subscribeAsync({ 'multi/a': { qos: 0 }, 'multi/b': { qos: 1 }, 'multi/c': { qos: 2 } })
    expect(granted.map((g) => [g.topic, g.qos])).toEqual([
      ['multi/a', 0],
      ['multi/b', 1],
      ['multi/c', 2],
    ])
    const pub = await connect(t.url)
    for (const t of ['a', 'b', 'c']) await pub.publishAsync(`multi/${t}`, t, { qos: 1 })
    await waitFor(() => got.length === 3, 5000, 'three messages')
    expect(got.map((m) => m.topic).sort()).toEqual(['multi/a', 'multi/b', 'multi/c'])
  })

  it('a retained message is delivered on subscribe and an empty retained publish clears it [MQTT-3.3.1-5] [MQTT-3.3.1-10]', async () => {
    const pub = await connect(t.url)
    await pub.publishAsync('ret/x', 'kept', { qos: 1, retain: true })
    const s1 = await connect(t.url)
    const got1 = collect(s1)
    await s1.subscribeAsync('ret/#', { qos: 1 })
    await waitFor(() => got1.length === 1, 5000, 'retained message')
    expect(got1[0]).toMatchObject({ topic: 'ret/x', payload: 'kept', retain: true })

    await pub.publishAsync('ret/x', '', { qos: 1, retain: true })
    const s2 = await connect(t.url)
    const got2 = collect(s2)
    await s2.subscribeAsync('ret/#', { qos: 1 })
    await sleep(200)
    expect(got2).toEqual([])
  })

  it('+ and # wildcards match, and # does not match $SYS topics [MQTT-4.7.2-1] [MQTT-4.7.1-2] [MQTT-4.7.1-3]', async () => {
    const plus = await connect(t.url)
    const gotPlus = collect(plus)
    await plus.subscribeAsync('w/+/temp', { qos: 1 })
    const hash = await connect(t.url)
    const gotHash = collect(hash)
    await hash.subscribeAsync('#', { qos: 1 })
    const pub = await connect(t.url)
    await pub.publishAsync('w/kitchen/temp', '21', { qos: 1 })
    await pub.publishAsync('w/kitchen/hum', '40', { qos: 1 })
    await pub.publishAsync('w', 'parent', { qos: 1 })
    await waitFor(() => gotHash.length >= 3 && gotPlus.length >= 1, 5000, 'wildcard deliveries')
    await sleep(300)
    expect(gotPlus.map((m) => m.topic)).toEqual(['w/kitchen/temp'])
    expect(gotHash.map((m) => m.topic)).toEqual(['w/kitchen/temp', 'w/kitchen/hum', 'w'])
    // the node publishes $SYS heartbeats and client notices all the time: none reach '#'
    expect(gotHash.some((m) => m.topic.startsWith('$SYS'))).toBe(false)
  })

  it('a subscriber that reads gets a 5,000-message QoS 1 burst complete and in order (bursts are not slow consumers)', async () => {
    const sub = await connect(t.url)
    const got = collect(sub)
    await sub.subscribeAsync('burst/t', { qos: 1 })
    const pub = await connect(t.url)
    const sent = Array.from({ length: 5000 }, (_, i) => pub.publishAsync('burst/t', `b${i}`, { qos: 1 }))
    await Promise.all(sent)
    await waitFor(() => got.length >= 5000, 15_000, '5000 messages')
    expect(sub.connected).toBe(true)
    expect(got.map((m) => m.payload)).toEqual(Array.from({ length: 5000 }, (_, i) => `b${i}`))
  })

  it('unsubscribe stops delivery [MQTT-3.10.4-6]', async () => {
    const sub = await connect(t.url)
    const got = collect(sub)
    await sub.subscribeAsync('un/t', { qos: 1 })
    const pub = await connect(t.url)
    await pub.publishAsync('un/t', 'before', { qos: 1 })
    await waitFor(() => got.length === 1, 5000, 'first message')
    await sub.unsubscribeAsync('un/t')
    await pub.publishAsync('un/t', 'after', { qos: 1 })
    await sleep(200)
    expect(got.map((m) => m.payload)).toEqual(['before'])
  })
})
