/**
 * [MQTT-4.3.2-2] Redis at `maxmemory` (noeviction) refuses writes: a QoS 1 PUBLISH for an offline
 * persistent session cannot be queued, so it is not acknowledged (the node closes the publisher,
 * which sends it again when it reconnects) and nothing is lost; the close is a warning naming
 * Redis' refusal (ops/redis-refusals.ts) and counted, not a silent disconnect. Once Redis takes
 * writes again, the message sent again reaches the session once. A CONNECT whose session outlives
 * the connection is refused meanwhile with CONNACK 3 / 0x88 [MQTT-3.2.2-2] (the session cannot be
 * looked up, nor stored), a clean one goes on; the session is whole afterwards. One real node,
 * one real Redis.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { killAll, startNode, startRedis, waitFor, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { closeAllClients, collect, connackOf, mqttConnect } from '../helpers/cluster-mqtt.js'
import { metric } from '../helpers/security-node.js'

let redis: TestRedis
let node: TestNode
let admin: Redis

beforeAll(async () => {
  redis = await startRedis()
  node = await startNode(redis.url, 'oom-a')
  admin = new Redis(redis.url)
})

afterAll(async () => {
  admin.disconnect()
  await closeAllClients()
  await killAll()
})

it('a QoS 1 publish Redis cannot store is not acknowledged, the close is logged with the refusal, and the publish sent again later arrives once', async () => {
  const sub = await mqttConnect(node.url, { clientId: 'oom-sub', clean: false })
  await sub.subscribeAsync('oom/#', { qos: 1 })
  await sub.endAsync()

  const pub = await mqttConnect(node.url, { clientId: 'oom-pub', reconnectPeriod: 0 })
  let closed = false
  pub.on('close', () => (closed = true))
  await admin.config('SET', 'maxmemory', '1')
  let acked = false
  pub.publish('oom/x', 'kept', { qos: 1 }, (err) => (acked = !err))
  await waitFor(() => closed, 5000, 'the publisher closed')
  expect(acked).toBe(false)
  await waitFor(() => node.logs().some((l) => l.msg === 'client closed: Redis refused a command for it'), 5000, 'the warning')
  const line = node.logs().find((l) => l.msg === 'client closed: Redis refused a command for it')!
  expect(line).toMatchObject({ level: 40, client: 'oom-pub', err: expect.stringMatching(/^OOM command not allowed/) })
  expect(await metric(node.http, 'culex_client_errors_total{reason="redis"}')).toBeGreaterThanOrEqual(1)
  // the node still serves: it answers /readyz (Redis answers PING) and a new client connects
  expect(await node.readyz()).toBe(200)

  await admin.config('SET', 'maxmemory', '0')
  // the publisher's retry: a new connection, the same message
  const again = await mqttConnect(node.url, { clientId: 'oom-pub' })
  await again.publishAsync('oom/x', 'kept', { qos: 1 })
  let got: ReturnType<typeof collect> = []
  await mqttConnect(node.url, { clientId: 'oom-sub', clean: false }, (c) => (got = collect(c)))
  await waitFor(() => got.length >= 1, 5000, 'the message on the persistent session')
  await again.publishAsync('oom/marker', 'end', { qos: 1 })
  await waitFor(() => got.some((g) => g.topic === 'oom/marker'), 5000, 'the marker')
  expect(got.filter((g) => g.topic === 'oom/x').map((g) => g.payload)).toEqual(['kept'])
}, 30_000)

it('[MQTT-3.2.2-2] while Redis refuses writes a CONNECT that keeps a session gets CONNACK 3 (MQTT 5: 0x88), a clean one is served, and the session is whole afterwards', async () => {
  await admin.config('SET', 'maxmemory', '0')
  const keep = await mqttConnect(node.url, { clientId: 'oom-keep', clean: false })
  await keep.subscribeAsync('keep/#', { qos: 1 })
  await keep.endAsync()
  const v5 = await mqttConnect(node.url, { clientId: 'oom-v5', protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 300 } })
  await v5.subscribeAsync('keep/#', { qos: 1 })
  await v5.endAsync()
  const pub = await mqttConnect(node.url, { clientId: 'oom-pub2' })
  // queued for both offline sessions before Redis fills up
  await pub.publishAsync('keep/before', 'queued', { qos: 1 })
  const errorsBefore = await metric(node.http, 'culex_client_errors_total{reason="redis"}')

  await admin.config('SET', 'maxmemory', '1')
  await expect(mqttConnect(node.url, { clientId: 'oom-keep', clean: false })).rejects.toMatchObject({ code: 3 })
  await expect(mqttConnect(node.url, { clientId: 'oom-v5', protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 300 } })).rejects.toMatchObject({ code: 0x88 })
  expect(await metric(node.http, 'culex_client_errors_total{reason="redis"}')).toBeGreaterThanOrEqual(errorsBefore + 2)
  // clean sessions, 3.1.1 and MQTT 5 (Session Expiry 0), connect and exchange a QoS 1 message
  const cleanSub = await mqttConnect(node.url, { clientId: 'oom-clean', protocolVersion: 5 })
  await cleanSub.subscribeAsync('live/#', { qos: 1 })
  const live = collect(cleanSub)
  const cleanPub = await mqttConnect(node.url, { clientId: 'oom-clean-pub' })
  await cleanPub.publishAsync('live/x', 'now', { qos: 1 })
  await waitFor(() => live.length >= 1, 5000, 'the live message')
  expect(await node.readyz()).toBe(200)
  // each clean CONNECT's session-owner write is refused too: warned of once, not once per connection
  for (let i = 0; i < 10; i++) await (await mqttConnect(node.url, { clientId: `oom-many-${i}` })).endAsync()
  expect(node.logs().filter((l) => l.msg === 'session owner not stored').length).toBe(1)

  await admin.config('SET', 'maxmemory', '0')
  for (const opts of [{ clientId: 'oom-keep', clean: false }, { clientId: 'oom-v5', protocolVersion: 5 as const, clean: false, properties: { sessionExpiryInterval: 300 } }]) {
    let got: ReturnType<typeof collect> = []
    const c = await mqttConnect(node.url, opts, (cl) => (got = collect(cl)))
    expect(connackOf(c).sessionPresent, opts.clientId).toBe(true)
    await pub.publishAsync('keep/after', opts.clientId, { qos: 1 })
    await waitFor(() => got.some((g) => g.topic === 'keep/after' && g.payload === opts.clientId), 5000, `${opts.clientId}: a message on its subscription`)
    expect(got.filter((g) => g.topic === 'keep/before').map((g) => g.payload), opts.clientId).toEqual(['queued'])
  }
}, 30_000)
