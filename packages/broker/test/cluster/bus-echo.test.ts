/**
 * A node no longer reads its own bus batches back from Redis (cluster/bus-channels.ts, issue 15),
 * as an operator sees it: `culex_bus_batches_read_total{from="self"}` stays put on the publishing
 * node while its QoS 1 messages reach a subscriber on the other node, each once and in order.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { killAll, sleep, startNode, startRedis, waitFor, type TestNode } from '../helpers/cluster-procs.js'
import { closeAllClients, collect, mqttConnect } from '../helpers/cluster-mqtt.js'

let a: TestNode
let b: TestNode

beforeAll(async () => {
  const redis = await startRedis()
  ;[a, b] = await Promise.all([startNode(redis.url, 'echo-a'), startNode(redis.url, 'echo-b')])
})
afterAll(async () => {
  await closeAllClients()
  await killAll()
})

async function batchesRead(node: TestNode, from: 'peers' | 'self'): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.http}/metrics`)).text()
  const m = new RegExp(`^culex_bus_batches_read_total\\{from="${from}"\\} (\\S+)$`, 'm').exec(text)
  if (!m) throw new Error(`culex_bus_batches_read_total{from="${from}"} not found`)
  return Number(m[1])
}

it('[MQTT-4.3.2-2] QoS 1 messages published on A reach a subscriber on B once each, and A reads none of its batches back', async () => {
  const sub = await mqttConnect(b.url, { clientId: 'echo-sub' })
  const got = collect(sub)
  await sub.subscribeAsync('echo/#', { qos: 1 })
  const pub = await mqttConnect(a.url, { clientId: 'echo-pub' })
  // past the 1.5 s after which a node has heard every live one and goes on its own channel
  await sleep(2000)
  const selfBefore = await batchesRead(a, 'self')
  const peersBefore = await batchesRead(b, 'peers')
  const sent: string[] = []
  for (let round = 0; round < 20; round++) {
    const batch = Array.from({ length: 25 }, (_, i) => `${round * 25 + i}`)
    sent.push(...batch)
    await Promise.all(batch.map((n) => pub.publishAsync(`echo/${n}`, n, { qos: 1 })))
  }
  await waitFor(() => got.length >= sent.length, 10_000, 'every message on B')
  expect(got.map((g) => g.payload)).toEqual(sent)
  expect(await batchesRead(a, 'self')).toBe(selfBefore)
  expect(await batchesRead(b, 'peers')).toBeGreaterThan(peersBefore)
})
