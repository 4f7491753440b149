/**
 * A publisher on node A that writes QoS 1 flat out, without waiting for its
 * PUBACKs, to subscribers on node B that read slower than it writes. Redis
 * pub/sub has no flow control of its own: B must hold A's publisher (the
 * pressure signal) and stop taking in from Redis while its subscribers are
 * behind (cluster/bus.ts), so its memory stays bounded, and every QoS 1
 * message still arrives [MQTT-4.3.2-1]: held, never dropped.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { killAll, startNode, startRedis, waitFor, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { closeAllClients, mqttConnect } from '../helpers/cluster-mqtt.js'
import { flood, throttle } from '../helpers/flood.js'

let redis: TestRedis
let a: TestNode
let b: TestNode

beforeAll(async () => {
  redis = await startRedis()
  // B does not cut a reader off as a slow consumer (max_queued): on a loaded machine a test reader
  // can stall for the second that takes, and this test is about B holding the flood, not about that cut
  ;[a, b] = await Promise.all([startNode(redis.url, 'flood-a'), startNode(redis.url, 'flood-b', ['--max-queued', '1000000'])])
})
afterAll(async () => {
  await closeAllClients()
  await killAll()
})

async function metric(node: TestNode, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.http}/metrics`)).text()
  return [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].reduce((s, m) => s + Number(m[1]), 0)
}

it('a flat-out QoS 1 flood from A to slow readers on B: B stays bounded in memory and loses none', async () => {
  const N = 10_000
  const SIZE = 1024
  const subs = await Promise.all([0, 1, 2].map((i) => mqttConnect(b.url, { clientId: `flood-reader-${i}` })))
  const seen = subs.map(() => new Set<number>())
  subs.forEach((c, i) => c.on('message', (t, payload) => t === 'flood/t' && seen[i]!.add(Number(payload.subarray(0, 6).toString()))))
  await Promise.all(subs.map((c) => c.subscribeAsync('flood/t', { qos: 1 })))
  // the subscriptions have reached A when a probe published there arrives on B
  const probe = await mqttConnect(a.url, { clientId: 'flood-probe' })
  let probed = 0
  subs[0]!.on('message', (t) => t === 'flood/probe' && probed++)
  await subs[0]!.subscribeAsync('flood/probe', { qos: 0 })
  await waitFor(async () => {
    await probe.publishAsync('flood/probe', 'p', { qos: 0 })
    return probed > 0
  }, 10_000, 'routes from A to B')

  const rss0 = await metric(b, 'process_resident_memory_bytes')
  let peakRss = rss0
  let peakQueued = 0
  const sampler = setInterval(() => {
    metric(b, 'process_resident_memory_bytes').then((v) => (peakRss = Math.max(peakRss, v)), () => {})
    metric(b, 'culex_queued_bytes').then((v) => (peakQueued = Math.max(peakQueued, v)), () => {})
  }, 50)
  // readers that read in bursts: 150 ms pause in every 200 ms
  const stops = subs.map((c) => throttle(c, 50))
  const t0 = Date.now()
  try {
    // 10 MB published for 3 subscribers: 30 MB that B must deliver
    const pub = await flood(a.mqtt, 'flooder', 'flood/t', 1, N, SIZE)
    await waitFor(
      () => {
        // a clean session cut off as a slow consumer has lost what was queued for it
        if (subs.some((c) => !c.connected)) throw new Error('a subscriber was disconnected')
        return seen.every((s) => s.size === N)
      },
      60_000,
      'every message at every subscriber',
    ).catch((err: Error) => {
      throw new Error(`${err.message}: got ${seen.map((s) => s.size).join(', ')} of ${N}`)
    })
    pub.destroy()
    console.log(`flood to B: ${N} x ${SIZE} B to 3 slow readers in ${Date.now() - t0} ms; B peak RSS +${Math.round((peakRss - rss0) / 1048576)} MB, queued ${Math.round(peakQueued / 1024)} KiB`)
  } finally {
    clearInterval(sampler)
    for (const stop of stops) stop()
  }
  // no QoS 1 message dropped or lost [MQTT-4.3.2-1], and B never took in more than a fraction of the flood
  expect(seen.map((s) => s.size)).toEqual([N, N, N])
  expect(await metric(b, 'culex_messages_dropped_total')).toBe(0)
  // what B held for its subscribers stayed near delivery_buffer_bytes (1 MiB), not the 30 MB it was sent
  expect(peakQueued).toBeGreaterThan(0)
  expect(peakQueued).toBeLessThan(4 * 1048576)
  expect(peakRss - rss0).toBeLessThan(150 * 1048576)
}, 120_000)
