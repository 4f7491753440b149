/**
 * What the cluster bus' delivery guarantee costs when a node goes away (bus-delivery.ts): a
 * PUBACK waits until every live node has the message, so a node that dies without a word holds
 * the cross-node PUBACKs of the others until it is known to be gone (1.5 s of silence), never
 * for good; a node that stops gracefully says goodbye and holds nothing.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { killAll, startNode, startRedis, waitFor, type TestNode } from '../helpers/cluster-procs.js'
import { closeAllClients, collect, mqttConnect } from '../helpers/cluster-mqtt.js'

let a: TestNode
let b: TestNode
let c: TestNode
let d: TestNode

beforeAll(async () => {
  const redis = await startRedis()
  // two at a time: four node processes starting at once on a busy 2-core machine can take > 15 s
  ;[a, b] = await Promise.all([startNode(redis.url, 'bd-a'), startNode(redis.url, 'bd-b')])
  ;[c, d] = await Promise.all([startNode(redis.url, 'bd-c'), startNode(redis.url, 'bd-d')])
})
afterAll(async () => {
  await closeAllClients()
  await killAll()
})

async function pubackMs(pub: Awaited<ReturnType<typeof mqttConnect>>, topic: string): Promise<number> {
  const t0 = Date.now()
  await pub.publishAsync(topic, 'x', { qos: 1 })
  return Date.now() - t0
}

it('[MQTT-4.3.2-2] a node killed (kill -9) holds the PUBACKs of messages published on the others for at most a few seconds; one stopped (SIGTERM) holds none', async () => {
  const sub = await mqttConnect(a.url, { clientId: 'bd-sub' })
  const got = collect(sub)
  await sub.subscribeAsync('bd/#', { qos: 1 })
  const pub = await mqttConnect(b.url, { clientId: 'bd-pub' })
  expect(await pubackMs(pub, 'bd/warm')).toBeLessThan(1000)

  await c.kill9()
  const held = await pubackMs(pub, 'bd/after-kill')
  // until C is known dead (1.5 s silent), not the 10 s safety limit
  expect(held).toBeLessThan(4000)
  await waitFor(() => got.some((g) => g.topic === 'bd/after-kill'), 5000, 'the message on A')
  // B's log comes through a pipe: wait for the line rather than read what has arrived so far
  await waitFor(() => b.logs().some((l) => l.msg === 'cluster bus: held messages until every node had them'), 5000, "B's log line about the held messages")

  await d.stop()
  expect(await pubackMs(pub, 'bd/after-stop')).toBeLessThan(1000)
  await waitFor(() => got.some((g) => g.topic === 'bd/after-stop'), 5000, 'the message on A')
  expect(got.map((g) => g.topic)).toEqual(['bd/warm', 'bd/after-kill', 'bd/after-stop'])
})
