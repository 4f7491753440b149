/**
 * What a v5 client is told in the CONNACK (MQTT 5.0 §3.2.2.3) and that it holds: shared
 * subscriptions available and working, Server Keep Alive from keepalive_max_s [MQTT-3.2.2-21],
 * Maximum Packet Size and Receive Maximum from the config, retain / wildcard / subscription
 * identifiers available (absent = available) and working. 3.1.1 CONNACKs unchanged.
 */
import mqtt, { type IConnackPacket } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { closeAllClients, collect, connackOf, mqttConnect } from '../helpers/cluster-mqtt.js'
import { startTestNode, waitFor } from '../helpers/node.js'
import { closeRaw, rawClient } from '../helpers/raw-mqtt.js'

let node: CulexNode
let url: string
beforeAll(async () => {
  node = await startTestNode({ keepalive_max_s: 60, max_packet_size: 4096, max_inflight: 50 })
  url = `mqtt://127.0.0.1:${node.ports.mqtt}`
})
afterAll(async () => {
  await closeAllClients()
  await closeRaw()
  await node.close()
})

/** connect a v5 client and return its CONNACK */
async function connack(opts: mqtt.IClientOptions): Promise<IConnackPacket> {
  const c = mqtt.connect(url, { protocolVersion: 5, reconnectPeriod: 0, ...opts })
  try {
    return await new Promise<IConnackPacket>((resolve, reject) => {
      c.once('connect', resolve)
      c.once('error', reject)
    })
  } finally {
    await c.endAsync(true)
  }
}

describe('CONNACK properties of a v5 client', () => {
  it('shared subscriptions available, Maximum Packet Size and Receive Maximum from the config, Server Keep Alive = keepalive_max_s for a client asking more [MQTT-3.2.2-21]; retain, wildcards, subscription ids, QoS 2 not restricted', async () => {
    const ack = await connack({ clientId: 'ca-1', keepalive: 300 })
    expect(ack.reasonCode).toBe(0)
    expect(ack.properties).toMatchObject({ sharedSubscriptionAvailable: true, maximumPacketSize: 4096, receiveMaximum: 50, serverKeepAlive: 60, topicAliasMaximum: 32 })
    for (const restricted of ['retainAvailable', 'wildcardSubscriptionAvailable', 'subscriptionIdentifiersAvailable', 'maximumQoS'])
      expect(ack.properties, restricted).not.toHaveProperty(restricted)
  })

  it('Server Keep Alive for a client asking for none (0), none for a client within the cap', async () => {
    expect((await connack({ clientId: 'ca-2', keepalive: 0 })).properties?.serverKeepAlive).toBe(60)
    expect((await connack({ clientId: 'ca-3', keepalive: 30 })).properties).not.toHaveProperty('serverKeepAlive')
  })

  it('Request Response Information 1: Response Information = response_information with the client id (§3.2.2.3.15); none when not asked, nor for a client id with a wildcard or /', async () => {
    expect((await connack({ clientId: 'ca-ri', properties: { requestResponseInformation: true } })).properties?.responseInformation).toBe('culex/response/ca-ri')
    expect((await connack({ clientId: 'ca-ri0' })).properties).not.toHaveProperty('responseInformation')
    expect((await connack({ clientId: 'ca-ri0', properties: { requestResponseInformation: false } })).properties).not.toHaveProperty('responseInformation')
    expect((await connack({ clientId: 'ca/ri+', properties: { requestResponseInformation: true } })).properties).not.toHaveProperty('responseInformation')
  })

  it('response_information empty: no Response Information even when asked', async () => {
    const off = await startTestNode({ response_information: '' })
    try {
      const c = await mqttConnect(`mqtt://127.0.0.1:${off.ports.mqtt}`, { protocolVersion: 5, clientId: 'ca-ri-off', properties: { requestResponseInformation: true } })
      expect(connackOf(c).properties).not.toHaveProperty('responseInformation')
      await c.endAsync()
    } finally {
      await off.close()
    }
  })

  it('the response prefix works as a response topic: a requester gets the reply a responder publishes to it (no ACL configured)', async () => {
    const requester = await mqttConnect(url, { protocolVersion: 5, clientId: 'ca-req', properties: { requestResponseInformation: true } })
    const prefix = connackOf(requester).properties!.responseInformation!
    await requester.subscribeAsync(`${prefix}/#`, { qos: 1 })
    const replies = collect(requester)
    const responder = await mqttConnect(url, { protocolVersion: 5, clientId: 'ca-resp' })
    responder.on('message', (_t, payload, packet) => void responder.publish(packet.properties!.responseTopic!, `re: ${payload.toString()}`, { qos: 1, properties: { correlationData: packet.properties!.correlationData! } }))
    await responder.subscribeAsync('ca/service', { qos: 1 })
    await requester.publishAsync('ca/service', 'ping', { qos: 1, properties: { responseTopic: `${prefix}/1`, correlationData: Buffer.from('c1') } })
    await waitFor(() => replies.length === 1, 5000, 'the reply')
    expect(replies[0]).toMatchObject({ topic: 'culex/response/ca-req/1', payload: 're: ping' })
  })

  it('a 3.1.1 CONNACK is unchanged: return code 0, no properties', async () => {
    const { connack } = await rawClient(node.ports.mqtt, { clientId: 'ca-311', keepalive: 300 })
    expect(connack.returnCode).toBe(0)
    expect(connack.properties).toBeUndefined()
  })
})

describe('what the CONNACK says is available works', () => {
  it('shared subscriptions: two v5 members of $share/g/ca/t get each message once between them', async () => {
    const m1 = await mqttConnect(url, { protocolVersion: 5, clientId: 'ca-m1' })
    const m2 = await mqttConnect(url, { protocolVersion: 5, clientId: 'ca-m2' })
    for (const m of [m1, m2]) expect((await m.subscribeAsync('$share/g/ca/t', { qos: 1 })).map((g) => g.qos)).toEqual([1])
    const pub = await mqttConnect(url, { protocolVersion: 5, clientId: 'ca-pub' })
    for (let i = 0; i < 6; i++) await pub.publishAsync('ca/t', String(i), { qos: 1 })
    const got = [collect(m1), collect(m2)]
    await waitFor(() => got[0]!.length + got[1]!.length === 6, 5000, 'six messages in the group')
    expect([...got[0]!, ...got[1]!].map((g) => g.payload).sort()).toEqual(['0', '1', '2', '3', '4', '5'])
    expect(got.every((g) => g.every((m) => m.topic === 'ca/t'))).toBe(true)
  })

  it('a subscription identifier comes back on the messages of its subscription [MQTT-3.3.4-3]; retained messages and wildcards work', async () => {
    const pub = await mqttConnect(url, { protocolVersion: 5, clientId: 'ca-rpub' })
    await pub.publishAsync('ca/r/1', 'kept', { qos: 1, retain: true })
    const sub = await mqttConnect(url, { protocolVersion: 5, clientId: 'ca-sid' })
    const ids: Array<[string, unknown, boolean]> = []
    sub.on('message', (topic, _p, packet) => ids.push([topic, packet.properties?.subscriptionIdentifier, packet.retain]))
    await sub.subscribeAsync('ca/r/+', { qos: 1, properties: { subscriptionIdentifier: 7 } })
    await pub.publishAsync('ca/r/2', 'live', { qos: 1 })
    await waitFor(() => ids.length === 2, 5000, 'the retained and the live message')
    expect(ids).toEqual([
      ['ca/r/1', 7, true],
      ['ca/r/2', 7, false],
    ])
    await pub.publishAsync('ca/r/1', '', { qos: 1, retain: true })
  })
})

describe('Session Present of a v5 client', () => {
  it('a v5 client returning with Clean Start 0 to a session that holds no subscription gets Session Present 1, and one whose session ended with its connection (Session Expiry 0) gets 0 [MQTT-3.2.2-3] (v5)', async () => {
    expect((await connack({ clientId: 'sp-1', clean: false, properties: { sessionExpiryInterval: 60 } })).sessionPresent).toBe(false)
    expect((await connack({ clientId: 'sp-1', clean: false, properties: { sessionExpiryInterval: 60 } })).sessionPresent).toBe(true)
    // a session that ends with its connection (expiry 0) is not there to return to
    await connack({ clientId: 'sp-2', clean: false, properties: { sessionExpiryInterval: 0 } })
    expect((await connack({ clientId: 'sp-2', clean: false, properties: { sessionExpiryInterval: 60 } })).sessionPresent).toBe(false)
  })
})
