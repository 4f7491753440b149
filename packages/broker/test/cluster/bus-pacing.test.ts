/**
 * Receiver pacing across nodes (issue 15, src/cluster/bus-progress.ts): a publisher on node A is
 * acknowledged at the pace node B hands its messages to B's subscribers, not at the pace Redis
 * takes them. Before it A acknowledged until B had delivery_buffer_bytes (1 MiB) waiting for its
 * subscribers, and only then did B's pressure signal hold A: a standing queue of ~100 ms in the
 * cross-node fan-out bench, on top of what B's subscribers cost.
 *
 * Here B's subscriber takes each message ~2 ms after the one before (it acknowledges late, with
 * an outgoing window of 10 on B, so what waits for it waits in B, not in the kernel); A's
 * publisher keeps 50 QoS 1 messages of 1 KiB in flight. The lead of A's PUBACKs over what the
 * subscriber took stays bounded by B's pace threshold and lead (bus-progress.ts), far from 1 MiB,
 * and every acknowledged message arrives, once and in order [MQTT-4.3.2-2] [MQTT-4.6.0-6].
 *
 * A node of an older release reports no progress: it is not waited for (rolling upgrade).
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { BusDelivery } from '../../src/cluster/bus-delivery.js'
import { killAll, sleep, startNode, startRedis, waitFor, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { closeAllClients, mqttConnect } from '../helpers/cluster-mqtt.js'

let redis: TestRedis
let a: TestNode
let b: TestNode

beforeAll(async () => {
  redis = await startRedis()
  ;[a, b] = await Promise.all([startNode(redis.url, 'pace-a'), startNode(redis.url, 'pace-b', ['--max-outgoing-inflight', '10'])])
})
afterAll(async () => {
  await closeAllClients()
  await killAll()
})

it('a publisher on A is acknowledged at the pace B delivers, not up to a 1 MiB queue on B [MQTT-4.3.2-2] [MQTT-4.6.0-6]', async () => {
  const got: number[] = []
  const sub = await mqttConnect(b.url, {
    clientId: 'pace-sub',
    protocolVersion: 5,
    // one message at a time: the next is read once this one's PUBACK is written
    customHandleAcks: (_topic, payload, _packet, done) => {
      got.push(Number(payload.subarray(0, 8).toString()))
      setTimeout(() => done(0), 2)
    },
  })
  await sub.subscribeAsync('pace/t', { qos: 1 })
  const pub = await mqttConnect(a.url, { clientId: 'pace-pub' })
  // the subscription is known on A (the bus carries every message anyway; this only waits for B)
  await pub.publishAsync('pace/t', `${String(-1).padStart(8, ' ')}`, { qos: 1 })
  await waitFor(() => got.length === 1, 5000, 'the first message on B')
  got.length = 0

  const WINDOW = 50
  const filler = 'x'.repeat(1016)
  let next = 0
  let acked = 0
  let inflight = 0
  let lead = 0
  let running = true
  await new Promise<void>((resolve) => {
    const send = (): void => {
      while (running && inflight < WINDOW) {
        const n = next++
        inflight++
        pub.publish('pace/t', `${String(n).padStart(8, '0')}${filler}`, { qos: 1 }, (err) => {
          inflight--
          if (!err) acked++
          lead = Math.max(lead, acked - got.length)
          if (running) send()
          else if (inflight === 0) resolve()
        })
      }
    }
    send()
    setTimeout(() => (running = false), 2500)
  })
  await waitFor(() => got.length >= acked, 20_000, 'every acknowledged message on B')
  await sleep(100)
  expect(acked).toBeGreaterThan(200)
  expect(got).toEqual(Array.from({ length: got.length }, (_, i) => i))
  expect(got.length).toBe(next)
  // before receiver pacing: ~1,000 (1 MiB of 1 KiB messages waiting on B) and more
  expect(lead).toBeLessThan(400)
}, 40_000)

it('a live peer of an older release, which reports no progress, does not hold the PUBACKs', async () => {
  // an older node's bus: subscribed to the bus channel (it counts in PUBLISH replies) and beating
  const link = new Redis(redis.url)
  const beats = new Redis(redis.url)
  await link.subscribe('culex:bus', 'culex:bus:presence')
  const old = new BusDelivery({ pub: beats, sub: link, channel: 'culex:bus', origin: 'old-release', sharedOnly: true, onError: () => {} })
  try {
    // A heard it beat: from now on A's batches wait for its link too (bus-delivery.ts)
    await sleep(600)
    const pub = await mqttConnect(a.url, { clientId: 'pace-pub-old' })
    const t0 = Date.now()
    await Promise.all(Array.from({ length: 20 }, (_, i) => pub.publishAsync('pace/old', `${i}`, { qos: 1 })))
    // waiting for a progress report that never comes would take bus-progress.ts WAIT_MS (2 s)
    expect(Date.now() - t0).toBeLessThan(1500)
  } finally {
    old.close()
    link.disconnect()
    beats.disconnect()
  }
}, 20_000)
