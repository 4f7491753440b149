/**
 * MQTT 5 Will Delay Interval across a cluster (two nodes, real redis-server, MQTT.js v5): the will
 * stays stored in Redis with a due time, one sweeper publishes it, a CONNECT on any node cancels it.
 * Heartbeat 300 ms, sweep 200 ms. Absence is checked against a later will that did arrive.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IClientOptions, MqttClient } from 'mqtt'
import { FAST, killAll, startNode, startRedis, waitFor, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { closeAllClients, collect, mqttConnect, type Got } from '../helpers/cluster-mqtt.js'

let redis: TestRedis
let a: TestNode
let b: TestNode
let watcher: MqttClient
let got: Got[]

beforeAll(async () => {
  redis = await startRedis()
  ;[a, b] = await Promise.all([startNode(redis.url, 'wd-a', FAST), startNode(redis.url, 'wd-b', FAST)])
  watcher = await mqttConnect(b.url, { clientId: 'wd-watcher', protocolVersion: 5 })
  got = collect(watcher)
  await watcher.subscribeAsync('wd/#', { qos: 1 })
})

afterAll(async () => {
  await closeAllClients()
  await killAll()
})

/** a v5 client with a session of `expiryS` and a will on wd/<id> delayed by `delayS` */
const withWill = (clientId: string, delayS: number, expiryS: number): IClientOptions => ({
  clientId,
  protocolVersion: 5,
  clean: false,
  properties: { sessionExpiryInterval: expiryS },
  will: { topic: `wd/${clientId}`, payload: Buffer.from('gone'), qos: 1, retain: false, properties: { willDelayInterval: delayS } },
})
/** the connection is lost: no DISCONNECT */
const drop = (c: MqttClient): void => void c.stream.destroy()
const wills = (id: string): Got[] => got.filter((g) => g.topic === `wd/${id}`)
const publishedBy = (n: TestNode): number => n.logs().filter((l) => l.msg === 'delayed will published').length

describe('cluster: MQTT 5 will delay', () => {
  it('[MQTT-3.1.3-9] a delayed will goes out once, from one node, after its delay; [MQTT-3.1.3-10] not at all if the client returns on the other node in time', async () => {
    const late = await mqttConnect(a.url, withWill('wd-1', 2, 60))
    const back = await mqttConnect(a.url, withWill('wd-2', 2, 60))
    drop(back)
    const lost = Date.now()
    drop(late)
    // wd-2 returns through the other node before its will is due
    await mqttConnect(b.url, withWill('wd-2', 2, 60))
    await waitFor(() => wills('wd-1').length > 0, 8000, 'the will of wd-1')
    expect(Date.now() - lost).toBeGreaterThanOrEqual(1900)
    // the will of wd-2 would have been due before wd-1's
    const sentinel = await mqttConnect(a.url, withWill('wd-3', 1, 60))
    drop(sentinel)
    await waitFor(() => wills('wd-3').length > 0, 8000, 'the will of wd-3')
    expect(wills('wd-1')).toEqual([{ topic: 'wd/wd-1', payload: 'gone', qos: 1, retain: false }])
    expect(wills('wd-2')).toEqual([])
    // one node published each (the log line may trail the message)
    await waitFor(() => publishedBy(a) + publishedBy(b) >= 2, 3000, 'two publish log lines')
    expect(publishedBy(a) + publishedBy(b)).toBe(2)
  })

  it('[MQTT-3.1.3-9] the will goes out when the session ends, if that is before its delay', async () => {
    const c = await mqttConnect(a.url, withWill('wd-4', 3600, 1))
    drop(c)
    const lost = Date.now()
    // long before its own delay of an hour
    await waitFor(() => wills('wd-4').length > 0, 8000, 'the will of wd-4')
    expect(Date.now() - lost).toBeGreaterThanOrEqual(900)
  })

  it('[MQTT-3.14.4-3] DISCONNECT 0x04 publishes the will, a normal DISCONNECT deletes it', async () => {
    const normal = await mqttConnect(a.url, withWill('wd-5', 0, 60))
    await normal.endAsync(false, { reasonCode: 0 })
    const withWillReason = await mqttConnect(a.url, withWill('wd-6', 0, 60))
    await withWillReason.endAsync(false, { reasonCode: 4 })
    await waitFor(() => wills('wd-6').length > 0, 5000, 'the will of wd-6')
    // and one with a delay, sent after wd-5 left: by the time it arrives, a will of wd-5 would have too
    const delayed = await mqttConnect(a.url, withWill('wd-7', 1, 60))
    await delayed.endAsync(false, { reasonCode: 4 })
    await waitFor(() => wills('wd-7').length > 0, 8000, 'the delayed will of wd-7')
    expect(wills('wd-6')).toHaveLength(1)
    expect(wills('wd-5')).toEqual([])
  })
})
