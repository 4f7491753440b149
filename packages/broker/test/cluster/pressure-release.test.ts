/**
 * A node under pressure lets its peers go once it has caught up (cluster/bus.ts, bus-flow.ts).
 *
 * One QoS 1 message larger than B's `delivery_buffer_bytes` fills B's input gate by itself: B
 * stops reading from Redis, takes its input lag for unknown and asks A to hold its publishers.
 * Nothing more comes from A while its one publisher waits for that PUBACK, so B must find out by
 * itself that it caught up (the lag probe the batch started comes back once B reads again) and
 * let A acknowledge. A guard: it passes today, and fails if the pressure signal ever stays on
 * with no traffic to clear it.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { killAll, startNode, startRedis, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { closeAllClients, collect, mqttConnect } from '../helpers/cluster-mqtt.js'
import { waitFor, within } from '../helpers/wait.js'

let redis: TestRedis
let a: TestNode
let b: TestNode
const small = ['--delivery-buffer-bytes', '65536']

beforeAll(async () => {
  redis = await startRedis()
  ;[a, b] = await Promise.all([startNode(redis.url, 'press-a', small), startNode(redis.url, 'press-b', small)])
})
afterAll(async () => {
  await closeAllClients()
  await killAll()
})

it('[MQTT-4.3.2-1] a message larger than the receiving node\'s delivery buffer is delivered and acknowledged, and the publisher goes on', async () => {
  const sub = await mqttConnect(b.url, { clientId: 'press-sub' })
  const got = collect(sub)
  await sub.subscribeAsync('press/t', { qos: 1 })
  const pub = await mqttConnect(a.url, { clientId: 'press-pub' })
  const big = 'x'.repeat(200_000)
  for (let round = 0; round < 3; round++) {
    // each PUBACK must come (the client waits for it); 3 rounds: a stuck signal shows on any
    await within(pub.publishAsync('press/t', `${round}:${big}`, { qos: 1 }), 8000, `PUBACK of large message ${round}`)
    await within(pub.publishAsync('press/t', `small-${round}`, { qos: 1 }), 8000, `PUBACK of small message ${round}`)
  }
  await waitFor(() => got.length === 6, 10_000, 'all 6 messages on B')
  expect(got.map((m) => m.payload.slice(0, 8))).toEqual(['0:xxxxxx', 'small-0', '1:xxxxxx', 'small-1', '2:xxxxxx', 'small-2'])
}, 30_000)
