/**
 * MQTT 5 clients on Culex (issue 11 step 2): MQTT.js with protocolVersion 5 and Mosquitto's
 * clients with -V 5, against real nodes. One node (memory mode): connect, subscribe, publish at
 * every QoS, user properties and correlation data unchanged [MQTT-3.3.2-16] [MQTT-3.3.2-17];
 * 3.1.1 and 5 clients on one topic. Two nodes over one redis-server: a plain payload crosses
 * (v5 properties across nodes travel in the cluster bus codec, tested with it).
 */
import { execFile, spawn } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { killAll, startNode, startRedis, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { closeAllClients, collect, mqttConnect } from '../helpers/cluster-mqtt.js'
import { startTestNode, waitFor } from '../helpers/node.js'

const run = promisify(execFile)
const v5 = { protocolVersion: 5 as const }

afterAll(closeAllClients)

describe('one node', () => {
  let node: CulexNode
  let url: string
  beforeAll(async () => {
    node = await startTestNode()
    url = `mqtt://127.0.0.1:${node.ports.mqtt}`
  })
  afterAll(() => node.close())

  it('[MQTT-3.2.2-6] a v5 client connects (CONNACK reason code 0), subscribes and gets its messages at QoS 0, 1 and 2 with their user properties and correlation data [MQTT-3.3.2-16] [MQTT-3.3.2-17]', async () => {
    const sub = await mqttConnect(url, { ...v5, clientId: 'v5-sub' })
    const packets: Array<{ qos: number; payload: string; properties?: Record<string, unknown> }> = []
    sub.on('message', (_t, payload, packet) => packets.push({ qos: packet.qos, payload: payload.toString(), properties: packet.properties }))
    const granted = await sub.subscribeAsync('v5/t', { qos: 2 })
    expect(granted.map((g) => g.qos)).toEqual([2])
    const pub = await mqttConnect(url, { ...v5, clientId: 'v5-pub' })
    for (const qos of [0, 1, 2] as const) {
      await pub.publishAsync('v5/t', `q${qos}`, { qos, properties: { userProperties: { k: `v${qos}` }, correlationData: Buffer.from([qos, 0xff]), contentType: 'text/plain' } })
    }
    await waitFor(() => packets.length === 3, 5000, 'three messages')
    expect(packets.map((p) => [p.qos, p.payload, p.properties?.userProperties, [...(p.properties?.correlationData as Buffer)], p.properties?.contentType])).toEqual([
      [0, 'q0', { k: 'v0' }, [0, 0xff], 'text/plain'],
      [1, 'q1', { k: 'v1' }, [1, 0xff], 'text/plain'],
      [2, 'q2', { k: 'v2' }, [2, 0xff], 'text/plain'],
    ])
  })

  it('3.1.1 and 5 clients exchange messages on one topic, both ways', async () => {
    const c5 = await mqttConnect(url, { ...v5, clientId: 'mix-5' })
    const c4 = await mqttConnect(url, { protocolVersion: 4, clientId: 'mix-4' })
    const got5 = collect(c5)
    const got4 = collect(c4)
    await c5.subscribeAsync('mix/t', { qos: 1 })
    await c4.subscribeAsync('mix/t', { qos: 1 })
    await c5.publishAsync('mix/t', 'from 5', { qos: 1, properties: { userProperties: { a: 'b' } } })
    await c4.publishAsync('mix/t', 'from 4', { qos: 1 })
    await waitFor(() => got5.length === 2 && got4.length === 2, 5000, 'both messages at both clients')
    expect(got5.map((g) => g.payload)).toEqual(['from 5', 'from 4'])
    expect(got4.map((g) => g.payload)).toEqual(['from 5', 'from 4'])
  })

  it('mosquitto_sub -V 5 receives what mosquitto_pub -V 5 sends, with a user property (-D)', async () => {
    const port = String(node.ports.mqtt)
    const sub = spawn('mosquitto_sub', ['-V', '5', '-h', '127.0.0.1', '-p', port, '-i', 'mosq5-sub', '-t', 'mosq5/#', '-q', '1', '-C', '2', '-F', '%t %p %P', '-W', '10'])
    let out = ''
    sub.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
    const exited = new Promise<number | null>((resolve) => sub.on('exit', resolve))
    const clients = (node.broker as unknown as { clients: Record<string, { subscriptions: Record<string, unknown> }> }).clients
    await waitFor(() => clients['mosq5-sub'] !== undefined && 'mosq5/#' in clients['mosq5-sub'].subscriptions, 5000, 'mosquitto_sub subscribed')
    for (let i = 1; i <= 2; i++) await run('mosquitto_pub', ['-V', '5', '-h', '127.0.0.1', '-p', port, '-t', `mosq5/${i}`, '-m', `m${i}`, '-q', '1', '-D', 'publish', 'user-property', 'k', `v${i}`])
    expect(await exited).toBe(0)
    expect(out.trim().split('\n')).toEqual(['mosq5/1 m1 k:v1', 'mosq5/2 m2 k:v2'])
  })
})

describe('two nodes over Redis', () => {
  let redis: TestRedis
  let a: TestNode
  let b: TestNode
  beforeAll(async () => {
    redis = await startRedis()
    ;[a, b] = await Promise.all([startNode(redis.url, 'v5-a'), startNode(redis.url, 'v5-b')])
  })
  afterAll(async () => {
    await closeAllClients()
    await killAll()
  })

  it('a v5 message published on A reaches a v5 subscriber on B and a 3.1.1 subscriber on A, QoS 1 and 2 exactly once', async () => {
    const s5 = await mqttConnect(b.url, { ...v5, clientId: 'x-5' })
    const s4 = await mqttConnect(a.url, { protocolVersion: 4, clientId: 'x-4' })
    const got5 = collect(s5)
    const got4 = collect(s4)
    await s5.subscribeAsync('x/t', { qos: 2 })
    await s4.subscribeAsync('x/t', { qos: 2 })
    const p = await mqttConnect(a.url, { ...v5, clientId: 'x-pub' })
    await p.publishAsync('x/t', 'one', { qos: 1 })
    await p.publishAsync('x/t', 'two', { qos: 2 })
    await waitFor(() => got5.length >= 2 && got4.length >= 2, 10_000, 'both messages on both nodes')
    await p.publishAsync('x/t', 'end', { qos: 1 })
    await waitFor(() => got5.length >= 3 && got4.length >= 3, 10_000, 'the marker')
    expect(got5.map((g) => g.payload)).toEqual(['one', 'two', 'end'])
    expect(got4.map((g) => g.payload)).toEqual(['one', 'two', 'end'])
  })
})
