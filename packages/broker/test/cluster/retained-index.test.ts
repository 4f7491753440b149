/**
 * The index of retained topics (cluster/retained-index.ts, seam P16) on a real node and a real
 * redis-server, as a subscriber and an operator watching Redis see it: a wildcard SUBSCRIBE gets
 * every matching retained message once [MQTT-3.3.1-6] without Redis walking the whole retained
 * hash (no HSCAN, `INFO commandstats`); a hash written without the index (as a node of an earlier
 * release does) is still read whole, and the index repaired.
 */
import { Redis } from 'ioredis'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { killAll, startNode, startRedis, waitFor, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { closeAllClients, collect, mqttConnect } from '../helpers/cluster-mqtt.js'

const INDEX = 'culex:retained:index'
let redis: TestRedis
let node: TestNode
let db: Redis

beforeAll(async () => {
  redis = await startRedis()
  node = await startNode(redis.url, 'ri-a')
  db = new Redis(redis.url)
})
afterAll(async () => {
  db.disconnect()
  await closeAllClients()
  await killAll()
})

async function calls(command: string): Promise<number> {
  const stats = await db.info('commandstats')
  return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0)
}

/** the retained messages a new client gets for `filters` (each once it arrived, none after a marker) */
async function retainedFor(filters: string[], expected: number): Promise<string[]> {
  const c = await mqttConnect(node.url)
  const got = collect(c)
  await c.subscribeAsync(filters, { qos: 0 })
  // a retained marker under its own topic, subscribed after: every retained message of `filters` came before it
  await c.subscribeAsync('ri-marker', { qos: 0 })
  await waitFor(() => got.some((m) => m.topic === 'ri-marker'), 5000, 'the marker')
  await waitFor(() => got.filter((m) => m.topic !== 'ri-marker').length >= expected, 5000, `${expected} retained messages`)
  await c.endAsync()
  return got.filter((m) => m.topic !== 'ri-marker').map((m) => m.topic).sort()
}

const TOPICS = ['ri', 'ri/a', 'ri/a/b', 'ri/a/b/c', 'ri/ab', 'ri/x/b', 'other/a', 'ri/ü/b']

it('[MQTT-3.3.1-6] wildcard SUBSCRIBEs get every matching retained message once, read through the index (no HSCAN)', async () => {
  const pub = await mqttConnect(node.url)
  for (const t of [...TOPICS, 'ri-marker']) await pub.publishAsync(t, `v:${t}`, { qos: 1, retain: true })
  expect((await db.zrange(INDEX, 0, -1)).sort()).toEqual([...TOPICS, 'ri-marker'].sort())
  const hscans = await calls('hscan')
  expect(await retainedFor(['ri/a/#'], 3)).toEqual(['ri/a', 'ri/a/b', 'ri/a/b/c'])
  expect(await retainedFor(['ri/+/b'], 3)).toEqual(['ri/a/b', 'ri/x/b', 'ri/ü/b'])
  // a filter without a wildcard and one with: ri/a/b once
  expect(await retainedFor(['ri/a/b', 'ri/+/b'], 3)).toEqual(['ri/a/b', 'ri/x/b', 'ri/ü/b'])
  expect(await retainedFor(['#'], TOPICS.length)).toEqual([...TOPICS].sort())
  expect(await retainedFor(['+'], 1)).toEqual(['ri'])
  expect(await calls('hscan')).toBe(hscans)
  // an empty retained message deletes the topic from the hash and the index [MQTT-3.3.1-10]
  await pub.publishAsync('ri/ab', '', { qos: 1, retain: true })
  expect(await db.zscore(INDEX, 'ri/ab')).toBeNull()
  expect(await db.hexists('retained', 'ri/ab')).toBe(0)
  expect(await retainedFor(['ri/+'], 1)).toEqual(['ri/a'])
})

it('a topic the index lacks (the hash written without it) still reaches a wildcard subscriber, and the index gets it back', async () => {
  await db.zrem(INDEX, 'ri/a/b')
  const hscans = await calls('hscan')
  expect(await retainedFor(['ri/a/+'], 1)).toEqual(['ri/a/b'])
  // the counts were apart: the hash was read as before, and a repair follows
  expect(await calls('hscan')).toBeGreaterThan(hscans)
  await waitFor(async () => (await db.zscore(INDEX, 'ri/a/b')) !== null, 10_000, 'the index repaired')
  const after = await calls('hscan')
  expect(await retainedFor(['ri/a/+'], 1)).toEqual(['ri/a/b'])
  expect(await calls('hscan')).toBe(after)
})

it('a topic deleted from the hash without the index is not delivered, and leaves the index', async () => {
  await db.hdel('retained', 'ri/x/b')
  expect(await retainedFor(['ri/+/b'], 2)).toEqual(['ri/a/b', 'ri/ü/b'])
  await waitFor(async () => (await db.zscore(INDEX, 'ri/x/b')) === null, 10_000, 'the index repaired')
  expect(await db.zcard(INDEX)).toBe(await db.hlen('retained'))
})

it('with 5,000 retained messages a wildcard SUBSCRIBE under one prefix reads its own few through the index', async () => {
  const pub = await mqttConnect(node.url)
  for (let i = 0; i < 5000; i += 500) {
    await Promise.all(Array.from({ length: 500 }, (_, k) => pub.publishAsync(`rs/${i + k}/state`, 'on', { qos: 1, retain: true })))
  }
  await pub.publishAsync('rs/4321/state/battery', '93', { qos: 1, retain: true })
  const hscans = await calls('hscan')
  expect(await retainedFor(['rs/4321/#'], 2)).toEqual(['rs/4321/state', 'rs/4321/state/battery'])
  expect(await calls('hscan')).toBe(hscans)
})
