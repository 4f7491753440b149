/**
 * Flow control across nodes. Redis pub/sub has none: without it a node that
 * publishes faster than another node's subscribers read makes that node
 * buffer without bound (and, past the slow-consumer limits, lose QoS 1
 * messages for its subscribers). The cluster bus (src/cluster/bus.ts) lets a
 * node under pressure slow the publishers on the other nodes down.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { killAll, startNode, startRedis, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { closeAllClients, collect, mqttConnect } from '../helpers/cluster-mqtt.js'

let redis: TestRedis
let a: TestNode
let b: TestNode

beforeAll(async () => {
  redis = await startRedis()
  ;[a, b] = await Promise.all([startNode(redis.url, 'flow-a'), startNode(redis.url, 'flow-b')])
})
afterAll(async () => {
  await closeAllClients()
  await killAll()
})

async function queued(node: TestNode): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.http}/metrics`)).text()
  return Number(/^culex_queued_deliveries (\d+)/m.exec(text)![1])
}

it('a flood published on A to a slow reader on B arrives complete and in order, and B buffers a bounded amount', async () => {
  const N = 30_000
  const sub = await mqttConnect(b.url, { clientId: 'flow-slow-reader' })
  const got = collect(sub)
  await sub.subscribeAsync('flow/t', { qos: 1 })
  // the reader takes a 150 ms break every 200 ms
  const stream = (sub as unknown as { stream: NodeJS.ReadableStream }).stream
  const breaks = setInterval(() => {
    stream.pause()
    setTimeout(() => stream.resume(), 150)
  }, 200)

  const pub = await mqttConnect(a.url, { clientId: 'flow-publisher' })
  const payload = (i: number): string => `${String(i).padStart(6, '0')}:${'x'.repeat(2000)}`
  let maxQueued = 0
  const sampler = setInterval(() => {
    queued(b).then((n) => (maxQueued = Math.max(maxQueued, n)), () => {})
  }, 50)
  try {
    await Promise.all(Array.from({ length: N }, (_, i) => pub.publishAsync('flow/t', payload(i), { qos: 1 })))
    const deadline = Date.now() + 60_000
    while (got.length < N && Date.now() < deadline && sub.connected) await new Promise((r) => setTimeout(r, 50))
  } finally {
    clearInterval(breaks)
    clearInterval(sampler)
    stream.resume()
  }
  expect(sub.connected).toBe(true)
  expect(got.length).toBe(N)
  const seqs = got.map((m) => Number(m.payload.slice(0, 6)))
  expect(seqs.every((s, i) => s === i)).toBe(true)
  // 30,000 messages of 2 KB went through; B never held more than a fraction of them
  expect(maxQueued).toBeLessThan(N / 3)
}, 120_000)
