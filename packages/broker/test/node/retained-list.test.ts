/**
 * The admin API's list of retained messages (`GET /api/v1/retained?filter=`, the dashboard's panel,
 * asked every 5 s) on a single node (memory mode): each filter and page lists what the filter
 * matches, by topic in byte order of the UTF-8 topics (the cluster's order), with the right total
 * and payloads, read off the node's retain tree (broker/retain-tree.ts `page`) rather than by
 * reading every retained message; and it stays right as topics are added, deleted and set again.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { connect, startTestNode, stopAll } from '../helpers/security-node.js'
import { filterMatches } from '../../src/shared/names.js'
import type { CulexNode } from '../../src/main.js'

const TOKEN = 'retained-list-memory-token-0123'
let node: CulexNode
let pub: MqttClient
const topics = new Set([
  ...Array.from({ length: 300 }, (_, i) => `rl/${i}/state`),
  'rl/7', 'rl/7/state/battery', 'rl/7x', 'rl/7-x', 'RL/upper', 'rl/ü', 'rl/\u{1F600}', 'rl/\uFF01', '$app/state', '!bang', 'other',
])

beforeAll(async () => {
  node = await startTestNode({ admin_token: TOKEN })
  pub = await connect(`mqtt://127.0.0.1:${node.ports.mqtt}`)
  await Promise.all([...topics].map((t) => pub.publishAsync(t, `v:${t}`, { qos: 1, retain: true })))
}, 30_000)
afterAll(async () => {
  await pub?.endAsync()
  await stopAll()
})

async function api(method: string, path: string): Promise<{ status: number; json: any }> {
  const res = await fetch(`http://127.0.0.1:${node.ports.http}/api/v1${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` } })
  return { status: res.status, json: await res.json() }
}

const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

function expected(filter: string): string[] {
  const levels = filter.split('/')
  return [...topics].filter((t) => filterMatches(levels, t)).sort(byBytes)
}

async function page(filter: string, offset: number, limit: number): Promise<{ total: number; topics: string[]; payloads: string[] }> {
  const { status, json } = await api('GET', `/retained?filter=${encodeURIComponent(filter)}&offset=${offset}&limit=${limit}`)
  expect(status).toBe(200)
  return { total: json.total, topics: json.items.map((i: { topic: string }) => i.topic), payloads: json.items.map((i: { payload: string }) => i.payload) }
}

const CASES: Array<[string, number, number]> = [
  ['#', 0, 200], ['#', 250, 200], ['#', 310, 10], ['#', 400, 5], ['rl/#', 0, 50], ['rl/#', 290, 50],
  ['rl/7/#', 0, 10], ['rl/7/#', 1, 1], ['rl/+/state', 100, 20], ['rl/7/state', 0, 10], ['+', 0, 10], ['$app/#', 0, 5], ['nothing/#', 0, 5], ['+/#', 5, 3],
]

async function expectEveryCase(): Promise<void> {
  for (const [filter, offset, limit] of CASES) {
    const all = expected(filter)
    const got = await page(filter, offset, limit)
    expect({ filter, offset, total: got.total, topics: got.topics }).toEqual({ filter, offset, total: all.length, topics: all.slice(offset, offset + limit) })
    expect(got.payloads).toEqual(got.topics.map((t) => `v:${t}`))
  }
}

it('[MQTT-4.7.1-2] [MQTT-4.7.2-1] every filter and page lists what the filter matches, by topic in byte order, with its total and payloads', async () => {
  await expectEveryCase()
})

it('[MQTT-3.3.1-10] topics deleted (an empty retained payload, the API\'s DELETE) leave the list; set again, they are listed once', async () => {
  for (const t of ['rl/7', 'rl/10/state', 'other']) {
    await pub.publishAsync(t, '', { qos: 1, retain: true })
    topics.delete(t)
  }
  expect((await api('DELETE', `/retained/${encodeURIComponent('rl/7-x')}`)).status).toBe(200)
  topics.delete('rl/7-x')
  await expectEveryCase()
  for (const t of ['rl/7', 'other', 'rl/new/one']) {
    await pub.publishAsync(t, `v:${t}`, { qos: 1, retain: true })
    topics.add(t)
  }
  await expectEveryCase()
})
