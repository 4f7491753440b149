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
import { connect as netConnect, type Socket } from 'node:net'
import { once } from 'node:events'
import mqttPacket from 'mqtt-packet'
import type { MqttClient } from 'mqtt'
import { afterAll, expect, it } from 'vitest'
import { killAll, startNode, startRedis, waitFor } from '../helpers/cluster-procs.js'
import { closeAllClients, mqttConnect } from '../helpers/cluster-mqtt.js'

afterAll(async () => {
  await closeAllClients()
  await killAll()
})

async function metric(http: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${http}/metrics`)).text()
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)
  return m ? Number(m[1]) : 0
}

/** a raw connection writing `count` QoS 1 publishes as fast as TCP takes them, never waiting for a PUBACK */
async function flood(port: number, topic: string, count: number): Promise<Socket> {
  const s = netConnect(port, '127.0.0.1')
  await once(s, 'connect')
  s.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'flood-b', keepalive: 0 }))
  s.resume()
  for (let i = 0; i < count; i++) {
    const payload = Buffer.alloc(64, 120)
    payload.write(String(i).padStart(6, '0'))
    if (!s.write(mqttPacket.generate({ cmd: 'publish', topic, payload, qos: 1, messageId: (i % 65535) + 1, retain: false, dup: false }))) await once(s, 'drain')
  }
  return s
}

/** reads `on` ms in every 200 */
function throttle(c: MqttClient, on: number): () => void {
  const stream = (c as unknown as { stream: NodeJS.ReadableStream }).stream
  const t = setInterval(() => {
    stream.pause()
    setTimeout(() => stream.resume(), 200 - on)
  }, 200)
  return () => {
    clearInterval(t)
    stream.resume()
  }
}

it('[MQTT-4.3.2-1] small messages from node B to a subscriber on node A that acknowledges slower than they come: what waits on A stays near delivery_buffer_messages, and none is lost', async () => {
  const redis = await startRedis()
  const [a, b] = await Promise.all([startNode(redis.url, 'held-a'), startNode(redis.url, 'held-b')])
  const N = 10_000
  const sub = await mqttConnect(a.url, { clientId: 'held-sub' })
  const seen = new Set<number>()
  sub.on('message', (_t, p) => seen.add(Number(p.subarray(0, 6).toString())))
  await sub.subscribeAsync('held/small', { qos: 1 })
  // the subscription known on B before the flood (a marker through B)
  const probe = await mqttConnect(b.url, { clientId: 'held-probe' })
  await waitFor(async () => {
    await probe.publishAsync('held/small', '999999', { qos: 1 })
    return seen.has(999999)
  }, 20_000, 'the subscription on A known on B')
  seen.clear()
  let peakHeld = 0
  const sampler = setInterval(() => {
    metric(a.http, 'culex_held_deliveries').then((v) => (peakHeld = Math.max(peakHeld, v)), () => {})
  }, 10)
  const stop = throttle(sub, 50)
  try {
    const pub = await flood(b.mqtt, 'held/small', N)
    await waitFor(() => {
      if (!sub.connected) throw new Error('the subscriber was disconnected')
      return seen.size === N
    }, 60_000, 'every message at the reader on A')
    pub.destroy()
  } finally {
    clearInterval(sampler)
    stop()
  }
  console.log(`cross-node QoS 1 small messages: peak culex_held_deliveries on A ${peakHeld} (one node holds at delivery_buffer_messages, 1000)`)
  expect(seen.size).toBe(N)
  expect(peakHeld).toBeGreaterThan(100)
  // the progress pacing holds B at ~32 KiB waiting on A; what B's batches already sent bring on top
  expect(peakHeld).toBeLessThan(3000)
}, 90_000)
