/**
 * MQTT 5 sessions and delayed wills of a node killed with kill -9 (no disconnect at all): the
 * surviving node's sweeper adopts them once the dead node's registration lapses, and they expire
 * (or go out) counted from then. Heartbeat 300 ms (lapse after 900 ms), sweep 200 ms.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IClientOptions } from 'mqtt'
import { FAST, killAll, startNode, startRedis, waitFor, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { closeAllClients, collect, connackOf, mqttConnect } from '../helpers/cluster-mqtt.js'

let redis: TestRedis
let a: TestNode
let b: TestNode

beforeAll(async () => {
  redis = await startRedis()
  ;[a, b] = await Promise.all([startNode(redis.url, 'kexp-a', FAST), startNode(redis.url, 'kexp-b', FAST)])
})

afterAll(async () => {
  await closeAllClients()
  await killAll()
})

const v5 = (clientId: string, sessionExpiryInterval: number, will?: IClientOptions['will']): IClientOptions => ({
  clientId,
  protocolVersion: 5,
  clean: false,
  properties: { sessionExpiryInterval },
  ...(will ? { will } : {}),
})
const expired = (n: TestNode): string[] => n.logs().filter((l) => l.msg === 'session expired').map((l) => String(l.client))

describe('cluster: MQTT 5 sessions of a node killed with kill -9', () => {
  it('[MQTT-3.1.2-23] the session still expires after its interval, counted from the lapse; [MQTT-3.1.3-9] its delayed will goes out once, after its delay', async () => {
    const watcher = await mqttConnect(b.url, { clientId: 'kexp-watcher', protocolVersion: 5 })
    await watcher.subscribeAsync('kexp/will/#', { qos: 1 })
    const wills = collect(watcher)
    const gone = await mqttConnect(a.url, v5('kexp-1', 2, { topic: 'kexp/will/1', payload: Buffer.from('gone'), qos: 1, retain: false, properties: { willDelayInterval: 1 } }))
    await gone.subscribeAsync('kexp/1', { qos: 1 })

    const killed = Date.now()
    await a.kill9()
    const pub = await mqttConnect(b.url, { protocolVersion: 5 })
    await pub.publishAsync('kexp/1', 'queued', { qos: 1 })

    await waitFor(() => wills.length > 0, 10_000, 'the delayed will of kexp-1')
    // lapse (about 900 ms after the last beat) + the will delay (1 s)
    expect(Date.now() - killed).toBeGreaterThanOrEqual(1500)
    await waitFor(() => expired(b).includes('kexp-1'), 10_000, 'kexp-1 expired')
    // lapse + the session expiry (2 s)
    expect(Date.now() - killed).toBeGreaterThanOrEqual(2500)
    expect(wills.map((g) => g.payload)).toEqual(['gone'])

    const back1 = await mqttConnect(b.url, v5('kexp-1', 2))
    expect(connackOf(back1).sessionPresent).toBe(false)
    // nothing was queued for it any more: only what it subscribes to now arrives
    await back1.subscribeAsync('kexp/1', { qos: 1 })
    await pub.publishAsync('kexp/1', 'live', { qos: 1 })
    await waitFor(() => collect(back1).length > 0, 5000, 'the live message')
    expect(collect(back1).map((g) => g.payload)).toEqual(['live'])
  })

  it('[MQTT-3.1.2-23] a client of the killed node that reconnects on another node before its deadline keeps its session and every queued message', async () => {
    const c = await startNode(redis.url, 'kexp-c', FAST)
    const sub = await mqttConnect(c.url, v5('kexp-3', 2))
    await sub.subscribeAsync('kexp/3', { qos: 1 })
    await c.kill9()
    const pub = await mqttConnect(b.url, { protocolVersion: 5 })
    for (let i = 0; i < 10; i++) await pub.publishAsync('kexp/3', `m${i}`, { qos: 1 })
    const back = await mqttConnect(b.url, v5('kexp-3', 2))
    expect(connackOf(back).sessionPresent).toBe(true)
    await waitFor(() => collect(back).length >= 10, 5000, 'the queued messages')
    // the dead node is swept (its sessions adopted) after its lapse: kexp-3 is owned by its new connection
    await waitFor(() => b.logs().some((l) => l.msg === 'dead node swept' && l.dead_node === 'kexp-c'), 10_000, 'kexp-c swept')
    // a sentinel session that leaves now expires after kexp-3's deadline would have (2 s after the lapse)
    const sentinel = await mqttConnect(b.url, v5('kexp-4', 3))
    await sentinel.endAsync()
    await waitFor(() => expired(b).includes('kexp-4'), 10_000, 'kexp-4 expired')
    expect(expired(b)).not.toContain('kexp-3')
    expect(collect(back).map((g) => g.payload)).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`))
  })
})
