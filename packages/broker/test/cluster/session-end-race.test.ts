/**
 * [MQTT-4.1.0-2] across two nodes (real redis-server, raw MQTT 5): a session that ended (DISCONNECT
 * with Session Expiry Interval 0, or the connection of a session with interval 0 closed) is gone
 * for a client that reconnects at once, on the other node, with Clean Start 0: Session Present 0
 * and none of the old subscriptions. The end is marked in Redis by the step that decides it and a
 * CONNECT waits for it (cluster/session-ending.ts). Many rounds in a tight loop
 * (CULEX_SESSION_END_ROUNDS, default 50; `npm run test:session-end:long` runs 1000).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { FAST, killAll, startNode, startRedis, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { Raw, destroyAll } from '../conformance/raw.js'
import { sessionBack, survived, type Back } from '../helpers/session-back.js'

const ROUNDS = Number(process.env.CULEX_SESSION_END_ROUNDS ?? 50)

let redis: TestRedis
let nodes: TestNode[]
let db: Redis

beforeAll(async () => {
  redis = await startRedis()
  nodes = await Promise.all([startNode(redis.url, 'end-a', FAST), startNode(redis.url, 'end-b', FAST)])
  db = new Redis(redis.url)
})

afterAll(async () => {
  destroyAll()
  db?.disconnect()
  await killAll()
})

const open = async (i: number): Promise<Raw> => Raw.open(nodes[i % 2]!.mqtt, 5)

describe('cluster: a session that ended is gone for a client back at once on the other node [MQTT-4.1.0-2]', () => {
  it(`[MQTT-4.1.0-2] DISCONNECT with Session Expiry Interval 0, then CONNECT with Clean Start 0 on the other node: Session Present 0, no old subscription (${ROUNDS} rounds)`, async () => {
    const seen: Back[] = []
    for (let r = 0; r < ROUNDS; r++) {
      const id = `end-d-${r}`
      const c = await open(r)
      await c.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })
      await c.subscribe(`old/${id}`, 1)
      await c.disconnect({ reasonCode: 0, properties: { sessionExpiryInterval: 0 } })
      seen.push(await sessionBack(nodes[(r + 1) % 2]!.mqtt, id))
    }
    expect(survived(seen)).toEqual([])
  }, Math.max(120_000, ROUNDS * 400))

  it(`[MQTT-4.1.0-2] the connection of a session with Session Expiry Interval 0 closes (the server published its will), then CONNECT with Clean Start 0 on the other node: no old subscription (${ROUNDS} rounds)`, async () => {
    // on each node a client that sees the wills published there
    const watch: Raw[] = []
    for (const i of [0, 1]) {
      const w = await open(i)
      await w.connect({ clientId: `end-watch-${i}` })
      await w.subscribe(`gone/${i}/#`, 0)
      watch.push(w)
    }
    const seen: Back[] = []
    for (let r = 0; r < ROUNDS; r++) {
      const id = `end-n-${r}`
      const c = await open(r)
      const will = `gone/${r % 2}/${id}`
      await c.connect({ clientId: id, clean: true, will: { topic: will, payload: Buffer.from('x'), qos: 0, retain: false } })
      await c.subscribe(`old/${id}`, 1)
      c.destroy()
      // the will is published as the server handles the close: the end is decided by then
      await watch[r % 2]!.until(will, 5000)
      seen.push(await sessionBack(nodes[(r + 1) % 2]!.mqtt, id))
    }
    expect(survived(seen)).toEqual([])
  }, Math.max(120_000, ROUNDS * 400))

  it('[MQTT-4.1.0-2] an end a node left unfinished (it died between deciding and deleting) is finished by the next CONNECT of the client id', async () => {
    const id = 'end-stale'
    const c = await open(0)
    await c.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })
    await c.subscribe(`old/${id}`, 1)
    await c.disconnect({ reasonCode: 0 })
    // what a node that died right after its Lua script decided the end leaves in Redis
    const [sec] = (await db.time()) as unknown as [string]
    await db.hset('culex:session-ending', id, `dead-node 0.1 ${Number(sec) * 1000 - 11_000}`)
    expect(await sessionBack(nodes[1]!.mqtt, id)).toEqual({ id, present: false, got: [] })
    expect(await db.hexists('culex:session-ending', id)).toBe(0)
    expect(nodes[1]!.logs().some((l) => l.msg === 'finishing a session end another node left unfinished' && l.client === id)).toBe(true)
  })
})
