/**
 * After the upgrade from msgpack-lite to msgpackr (cluster/msgpack.ts): what the previous release
 * left in Redis, written here with msgpack-lite in its key layout before the node starts, is
 * read by a real node: a persistent session's subscription and queued message (an MQTT 5 one,
 * correlation data included), and the will of a client on a node that died.
 */
import { createRequire } from 'node:module'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import type { IPublishPacket } from 'mqtt'
import { CLIENTS_SET, NODES_KEY, WILLS_LIST, clientSubsKey, willKey } from '../../src/cluster/keys.js'
import { OutgoingStore } from '../../src/cluster/outgoing.js'
import { FAST, killAll, startNode, startRedis, waitFor, type TestNode } from '../helpers/cluster-procs.js'
import { closeAllClients, mqttConnect, packetsSinceConnect } from '../helpers/cluster-mqtt.js'

const lite = createRequire(import.meta.url)('msgpack-lite') as typeof import('msgpack-lite')
const CORRELATION = Buffer.from([0x00, 0xff, 0x01])

let node: TestNode
let redisUrl: string

beforeAll(async () => {
  const redis = await startRedis()
  const db = new Redis(redis.url)
  try {
    // a persistent session of the previous release: its subscription and one queued message
    await db.sadd(CLIENTS_SET, 'old-session')
    await db.hset(clientSubsKey('old-session'), 'up/#', lite.encode({ topic: 'up/#', qos: 1, rh: 0, rap: false, nl: false }))
    const body = {
      cmd: 'publish', brokerId: 'old-node', brokerCounter: 12, topic: 'up/queued', payload: Buffer.from('from before'), qos: 1, retain: false, dup: false, messageId: undefined,
      properties: { contentType: 'text/plain', correlationData: CORRELATION, userProperties: { k: ['v1', 'v2'] } },
    }
    await new OutgoingStore(db).enqueue([{ clientId: 'old-session', qos: 1 }], 'packet:old-node:12', 1, lite.encode(body))
  } finally {
    db.disconnect()
  }
  node = await startNode(redis.url, 'up-a', FAST)
  redisUrl = redis.url
})
afterAll(async () => {
  await closeAllClients()
  await killAll()
})

it('a session, its queued MQTT 5 message and a will written by msgpack-lite (the previous release) are read by the new node', async () => {
  const watcher = await mqttConnect(node.url, { clientId: 'up-watcher', protocolVersion: 5 })
  const wills: IPublishPacket[] = []
  watcher.on('message', (_t, _p, packet) => wills.push(packet))
  await watcher.subscribeAsync('gone/will', { qos: 1 })

  const session = await mqttConnect(node.url, { clientId: 'old-session', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 300 } })
  // from the start: the queue can come in the same read as the CONNACK, before `await` resumes
  const got = packetsSinceConnect(session)
  await waitFor(() => got.length === 1, 5000, 'the queued message')
  expect(got[0]!.payload.toString()).toBe('from before')
  expect(got[0]!.properties!.correlationData!.equals(CORRELATION)).toBe(true)
  expect({ ...got[0]!.properties!.userProperties }).toEqual({ k: ['v1', 'v2'] })
  // its subscription, read from Redis at start: a new message reaches it
  const pub = await mqttConnect(node.url, { clientId: 'up-pub' })
  await pub.publishAsync('up/new', 'new', { qos: 1 })
  await waitFor(() => got.length === 2, 5000, 'a new message on the old subscription')
  expect(got[1]!.topic).toBe('up/new')

  // a node of the previous release dies during the rolling upgrade: the will it wrote (msgpack-lite)
  const db = new Redis(redisUrl)
  try {
    const will = { topic: 'gone/will', payload: Buffer.from('will from before'), qos: 1, retain: false, clientId: 'old-device', brokerId: 'old-node' }
    await db.set(willKey('old-node', 'old-device'), lite.encode(will))
    await db.rpush(WILLS_LIST, willKey('old-node', 'old-device'))
    await db.zadd(NODES_KEY, Date.now() - 60_000, 'old-node') // its registration lapsed a minute ago
  } finally {
    db.disconnect()
  }
  await waitFor(() => wills.length === 1, 10_000, 'the will of the dead node')
  expect(wills[0]!.payload.toString()).toBe('will from before')
})
