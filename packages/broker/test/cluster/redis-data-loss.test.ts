/**
 * A Redis that comes back without its data (here: restarted without its AOF) under two running
 * nodes: every node writes its connected clients' session state again before it is ready
 * (cluster/redis-data-loss.ts). A persistent session connected through the restart (3.1.1 Clean
 * Session 0, MQTT 5 with a Session Expiry Interval and a Subscription Identifier) that leaves
 * afterwards gets what was published meanwhile, on the other node, with Session Present 1
 * [MQTT-3.2.2-2] [MQTT-4.3.2-2]; a shared subscription's member gets the group's messages as soon
 * as the nodes are ready (before, its group was gone until the next membership tick, up to half a
 * heartbeat, and a QoS 1 message to it meanwhile was acknowledged and dropped); the will of a
 * client connected through it is published once its node dies [MQTT-3.1.2-8]. Without this the
 * sessions were silently gone: Session Present 0 and the acknowledged QoS 1 message lost. Two
 * real nodes (a 2 s heartbeat, as the default order of magnitude), one real redis-server.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { DataEpoch } from '../../src/cluster/redis-data-loss.js'
import { killAll, logLines, startNode, startRedis, waitFor, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { closeAllClients, collect, connackOf, mqttConnect, packetsSinceConnect } from '../helpers/cluster-mqtt.js'
import { metric } from '../helpers/security-node.js'

const HB = ['--heartbeat-interval-ms', '2000', '--will-sweep-interval-ms', '200']
const LOST = 'redis came back without its data'

let redis: TestRedis
let a: TestNode
let b: TestNode

beforeAll(async () => {
  redis = await startRedis({ aof: true })
  ;[a, b] = await Promise.all([startNode(redis.url, 'dl-a', HB), startNode(redis.url, 'dl-b', HB)])
})

afterAll(async () => {
  await closeAllClients()
  await killAll()
})

it('sessions, subscriptions and wills of connected clients are written again into a Redis that lost its data', async () => {
  const v5opts = { clientId: 'dl-v5', protocolVersion: 5 as const, clean: false, properties: { sessionExpiryInterval: 300 } }
  const keep = await mqttConnect(b.url, { clientId: 'dl-keep', clean: false })
  await keep.subscribeAsync('dl/#', { qos: 1 })
  const v5 = await mqttConnect(b.url, v5opts)
  await v5.subscribeAsync('dl/#', { qos: 1, properties: { subscriptionIdentifier: 9 } })
  await mqttConnect(b.url, { clientId: 'dl-will', will: { topic: 'dl-will/gone', payload: Buffer.from('bye'), qos: 1, retain: false } })
  const shareOpts = { clientId: 'dl-share', protocolVersion: 5 as const, clean: false, properties: { sessionExpiryInterval: 300 } }
  const share = await mqttConnect(b.url, shareOpts)
  await share.subscribeAsync('$share/g/dls/#', { qos: 1 })
  const shared = collect(share)
  const watch = await mqttConnect(a.url, { clientId: 'dl-watch' })
  await watch.subscribeAsync('dl-will/#', { qos: 1 })
  const wills = collect(watch)

  // the AOF switched off for the restart: Redis starts empty
  await redis.kill()
  await redis.restart(['--appendonly', 'no'])
  await waitFor(async () => (await a.readyz()) === 200 && (await b.readyz()) === 200, 20_000, 'both nodes ready again')
  const restored = logLines(b.proc.text()).find((l) => String(l.msg).startsWith(LOST))
  expect(restored, 'the warning on B').toMatchObject({ level: 40, restored_sessions: 3, restored_subscriptions: 3, restored_wills: 1 })
  // and the metric to alert on, on both nodes
  for (const n of [a, b]) expect(await metric(n.http, 'culex_redis_data_lost_total'), n.id).toBe(1)

  // the shared subscription's member is still one, at once
  const pub0 = await mqttConnect(a.url, { clientId: 'dl-pub0' })
  await pub0.publishAsync('dls/1', 'to the group', { qos: 1 })
  await waitFor(() => shared.length >= 1, 5000, 'a message to the group, right after the restore')

  // both sessions leave; a message is acknowledged while they are away; they come back on the other node
  await keep.endAsync()
  await v5.endAsync()
  const pub = await mqttConnect(a.url, { clientId: 'dl-pub' })
  await pub.publishAsync('dl/x', 'while away', { qos: 1 })
  for (const opts of [{ clientId: 'dl-keep', clean: false }, v5opts]) {
    let got: ReturnType<typeof collect> = []
    const back = await mqttConnect(a.url, opts, (c) => (got = collect(c)))
    expect(connackOf(back).sessionPresent, opts.clientId).toBe(true)
    await waitFor(() => got.length >= 1, 5000, `${opts.clientId}: the message published while it was away`)
    await pub.publishAsync('dl/marker', opts.clientId, { qos: 1 })
    await waitFor(() => got.some((g) => g.topic === 'dl/marker'), 5000, `${opts.clientId}: the marker`)
    expect(got.filter((g) => g.topic === 'dl/x').map((g) => g.payload), opts.clientId).toEqual(['while away'])
    if (opts === v5opts) expect(packetsSinceConnect(back).find((p) => p.topic === 'dl/x')?.properties?.subscriptionIdentifier).toEqual(9)
  }

  // B dies: the will of the client connected there through the restart is published by the sweeper
  await b.kill9()
  await waitFor(() => wills.length >= 1, 15_000, 'the will of the client on the dead node')
  expect(wills.map((w) => w.payload)).toEqual(['bye'])
}, 60_000)

it('the epoch: a Redis that lost its data is said to have lost it until the restore is done, then not again', async () => {
  // database 1 of the same server: the nodes' database 0 is left alone
  const db = new Redis(`${redis.url}/1`)
  try {
    const epoch = new DataEpoch(db)
    await epoch.start()
    expect(await epoch.lost()).toBe(false)
    epoch.restored()
    await db.flushdb()
    expect(await epoch.lost()).toBe(true)
    // the restore failed (not marked restored): the next attempt restores again
    expect(await epoch.lost()).toBe(true)
    epoch.restored()
    expect(await epoch.lost()).toBe(false)
    // another node restored first (it made the new epoch): lost for this one too
    const other = new DataEpoch(db)
    await other.start()
    await db.flushdb()
    expect(await other.lost()).toBe(true)
    other.restored()
    expect(await epoch.lost()).toBe(true)
  } finally {
    db.disconnect()
  }
})
