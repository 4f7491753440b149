/**
 * The admin API's list of retained messages (`GET /api/v1/retained?filter=`, the dashboard's panel,
 * asked every 5 s) on a real node and a real redis-server: what an operator sees for each filter
 * and page is what the filter matches, by topic in byte order, with the right total; it is read
 * through the index of retained topics (cluster/retained-index.ts), never by HKEYS of the whole
 * retained hash (`INFO commandstats`), and is still right while the index is being repaired.
 */
import { Redis } from 'ioredis'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { killAll, startNode, startRedis, waitFor, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { closeAllClients, mqttConnect } from '../helpers/cluster-mqtt.js'
import { filterMatches } from '../../src/shared/names.js'

const TOKEN = 'retained-list-token-0123456789'
const INDEX = 'culex:retained:index'
let redis: TestRedis
let node: TestNode
let db: Redis

const TOPICS = [
  ...Array.from({ length: 300 }, (_, i) => `rl/${i}/state`),
  'rl/7', 'rl/7/state/battery', 'rl/7x', 'RL/upper', 'rl/ü', '$app/state', '!bang', 'other',
]

beforeAll(async () => {
  redis = await startRedis()
  node = await startNode(redis.url, 'rl-a', ['--admin-token', TOKEN])
  db = new Redis(redis.url)
  const pub = await mqttConnect(node.url)
  await Promise.all(TOPICS.map((t) => pub.publishAsync(t, `v:${t}`, { qos: 1, retain: true })))
  await pub.endAsync()
}, 60_000)
afterAll(async () => {
  db.disconnect()
  await closeAllClients()
  await killAll()
})

async function api(method: string, path: string): Promise<{ status: number; json: any }> {
  const res = await fetch(`http://127.0.0.1:${node.http}/api/v1${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` } })
  return { status: res.status, json: await res.json() }
}

async function calls(command: string): Promise<number> {
  const stats = await db.info('commandstats')
  return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0)
}

const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

/** what `filter` matches among `topics`, by topic in byte order */
function expected(filter: string, topics = TOPICS): string[] {
  const levels = filter.split('/')
  return topics.filter((t) => filterMatches(levels, t)).sort(byBytes)
}

async function page(filter: string, offset: number, limit: number): Promise<{ total: number; topics: string[]; payloads: string[] }> {
  const { status, json } = await api('GET', `/retained?filter=${encodeURIComponent(filter)}&offset=${offset}&limit=${limit}`)
  expect(status).toBe(200)
  return { total: json.total, topics: json.items.map((i: { topic: string }) => i.topic), payloads: json.items.map((i: { payload: string }) => i.payload) }
}

const CASES: Array<[string, number, number]> = [
  ['#', 0, 200], ['#', 250, 200], ['#', 307, 10], ['#', 400, 5], ['rl/#', 0, 50], ['rl/#', 290, 50],
  ['rl/7/#', 0, 10], ['rl/7/#', 1, 1], ['rl/+/state', 100, 20], ['rl/7/state', 0, 10], ['+', 0, 10], ['$app/#', 0, 5], ['nothing/#', 0, 5], ['+/#', 5, 3],
]

it('[MQTT-4.7.1-2] [MQTT-4.7.2-1] every filter and page lists what the filter matches, by topic in byte order, with its total; no HKEYS', async () => {
  const hkeys = await calls('hkeys')
  for (const [filter, offset, limit] of CASES) {
    const all = expected(filter)
    const got = await page(filter, offset, limit)
    expect({ filter, offset, total: got.total, topics: got.topics }).toEqual({ filter, offset, total: all.length, topics: all.slice(offset, offset + limit) })
    expect(got.payloads).toEqual(got.topics.map((t) => `v:${t}`))
  }
  expect(await calls('hkeys')).toBe(hkeys)
})

it('while the index lacks a topic (written without it) the list is still whole, read from the hash, and the index is repaired', async () => {
  await db.zrem(INDEX, 'rl/7x')
  const hkeys = await calls('hkeys')
  expect((await page('#', 0, 500)).topics).toEqual(expected('#'))
  expect(await calls('hkeys')).toBeGreaterThan(hkeys)
  await waitFor(async () => (await db.zscore(INDEX, 'rl/7x')) !== null, 15_000, 'the index repaired')
  const after = await calls('hkeys')
  expect((await page('rl/+', 0, 10)).topics).toEqual(expected('rl/+'))
  expect(await calls('hkeys')).toBe(after)
})

it('DELETE by filter removes exactly what the filter matches, and the list shows them gone', async () => {
  const gone = expected('rl/7/#')
  expect(await api('DELETE', `/retained?filter=${encodeURIComponent('rl/7/#')}`)).toEqual({ status: 200, json: { deleted: gone.length } })
  const left = TOPICS.filter((t) => !gone.includes(t))
  await waitFor(async () => (await page('#', 0, 1000)).total === expected('#', left).length, 5000, 'the list without them')
  expect((await page('#', 0, 1000)).topics).toEqual(expected('#', left))
  expect(await db.zcard(INDEX)).toBe(await db.hlen('retained'))
})
