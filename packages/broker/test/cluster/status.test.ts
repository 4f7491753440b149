/**
 * `culex cluster status` after a node is killed: the node shows dead within two heartbeats (its
 * registration lapses only after three, which the will sweeper acts on), and a client that moved
 * to another node is counted once.
 */
import { Redis } from 'ioredis'
import mqtt from 'mqtt'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { CLI, killAll, sleep, spawnProc, startNode, startRedis, waitFor, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { listNodes, clientTotal } from '../../src/cluster/registry.js'
import { nodeKey } from '../../src/cluster/keys.js'

const BEAT_MS = 1500
let redis: TestRedis
let a: TestNode
let b: TestNode
let db: Redis
beforeAll(async () => {
  redis = await startRedis()
  // will delay: the dead node's entry stays (its wills unswept) while the test reads the status
  const beat = ['--heartbeat-interval-ms', String(BEAT_MS), '--will-delay-ms', '30000']
  ;[a, b] = await Promise.all([startNode(redis.url, 'st-a', beat), startNode(redis.url, 'st-b', beat)])
  db = new Redis(redis.url)
})
afterAll(async () => {
  db?.disconnect()
  await killAll()
})

async function statusJson(): Promise<{ clients: number; nodes: Array<{ id: string; state: string; clients: number }> }> {
  const p = spawnProc(process.execPath, [CLI, 'cluster', 'status', '--redis', redis.url, '--json'])
  await p.exited
  return JSON.parse(p.text()) as { clients: number; nodes: Array<{ id: string; state: string; clients: number }> }
}

it('a killed node shows dead within two heartbeats, and its client, now on another node, is counted once', async () => {
  const opts = { clientId: 'st-mover', clean: false, reconnectPeriod: 0 }
  const onA = await mqtt.connectAsync(a.url, opts)
  await waitFor(async () => (await statusJson()).clients === 1, 10_000, 'the client counted')
  expect((await statusJson()).nodes.find((n) => n.id === 'st-a')).toMatchObject({ state: 'live', clients: 1 })

  // kill right after a beat: the registration lapses 3 beats later, "dead" must show after 2
  const beat0 = await db.hget(nodeKey('st-a'), 'last_beat')
  await waitFor(async () => (await db.hget(nodeKey('st-a'), 'last_beat')) !== beat0, 3 * BEAT_MS, 'a heartbeat of st-a')
  await a.kill9()
  const killedAt = Date.now()
  onA.end(true)
  const onB = await mqtt.connectAsync(b.url, opts)

  await sleep(2 * BEAT_MS + 200 - (Date.now() - killedAt))
  const nodes = await listNodes(db)
  expect(nodes.find((n) => n.id === 'st-a')?.state, `${Date.now() - killedAt} ms after the kill`).toBe('dead')
  expect(Date.now() - killedAt, 'still before the registration lapses').toBeLessThan(3 * BEAT_MS)
  expect(await clientTotal(db, nodes.filter((n) => n.live).map((n) => n.id))).toBe(1)

  // what the user sees
  const s = await statusJson()
  expect(s.nodes.find((n) => n.id === 'st-a')?.state).toBe('dead')
  expect(s.clients).toBe(1)
  onB.end(true)
})
