/**
 * [MQTT-4.3.2-1] Cross-node flow control under a slow QoS 1 subscriber: a publisher on node B
 * writing small QoS 1 messages flat out to a subscriber on node A that acknowledges slower than
 * they come. What waits on A for room in the subscriber's window stays bounded near one node's
 * delivery_buffer_messages (test/node/overload.test.ts) although the cluster's receiver counts
 * bytes, not messages: A's progress lines wait while its backlog (held deliveries' bytes included,
 * limits/client-backlog.ts) is over delivery_buffer_bytes / 32, so B's PUBACKs wait for A
 * (cluster/bus-progress.ts): ~600 of these 64-byte messages. Without that, the 1 MiB byte budget
 * alone would let ~13,000 wait. None lost.
 */
import { afterAll, expect, it } from 'vitest'
import { killAll, startNode, startRedis, waitFor } from '../helpers/cluster-procs.js'
import { closeAllClients, mqttConnect } from '../helpers/cluster-mqtt.js'
import { flood, throttle } from '../helpers/flood.js'
import { metric } from '../helpers/security-node.js'

afterAll(async () => {
  await closeAllClients()
  await killAll()
})

it('[MQTT-4.3.2-1] small messages from node B to a subscriber on node A that acknowledges slower than they come: what waits on A stays near delivery_buffer_messages, and none is lost', async () => {
  const redis = await startRedis()
  const [a, b] = await Promise.all([startNode(redis.url, 'held-a'), startNode(redis.url, 'held-b')])
  const N = 10_000
  const sub = await mqttConnect(a.url, { clientId: 'held-sub' })
  // the flood's messages by number; a marker (a probe that is still on its way when the next one
  // goes may come during the flood) counts apart
  const PROBE = 999999
  const seen = new Set<number>()
  let probed = false
  sub.on('message', (_t, p) => {
    const n = Number(p.subarray(0, 6).toString())
    if (n === PROBE) probed = true
    else seen.add(n)
  })
  await sub.subscribeAsync('held/small', { qos: 1 })
  // the subscription known on B before the flood (a marker through B)
  const probe = await mqttConnect(b.url, { clientId: 'held-probe' })
  await waitFor(async () => {
    await probe.publishAsync('held/small', String(PROBE), { qos: 1 })
    return probed
  }, 20_000, 'the subscription on A known on B')
  let peakHeld = 0
  const sampler = setInterval(() => {
    metric(a.http, 'culex_held_deliveries').then((v) => (peakHeld = Math.max(peakHeld, v)), () => {})
  }, 10)
  const stop = throttle(sub, 50)
  try {
    const pub = await flood(b.mqtt, 'flood-b', 'held/small', 1, N, 64)
    await waitFor(() => {
      if (!sub.connected) throw new Error('the subscriber was disconnected')
      return seen.size === N
    }, 60_000, 'every message at the reader on A')
    pub.destroy()
  } finally {
    clearInterval(sampler)
    stop()
    console.log(`cross-node QoS 1 small messages: ${seen.size} of ${N} at the reader on A`)
  }
  console.log(`cross-node QoS 1 small messages: peak culex_held_deliveries on A ${peakHeld} (one node holds at delivery_buffer_messages, 1000)`)
  expect(seen.size).toBe(N)
  expect(peakHeld).toBeGreaterThan(100)
  // the progress pacing holds B at ~32 KiB waiting on A; what B's batches already sent bring on top
  expect(peakHeld).toBeLessThan(3000)
}, 90_000)
