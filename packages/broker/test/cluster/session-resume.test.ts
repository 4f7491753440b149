/**
 * A persistent session resumes with a large queue through another node (test/helpers/resume.ts):
 * every queued message arrives, in order, exactly once, before the live messages published
 * during the replay [MQTT-4.6.0-6], and nothing is left in Redis. `npm test` queues 2,500
 * messages (more than the 1,001 stock aedes-persistence-redis replays); `npm run chaos:resume`
 * queues 10,000 (CULEX_RESUME_MESSAGES sets any other number).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { killAll, startNode, startRedis, waitFor, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { closeAllClients, mqttConnect, packetsSinceConnect } from '../helpers/cluster-mqtt.js'
import { resumeWithLargeQueue } from '../helpers/resume.js'

const N = Number(process.env.CULEX_RESUME_MESSAGES ?? 2500)
const TIMEOUT = 30_000 + N * 6

let redis: TestRedis
let a: TestNode
let b: TestNode

beforeAll(async () => {
  redis = await startRedis()
  ;[a, b] = await Promise.all([startNode(redis.url, 'rs-a'), startNode(redis.url, 'rs-b')])
})

afterAll(async () => {
  await closeAllClients()
  await killAll()
})

describe('cluster: a persistent session resumes with a large queue', () => {
  it(
    `[MQTT-4.6.0-6] ${N} queued QoS 1 messages arrive on reconnect through another node, all, in order, once, before the live ones published during the replay`,
    async () => {
      await resumeWithLargeQueue({ first: a.url, again: b.url, pub: a.url }, N, 'resume-big', TIMEOUT)

      // and the session's queue is empty in Redis: nothing left to come back later
      const db = new Redis(redis.url)
      try {
        await waitFor(async () => (await db.llen('outgoing:resume-big')) === 0, 5000, 'empty queue in Redis')
        expect((await db.hkeys('culex:oids:resume-big')).filter((f) => f !== 'g')).toEqual([])
      } finally {
        db.disconnect()
      }
    },
    TIMEOUT * 2,
  )

  it('large messages: 12 queued messages of 256 KiB (pages end at 1 MiB) arrive whole and in order', async () => {
    const first = await mqttConnect(a.url, { clientId: 'resume-large', clean: false })
    await first.subscribeAsync('resume-large/#', { qos: 1 })
    await first.endAsync()
    const pub = await mqttConnect(b.url, { clientId: 'resume-large-pub' })
    const payload = (i: number): Buffer => Buffer.alloc(256 * 1024, i + 1)
    for (let i = 0; i < 12; i++) await pub.publishAsync('resume-large/t', payload(i), { qos: 1 })
    const again = await mqttConnect(a.url, { clientId: 'resume-large', clean: false })
    // from the start: the queue can come in the same read as the CONNACK, before `await` resumes
    const packets = packetsSinceConnect(again)
    await waitFor(() => packets.length >= 12, 10_000, '12 large messages')
    const got = packets.map((p) => p.payload as Buffer)
    expect(got.map((p) => p[0])).toEqual(Array.from({ length: 12 }, (_, i) => i + 1))
    expect(got.every((p, i) => p.equals(payload(i)))).toBe(true)
  })
})
