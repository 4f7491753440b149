/**
 * MQTT 5 session expiry across a cluster (two nodes, real redis-server, MQTT.js v5): deadlines in
 * Redis, ended by one sweeper, cancelled by a CONNECT on any node. Heartbeat 300 ms, sweep 200 ms.
 * Node B caps the Session Expiry Interval at 30 s (session_expiry_max_s). Statement ids and
 * section numbers are MQTT 5's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import type { IClientOptions } from 'mqtt'
import { FAST, killAll, startNode, startRedis, waitFor, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { closeAllClients, collect, connackOf, mqttConnect } from '../helpers/cluster-mqtt.js'

let redis: TestRedis
let a: TestNode
let b: TestNode
let db: Redis

beforeAll(async () => {
  redis = await startRedis()
  ;[a, b] = await Promise.all([startNode(redis.url, 'exp-a', FAST), startNode(redis.url, 'exp-b', [...FAST, '--session-expiry-max-s', '30'])])
  db = new Redis(redis.url)
})

afterAll(async () => {
  db?.disconnect()
  await closeAllClients()
  await killAll()
})

const v5 = (clientId: string, sessionExpiryInterval: number, clean = false): IClientOptions => ({
  clientId,
  protocolVersion: 5,
  clean,
  properties: { sessionExpiryInterval },
})
/** client ids whose session a node logged as expired */
const expired = (): string[] => [a, b].flatMap((n) => n.logs().filter((l) => l.msg === 'session expired').map((l) => String(l.client)))

describe('cluster: MQTT 5 session expiry', () => {
  it('[MQTT-3.1.2-23] a session expires after its Session Expiry Interval: the client comes back on the other node to Session Present 0, nothing queued', async () => {
    const sub = await mqttConnect(a.url, v5('exp-1', 1))
    await sub.subscribeAsync('exp/1', { qos: 1 })
    await sub.endAsync()
    const gone = Date.now()
    await waitFor(() => expired().includes('exp-1'), 8000, 'exp-1 expired')
    expect(Date.now() - gone).toBeGreaterThanOrEqual(900)
    expect(expired().filter((id) => id === 'exp-1')).toHaveLength(1)
    // its subscription went with it: a message published now is queued for no one
    const pub = await mqttConnect(b.url, { protocolVersion: 5 })
    await pub.publishAsync('exp/1', 'after', { qos: 1 })
    const back = await mqttConnect(b.url, v5('exp-1', 1))
    expect(connackOf(back).sessionPresent).toBe(false)
    await back.subscribeAsync('exp/1', { qos: 1 })
    await pub.publishAsync('exp/1', 'live', { qos: 1 })
    await waitFor(() => collect(back).length > 0, 5000, 'the live message')
    expect(collect(back).map((g) => g.payload)).toEqual(['live'])
  })

  it('[MQTT-3.1.2-23] a client back on another node before the deadline keeps its session: every queued QoS 1 message, once, in order; it does not expire later', async () => {
    const sub = await mqttConnect(a.url, v5('exp-2', 3))
    await sub.subscribeAsync('exp/2', { qos: 1 })
    await sub.endAsync()
    const pub = await mqttConnect(b.url, { protocolVersion: 5 })
    const sent = Array.from({ length: 20 }, (_, i) => `m${i}`)
    for (const m of sent) await pub.publishAsync('exp/2', m, { qos: 1 })
    const back = await mqttConnect(b.url, v5('exp-2', 1))
    expect(connackOf(back).sessionPresent).toBe(true)
    await waitFor(() => collect(back).length >= sent.length, 5000, 'the queued messages')
    // a sentinel session, gone after exp-2 first left, expires after exp-2's first deadline would have
    const sentinel = await mqttConnect(a.url, v5('exp-2b', 3))
    await sentinel.endAsync()
    await waitFor(() => expired().includes('exp-2b'), 10_000, 'exp-2b expired')
    expect(expired()).not.toContain('exp-2')
    expect(collect(back).map((g) => g.payload)).toEqual(sent)
    await back.endAsync()
    await pub.publishAsync('exp/2', 'while away', { qos: 1 })
    const again = await mqttConnect(a.url, v5('exp-2', 1))
    expect(connackOf(again).sessionPresent).toBe(true)
    await waitFor(() => collect(again).length > 0, 5000, 'the message queued while away')
    expect(collect(again).map((g) => g.payload)).toEqual(['while away'])
    expect(expired()).not.toContain('exp-2')
  })

  it('3.14.2.2.2: a DISCONNECT may shorten the interval; 3.1.2.11.2: Session Expiry 0 ends the session at disconnect, also when the DISCONNECT asks for more (a protocol error)', async () => {
    const shortened = await mqttConnect(a.url, v5('exp-3', 3600))
    await shortened.subscribeAsync('exp/3', { qos: 1 })
    await shortened.endAsync(false, { reasonCode: 0, properties: { sessionExpiryInterval: 1 } })
    await waitFor(() => expired().includes('exp-3'), 8000, 'exp-3 expired after the interval its DISCONNECT set')

    const zero = await mqttConnect(a.url, v5('exp-4', 0))
    await zero.subscribeAsync('exp/4', { qos: 1 })
    // from 0 to non-zero is a protocol error: the session still ends with the connection
    await zero.endAsync(false, { reasonCode: 0, properties: { sessionExpiryInterval: 60 } })
    // back on B at once: MQTT.js sends its FIN right behind the DISCONNECT, and its end() resolves
    // once the server closed too; node A closes only after it read the DISCONNECT and stored the
    // end's mark (half-open socket, listeners/tcp.ts keepHalfOpen; seam A19), so B's CONNECT waits
    // for the end (cluster/session-ending.ts). test/cluster/session-fin-race.test.ts forces the race.
    const back = await mqttConnect(b.url, v5('exp-4', 60))
    expect(connackOf(back).sessionPresent).toBe(false)
    expect(await db.zscore('culex:session-expiry', 'exp-4')).toBeNull()
  })

  it('session_expiry_max_s caps the interval and the CONNACK says so; 0xFFFFFFFF never expires where there is no cap; [MQTT-3.1.2-4] Clean Start discards it', async () => {
    const capped = await mqttConnect(b.url, v5('exp-5', 0xffffffff))
    expect(connackOf(capped).properties?.sessionExpiryInterval).toBe(30)
    await capped.endAsync()
    await waitFor(async () => (await db.zscore('culex:session-expiry', 'exp-5')) !== null, 3000, 'exp-5 deadline')
    const [s] = await db.time()
    const left = Number(await db.zscore('culex:session-expiry', 'exp-5')) - Number(s) * 1000
    expect(left).toBeGreaterThan(25_000)
    expect(left).toBeLessThanOrEqual(31_000)

    const forever = await mqttConnect(a.url, v5('exp-6', 0xffffffff))
    expect(connackOf(forever).properties?.sessionExpiryInterval).toBeUndefined()
    await forever.subscribeAsync('exp/6', { qos: 1 })
    await forever.endAsync()
    await waitFor(async () => (await db.hget('culex:session-owner', 'exp-6')) === null, 3000, 'exp-6 released')
    expect(await db.zscore('culex:session-expiry', 'exp-6')).toBeNull()
    const pub = await mqttConnect(a.url, { protocolVersion: 5 })
    await pub.publishAsync('exp/6', 'kept', { qos: 1 })
    const back = await mqttConnect(b.url, v5('exp-6', 10))
    expect(connackOf(back).sessionPresent).toBe(true)
    await waitFor(() => collect(back).length > 0, 5000, 'the queued message')
    await back.endAsync()
    // [MQTT-3.1.2-4] Clean Start discards the session, whatever its expiry: nothing queued comes
    await pub.publishAsync('exp/6', 'discarded', { qos: 1 })
    const fresh = await mqttConnect(a.url, v5('exp-6', 10, true))
    expect(connackOf(fresh).sessionPresent).toBe(false)
    await fresh.subscribeAsync('exp/6', { qos: 1 })
    await pub.publishAsync('exp/6', 'live', { qos: 1 })
    await waitFor(() => collect(fresh).length > 0, 5000, 'the live message')
    expect(collect(fresh).map((g) => g.payload)).toEqual(['live'])
  })
})
