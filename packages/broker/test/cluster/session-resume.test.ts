/**
 * A persistent session resumes with a large queue: every queued message arrives, in order,
 * exactly once, before the live messages published during the replay [MQTT-4.6.0-6], at a rate
 * close to live delivery. `npm test` queues 2,500 messages (more than the 1,001 stock
 * aedes-persistence-redis replays); `npm run chaos:resume` queues 10,000
 * (CULEX_RESUME_MESSAGES sets any other number).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import type { MqttClient } from 'mqtt'
import { killAll, startNode, startRedis, waitFor, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { closeAllClients, collect, mqttConnect } from '../helpers/cluster-mqtt.js'

const N = Number(process.env.CULEX_RESUME_MESSAGES ?? 2500)
/** live messages published at least, the first of them before the reconnect */
const LIVE = 200
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

/** publish `count` QoS 1 messages, at most `window` unacknowledged at a time; resolves when all are PUBACKed */
async function publishAll(pub: MqttClient, topic: string, payloads: string[], window = 200): Promise<number> {
  const t0 = Date.now()
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < payloads.length) {
      const p = payloads[next++]!
      await pub.publishAsync(topic, p, { qos: 1 })
    }
  }
  await Promise.all(Array.from({ length: window }, worker))
  return Date.now() - t0
}

describe('cluster: a persistent session resumes with a large queue', () => {
  it(
    `[MQTT-4.6.0-6] ${N} queued QoS 1 messages arrive on reconnect through another node, all, in order, once, before the live ones published during the replay`,
    async () => {
      const first = await mqttConnect(a.url, { clientId: 'resume-big', clean: false })
      await first.subscribeAsync('resume/#', { qos: 1 })
      await first.endAsync()

      const pub = await mqttConnect(a.url, { clientId: 'resume-pub' })
      const queued = Array.from({ length: N }, (_, i) => `q${i}`)
      await publishAll(pub, 'resume/t', queued)

      // the same publisher goes on, one message at a time, from before the reconnect until
      // after the replay: its messages reach the session through the queue, through the
      // cluster bus, or both, and must arrive once each, after the queued ones
      const live: string[] = []
      let publishing = true
      let firstLiveAcked = 0
      const publishingLive = (async () => {
        while (publishing) {
          const p = `l${live.length}`
          live.push(p)
          await pub.publishAsync('resume/t', p, { qos: 1 })
          firstLiveAcked ||= Date.now()
        }
      })()
      // and a burst from another publisher, many messages in flight, around the reconnect
      const burster = await mqttConnect(a.url, { clientId: 'resume-burst' })
      const burst: string[] = []
      let stopBurst = false
      const bursting = Promise.all(
        Array.from({ length: 20 }, async () => {
          while (!stopBurst) {
            const p = `b${burst.length}`
            burst.push(p)
            await burster.publishAsync('resume/b', p, { qos: 1 })
          }
        }),
      )

      // back through B
      const again = await mqttConnect(b.url, { clientId: 'resume-big', clean: false })
      const t0 = Date.now()
      const got = collect(again)
      await waitFor(() => got.length >= N, TIMEOUT, `${N} queued messages`).catch((err: Error) => {
        throw new Error(`${err.message}: got ${got.length}`)
      })
      const replayDone = Date.now()
      const replayMs = replayDone - t0
      stopBurst = true
      await waitFor(() => live.length >= LIVE, 10_000, `${LIVE} live messages published`)
      publishing = false
      await Promise.all([publishingLive, bursting])
      // nothing more comes: a marker published now is the next and last message
      await pub.publishAsync('resume/t', 'marker', { qos: 1 })
      await waitFor(() => got.some((g) => g.payload === 'marker'), 10_000, 'marker').catch((err: Error) => {
        throw new Error(`${err.message}: got ${got.length - N} of ${live.length} live messages`)
      })

      // live messages were acknowledged to their publisher while the replay was still running
      expect(firstLiveAcked).toBeGreaterThan(0)
      expect(firstLiveAcked).toBeLessThan(replayDone)
      const payloads = got.filter((g) => g.topic === 'resume/t').map((g) => g.payload)
      expect(payloads.slice(0, N)).toEqual(queued)
      expect(payloads.slice(N)).toEqual([...live, 'marker'])
      // the burst: every message once
      const bursted = got.filter((g) => g.topic === 'resume/b').map((g) => g.payload)
      expect(bursted.length - new Set(bursted).size, 'duplicates in the burst').toBe(0)
      expect(new Set(bursted).size).toBe(burst.length)
      console.log(`replay of ${N} queued messages: ${replayMs} ms (${Math.round((N * 1000) / replayMs)} msg/s); ${live.length} live, ${burst.length} burst messages`)

      // and the session's queue is empty in Redis: nothing left to come back later
      await again.endAsync()
      const db = new Redis(redis.url)
      try {
        await waitFor(async () => (await db.llen('outgoing:resume-big')) === 0, 5000, 'empty queue in Redis')
        expect(await db.hlen('culex:oids:resume-big')).toBe(0)
      } finally {
        db.disconnect()
      }
    },
    TIMEOUT * 2,
  )
})
