/**
 * Overlapping subscriptions with Subscription Identifiers [MQTT-3.3.4-3] [MQTT-3.3.4-4]
 * [MQTT-3.3.4-5] (v5): a message matching several of a client's subscriptions is delivered once
 * and carries the identifiers of all of them (the beta echoed the first one only: aedes#828),
 * on one node and with the publisher on another node (the identifiers are the subscriber's,
 * added on its node: broker/subscription-ids.ts).
 */
import type { IPublishPacket, MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { killAll, startNode, startRedis, type TestNode } from '../helpers/cluster-procs.js'
import { closeAllClients, mqttConnect } from '../helpers/cluster-mqtt.js'
import { startTestNode, waitFor } from '../helpers/node.js'

const v5 = { protocolVersion: 5 as const }

interface Got {
  topic: string
  payload: string
  ids: number[]
}
function collect(client: MqttClient): Got[] {
  const got: Got[] = []
  client.on('message', (topic, payload, packet: IPublishPacket) => {
    const si = packet.properties?.subscriptionIdentifier
    got.push({ topic, payload: payload.toString(), ids: (si === undefined ? [] : ([] as number[]).concat(si)).sort((x, y) => x - y) })
  })
  return got
}

/** three SUBSCRIBEs (an identifier belongs to a SUBSCRIBE): s/+ id 1, s/# id 2, s/x without one */
async function subscriber(url: string, clientId: string, prefix: string): Promise<Got[]> {
  const c = await mqttConnect(url, { ...v5, clientId })
  const got = collect(c)
  await c.subscribeAsync(`${prefix}/+`, { qos: 1, properties: { subscriptionIdentifier: 1 } })
  await c.subscribeAsync(`${prefix}/#`, { qos: 1, properties: { subscriptionIdentifier: 2 } })
  await c.subscribeAsync(`${prefix}/x`, { qos: 0 })
  return got
}

/** publish the three messages and wait for the marker (on a topic only s/# matches) */
async function publishAll(pub: MqttClient, prefix: string, got: Got[]): Promise<void> {
  await pub.publishAsync(`${prefix}/x`, 'x1', { qos: 1 })
  await pub.publishAsync(`${prefix}/y`, 'y0', { qos: 0 })
  await pub.publishAsync(`${prefix}/a/b`, 'end', { qos: 1 })
  await waitFor(() => got.some((g) => g.payload === 'end'), 5000, 'the last message')
}

const expected = (prefix: string): Got[] => [
  { topic: `${prefix}/x`, payload: 'x1', ids: [1, 2] },
  { topic: `${prefix}/y`, payload: 'y0', ids: [1, 2] },
  { topic: `${prefix}/a/b`, payload: 'end', ids: [2] },
]

afterAll(closeAllClients)

describe('one node', () => {
  let node: CulexNode
  let url: string
  beforeAll(async () => {
    node = await startTestNode()
    url = `mqtt://127.0.0.1:${node.ports.mqtt}`
  })
  afterAll(() => node.close())

  it('one delivery per message, carrying the identifiers of every matching subscription [MQTT-3.3.4-3] [MQTT-3.3.4-4] (v5)', async () => {
    const got = await subscriber(url, 'si-sub', 'si1')
    const pub = await mqttConnect(url, { ...v5, clientId: 'si-pub' })
    await publishAll(pub, 'si1', got)
    expect(got).toEqual(expected('si1'))
  })

  it('a subscription with No Local does not add its identifier to the client\'s own message [MQTT-3.8.3-3] [MQTT-3.3.4-4] (v5)', async () => {
    const c = await mqttConnect(url, { ...v5, clientId: 'si-nl' })
    const got = collect(c)
    await c.subscribeAsync('si4/#', { qos: 1, nl: true, properties: { subscriptionIdentifier: 7 } })
    await c.subscribeAsync('si4/+', { qos: 1, properties: { subscriptionIdentifier: 8 } })
    await c.subscribeAsync('si4/x', { qos: 1, properties: { subscriptionIdentifier: 9 } })
    await c.publishAsync('si4/x', 'own', { qos: 1 })
    await waitFor(() => got.length > 0, 5000, 'the own message')
    const other = await mqttConnect(url, { ...v5, clientId: 'si-nl-pub' })
    await other.publishAsync('si4/x', 'other', { qos: 1 })
    await waitFor(() => got.length > 1, 5000, 'the other message')
    expect(got.map((g) => [g.payload, g.ids])).toEqual([['own', [8, 9]], ['other', [7, 8, 9]]])
  })

  it('a client that held no identifier gets them once it subscribes with one, also when a filter it held is subscribed again with one [MQTT-3.3.4-3] [MQTT-3.3.4-4] (v5)', async () => {
    const c = await mqttConnect(url, { ...v5, clientId: 'si-late' })
    const got = collect(c)
    await c.subscribeAsync('si7/#', { qos: 1 })
    const pub = await mqttConnect(url, { ...v5, clientId: 'si-late-pub' })
    const send = async (payload: string, n: number): Promise<void> => {
      await pub.publishAsync('si7/a', payload, { qos: 1 })
      await waitFor(() => got.length === n, 5000, `message ${payload}`)
    }
    await send('none', 1)
    await c.subscribeAsync('si7/+', { qos: 1, properties: { subscriptionIdentifier: 12 } })
    await send('one', 2)
    await c.subscribeAsync('si7/#', { qos: 1, properties: { subscriptionIdentifier: 13 } })
    await send('both', 3)
    expect(got.map((g) => [g.payload, g.ids])).toEqual([['none', []], ['one', [12]], ['both', [12, 13]]])
  })

  it('a $share delivery carries the identifier of the member\'s $share subscription [MQTT-3.3.4-3] (v5)', async () => {
    const m = await mqttConnect(url, { ...v5, clientId: 'si-member' })
    const got = collect(m)
    await m.subscribeAsync('$share/g/si5/+', { qos: 1, properties: { subscriptionIdentifier: 11 } })
    const plain = await mqttConnect(url, { ...v5, clientId: 'si-member-plain' })
    const gotPlain = collect(plain)
    await plain.subscribeAsync('$share/h/si5/+', { qos: 0 })
    const pub = await mqttConnect(url, { ...v5, clientId: 'si-share-pub' })
    await pub.publishAsync('si5/x', 'one', { qos: 1 })
    await pub.publishAsync('si5/y', 'two', { qos: 0 })
    await waitFor(() => got.length === 2 && gotPlain.length === 2, 5000, 'both messages for both groups')
    expect(got.map((g) => [g.payload, g.ids])).toEqual([['one', [11]], ['two', [11]]])
    expect(gotPlain.map((g) => g.ids)).toEqual([[], []])
  })

  it('a retained message sent for a new subscription carries that subscription\'s identifier only [MQTT-3.3.4-3] (v5)', async () => {
    const pub = await mqttConnect(url, { ...v5, clientId: 'si-ret-pub' })
    await pub.publishAsync('si2/x', 'kept', { qos: 1, retain: true })
    const c = await mqttConnect(url, { ...v5, clientId: 'si-ret' })
    const got = collect(c)
    await c.subscribeAsync('si2/+', { qos: 1, properties: { subscriptionIdentifier: 5 } })
    await c.subscribeAsync('si2/#', { qos: 1, properties: { subscriptionIdentifier: 6 } })
    await waitFor(() => got.length === 2, 5000, 'the retained message once per subscription')
    expect(got.map((g) => g.ids)).toEqual([[5], [6]])
  })
})

describe('two nodes over Redis', () => {
  let a: TestNode
  let b: TestNode
  beforeAll(async () => {
    const redis = await startRedis()
    ;[a, b] = await Promise.all([startNode(redis.url, 'si-a'), startNode(redis.url, 'si-b')])
  })
  afterAll(killAll)

  it('a message published on A reaches the subscriber on B once, with all its identifiers [MQTT-3.3.4-3] [MQTT-3.3.4-4] (v5)', async () => {
    const got = await subscriber(b.url, 'si-sub-b', 'si3')
    const pub = await mqttConnect(a.url, { ...v5, clientId: 'si-pub-a' })
    // the subscriptions reach node A through the cluster: wait until a message crosses
    await waitFor(async () => {
      await pub.publishAsync('si3/a/b', 'ping', { qos: 0 })
      return got.some((g) => g.payload === 'ping')
    }, 5000, 'the subscriptions known on A')
    await publishAll(pub, 'si3', got)
    expect(got.filter((g) => g.payload !== 'ping')).toEqual(expected('si3'))
  })
  it('a persistent session resumed on B carries the identifiers of the subscriptions it made on A [MQTT-3.3.4-3] [MQTT-3.3.4-4] (v5)', async () => {
    const session = { ...v5, clientId: 'si-moved', clean: false, properties: { sessionExpiryInterval: 300 } }
    const onA = await mqttConnect(a.url, session)
    await onA.subscribeAsync('si8/+', { qos: 1, properties: { subscriptionIdentifier: 31 } })
    await onA.subscribeAsync('si8/#', { qos: 1, properties: { subscriptionIdentifier: 32 } })
    await onA.subscribeAsync('si8/x', { qos: 1 })
    await onA.endAsync()
    const onB = await mqttConnect(b.url, session)
    const got = collect(onB)
    const pub = await mqttConnect(a.url, { ...v5, clientId: 'si-moved-pub' })
    await pub.publishAsync('si8/x', 'moved', { qos: 1 })
    await pub.publishAsync('si8/a/b', 'deep', { qos: 1 })
    await waitFor(() => got.length === 2, 5000, 'both messages on B')
    expect(got.map((g) => [g.payload, g.ids])).toEqual([['moved', [31, 32]], ['deep', [32]]])
  })
  it('a $share member on B gets a message published on A with its $share subscription\'s identifier [MQTT-3.3.4-3] (v5)', async () => {
    const m = await mqttConnect(b.url, { ...v5, clientId: 'si-member-b' })
    const got = collect(m)
    await m.subscribeAsync('$share/g/si6/#', { qos: 1, properties: { subscriptionIdentifier: 21 } })
    const pub = await mqttConnect(a.url, { ...v5, clientId: 'si-share-pub-a' })
    // the group reaches node A through Redis: wait until a message crosses
    await waitFor(async () => {
      await pub.publishAsync('si6/t', 'ping', { qos: 1 })
      return got.length > 0
    }, 5000, 'the group known on A')
    expect(got[0]!.ids).toEqual([21])
  })
})
