/**
 * A settling CONNECT in a cluster (MQTT 5, or Clean Start 0) takes its turn and reads its session
 * in one Redis round trip when nothing is in its way (cluster/session-claim.ts claimTurnAndSettle):
 * one script takes `culex:session-claim:<id>` and, in the same step, looks for an end of the session
 * in progress (`culex:session-ending`) and for the id's session (Session Present [MQTT-3.2.2-2]).
 * Seen with Redis MONITOR on a real redis-server and a real node: before the claim is given back,
 * exactly one command names the claim or the ending marker (it was a SET NX, then a script).
 */
import { Redis } from 'ioredis'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { killAll, startNode, startRedis, waitFor, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { Raw, destroyAll } from '../conformance/raw.js'
import { monitorRedis } from '../helpers/redis-monitor.js'

let redis: TestRedis
let node: TestNode
let monitor: { close(): void } | undefined

beforeAll(async () => {
  redis = await startRedis()
  node = await startNode(redis.url, 'claim-rt')
})

afterAll(async () => {
  monitor?.close()
  destroyAll()
  await killAll()
})

it('[MQTT-3.1.4-3] [MQTT-3.2.2-2] a CONNECT with Clean Start 0 takes its claim and reads its session in one round trip; Session Present 1 for a session that exists', async () => {
  const id = `rt-${Date.now()}`
  const claimKey = `culex:session-claim:${id}`
  const first = await Raw.open(node.mqtt, 5)
  await first.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })
  await first.disconnect({ reasonCode: 0 })
  // the first connection's claim is given back before the watch starts (under load it came after)
  const db = new Redis(redis.url)
  await waitFor(async () => (await db.exists(claimKey)) === 0, 5000, 'the first claim given back')
  db.disconnect()

  const commands: string[][] = []
  monitor = await monitorRedis(redis.port, (args, source) => {
    // the calls a script makes are shown too, from "lua": only what the node sent counts
    if (source.includes('lua')) return
    if (args.some((a) => a === claimKey) || (args.includes('culex:session-ending') && args.includes(id))) commands.push(args)
  })
  const again = await Raw.open(node.mqtt, 5)
  const connack = await again.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })
  expect(connack.sessionPresent).toBe(true)
  // the claim is given back once the connect is done: a script naming it with the token
  await waitFor(() => commands.length >= 2, 5000, 'the claim given back')
  const beforeUnclaim = commands.slice(0, commands.length - 1)
  expect(beforeUnclaim.map((c) => c[0]!.toLowerCase())).toEqual(['eval'])
  expect(beforeUnclaim[0]).toEqual(expect.arrayContaining([claimKey, 'culex:session-ending', id]))
})
