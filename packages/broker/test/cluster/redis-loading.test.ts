/**
 * redis-server restarted with a dataset that takes seconds to load (AOF): a node is ready again,
 * and a QoS 1 message goes from one node to the other, soon after Redis has loaded, not up to
 * 10 s later. A link that reached Redis while it was loading asked again only after the load's
 * ETA, which Redis overestimates early in a load and ioredis capped at 10 s
 * (cluster/redis-connect.ts LOADING_RECHECK_MS). The load is slowed with redis-server's own test
 * knob `key-load-delay` and answers clients every KiB loaded, so the links see it loading.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { killAll, startNode, startRedis, waitFor, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { closeAllClients, collect, mqttConnect } from '../helpers/cluster-mqtt.js'

let redis: TestRedis
let a: TestNode
let b: TestNode

beforeAll(async () => {
  redis = await startRedis({ aof: true })
  ;[a, b] = await Promise.all([startNode(redis.url, 'load-a'), startNode(redis.url, 'load-b')])
})

afterAll(async () => {
  await closeAllClients()
  await killAll()
})

it('nodes are ready and deliver across nodes within a few seconds of Redis having loaded its AOF, not 10 s later', async () => {
  const sub = await mqttConnect(b.url, { clientId: 'load-sub', clean: false })
  const got = collect(sub)
  await sub.subscribeAsync('load/#', { qos: 1 })
  const pub = await mqttConnect(a.url, { clientId: 'load-pub', reconnectPeriod: 200 })

  // 20,000 keys beside the cluster's own: ~2-4 s to load at 100 µs a key
  const filler = new Redis(redis.url)
  for (let i = 0; i < 20; i++) {
    const p = filler.pipeline()
    for (let k = 0; k < 1000; k++) p.set(`load:filler:${i}:${k}`, 'x'.repeat(64))
    await p.exec()
  }
  filler.disconnect()

  await redis.kill()
  await waitFor(async () => (await a.readyz()) === 503 && (await b.readyz()) === 503, 5000, 'both nodes 503')
  const restarting = Date.now()
  // resolves once PING answers PONG: the load is over
  await redis.restart(['--key-load-delay', '100', '--loading-process-events-interval-bytes', '1024'])
  const loaded = Date.now()
  await waitFor(async () => (await a.readyz()) === 200 && (await b.readyz()) === 200, 20_000, 'both nodes ready again')
  const ready = Date.now()
  await pub.publishAsync('load/after', 'a', { qos: 1 })
  await waitFor(() => got.some((g) => g.topic === 'load/after'), 20_000, 'the message after the restart on node B')
  const delivered = Date.now()
  console.log(`redis-loading: load ${loaded - restarting} ms, nodes ready ${ready - loaded} ms and message across ${delivered - loaded} ms after it`)
  // the load must have been long enough for the links to see it loading (else the test shows nothing)
  expect(loaded - restarting).toBeGreaterThan(1500)
  // each link asks again every 200 ms; readiness also waits for the subscriptions' re-sync
  expect(ready - loaded).toBeLessThan(3000)
  expect(delivered - loaded).toBeLessThan(4000)
}, 60_000)
