/**
 * A v5 client whose connection the server closes is told why first: DISCONNECT with a reason code
 * [MQTT-3.14.0-1] (MQTT 5.0 §3.14.2.1): 0x8E session taken over, on the same node and from another
 * node; 0x98 kicked by the admin API; 0x95 a packet over max_packet_size; 0x93 more QoS 2 messages
 * awaiting PUBREL than max_inflight; 0x94 a topic alias over the Topic Alias Maximum (32); 0x97 a subscriber cut
 * over max_queued (limits/delivery.ts); 0x8B the node stops.
 */
import type { IDisconnectPacket, MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { killAll, startNode, startRedis, type TestNode } from '../helpers/cluster-procs.js'
import { closeAllClients, mqttConnect } from '../helpers/cluster-mqtt.js'
import { startTestNode } from '../helpers/node.js'
import { closeRaw, rawClient, type Raw } from '../helpers/raw-mqtt.js'

const TOKEN = 'v5-disconnect-admin-token-0123'
const v5 = { protocolVersion: 5 as const }

/** the reason code of the DISCONNECT `client` gets from the server (undefined: closed without one) */
const disconnected = (client: MqttClient): Promise<number | undefined> =>
  new Promise((resolve) => {
    client.once('disconnect', (p: IDisconnectPacket) => resolve(p.reasonCode))
    client.once('close', () => resolve(undefined))
  })
async function rawDisconnect(raw: Raw): Promise<number | undefined> {
  await raw.until((ps) => ps.some((p) => p.cmd === 'disconnect'), 5000, 'DISCONNECT')
  await raw.until(() => raw.closed, 5000, 'the connection closed')
  return raw.packets.find((p) => p.cmd === 'disconnect')!.reasonCode
}

afterAll(async () => {
  await closeAllClients()
  await closeRaw()
})

describe('one node', () => {
  let node: CulexNode
  let url: string
  beforeAll(async () => {
    node = await startTestNode({ admin_token: TOKEN, max_packet_size: 1024, max_inflight: 2 })
    url = `mqtt://127.0.0.1:${node.ports.mqtt}`
  })
  afterAll(() => node.close())

  it('0x8E session taken over: the same client id connects again [MQTT-3.1.4-2]', async () => {
    const first = await mqttConnect(url, { ...v5, clientId: 'dc-take' })
    const reason = disconnected(first)
    await mqttConnect(url, { ...v5, clientId: 'dc-take' })
    expect(await reason).toBe(0x8e)
  })

  it('0x98 administrative action: DELETE /api/v1/clients/{id}', async () => {
    const c = await mqttConnect(url, { ...v5, clientId: 'dc-kick' })
    const reason = disconnected(c)
    const res = await fetch(`http://127.0.0.1:${node.ports.http}/api/v1/clients/dc-kick`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } })
    expect(res.status).toBe(200)
    expect(await reason).toBe(0x98)
  })

  it('0x95 packet too large: a PUBLISH over max_packet_size', async () => {
    const { raw } = await rawClient(node.ports.mqtt, { clientId: 'dc-big', protocolVersion: 5 })
    raw.send({ cmd: 'publish', topic: 'dc/big', payload: Buffer.alloc(2000), qos: 0 })
    expect(await rawDisconnect(raw)).toBe(0x95)
  })

  it('0x93 receive maximum exceeded: a third QoS 2 message awaiting PUBREL with max_inflight 2', async () => {
    const { raw } = await rawClient(node.ports.mqtt, { clientId: 'dc-window', protocolVersion: 5 })
    for (let id = 1; id <= 3; id++) raw.send({ cmd: 'publish', topic: 'dc/w', payload: 'x', qos: 2, messageId: id })
    expect(await rawDisconnect(raw)).toBe(0x93)
  })

  it('0x94 topic alias invalid: an alias over the Topic Alias Maximum Culex offers (32) [MQTT-3.3.2-9]', async () => {
    const { raw } = await rawClient(node.ports.mqtt, { clientId: 'dc-alias', protocolVersion: 5 })
    raw.send({ cmd: 'publish', topic: 'dc/a', payload: 'x', qos: 0, properties: { topicAlias: 33 } })
    expect(await rawDisconnect(raw)).toBe(0x94)
  })

  it('a 3.1.1 client kicked by the admin is closed without a DISCONNECT', async () => {
    const { raw } = await rawClient(node.ports.mqtt, { clientId: 'dc-kick4' })
    await fetch(`http://127.0.0.1:${node.ports.http}/api/v1/clients/dc-kick4`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } })
    await raw.until(() => raw.closed, 5000, 'closed')
    expect(raw.packets.map((p) => p.cmd)).toEqual(['connack'])
  })
})

describe('slow consumer', () => {
  let node: CulexNode
  beforeAll(async () => {
    node = await startTestNode({ max_outgoing_inflight: 2, max_queued: 2 })
  })
  afterAll(() => node.close())

  it('0x97 quota exceeded: a subscriber that reads but acknowledges nothing, cut once max_queued x 50 wait for it (nothing buffered for its socket)', async () => {
    const { raw } = await rawClient(node.ports.mqtt, { clientId: 'dc-slow', protocolVersion: 5 })
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'dc/slow', qos: 1 }] })
    await raw.until((ps) => ps.some((p) => p.cmd === 'suback'), 5000, 'SUBACK')
    const pub = await mqttConnect(`mqtt://127.0.0.1:${node.ports.mqtt}`, { ...v5, clientId: 'dc-slow-pub' })
    for (let i = 0; i < 110 && !raw.closed; i++) await pub.publishAsync('dc/slow', String(i), { qos: 1 })
    expect(await rawDisconnect(raw)).toBe(0x97)
    expect(raw.publishes().length).toBe(2)
  })
})

it('0x8B server shutting down: the node stops', async () => {
  const node = await startTestNode()
  const c = await mqttConnect(`mqtt://127.0.0.1:${node.ports.mqtt}`, { ...v5, clientId: 'dc-stop' })
  const reason = disconnected(c)
  await node.close({ drain: false })
  expect(await reason).toBe(0x8b)
})

describe('two nodes over Redis', () => {
  let a: TestNode
  let b: TestNode
  beforeAll(async () => {
    const redis = await startRedis()
    ;[a, b] = await Promise.all([startNode(redis.url, 'dc-a'), startNode(redis.url, 'dc-b')])
  })
  afterAll(killAll)

  it('0x8E session taken over when the client id connects on another node', async () => {
    const first = await mqttConnect(a.url, { ...v5, clientId: 'dc-cross', clean: false, properties: { sessionExpiryInterval: 60 } })
    const reason = disconnected(first)
    await mqttConnect(b.url, { ...v5, clientId: 'dc-cross', clean: false, properties: { sessionExpiryInterval: 60 } })
    expect(await reason).toBe(0x8e)
  })
})
