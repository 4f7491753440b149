/**
 * A persistent session resumes with a large queue, for the in-memory node and the cluster
 * (test/node/session-resume.test.ts, test/cluster/session-resume.test.ts): every queued message
 * arrives, in order, exactly once, before the live messages, which two publishers keep sending
 * around the reconnect (one in order on the same topic, one a burst with many in flight).
 */
import { expect } from 'vitest'
import type { MqttClient } from 'mqtt'
import { waitFor } from './wait.js'
import { collect, mqttConnect } from './cluster-mqtt.js'

/** live messages published at least, the first of them before the reconnect */
const LIVE_MIN = 200

/** publish QoS 1 messages, at most `window` unacknowledged at a time; resolves when all are PUBACKed */
async function publishAll(pub: MqttClient, topic: string, payloads: string[], window = 200): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < payloads.length) {
  const p = payloads[next++]!
  await pub.publishAsync(topic, p, { qos: 1 })
    }
  }
  await Promise.all(Array.from({ length: window }, worker))
}

export interface ResumeUrls {
  /** where the session subscribes */
  first: string
  /** where it comes back */
  again: string
  /** where the publishers are */
  pub: string
}

/** returns the replay's duration (reconnect to last queued message) in ms */
export async function resumeWithLargeQueue(urls: ResumeUrls, n: number, clientId: string, timeoutMs: number): Promise<number> {
  const topic = clientId
  const first = await mqttConnect(urls.first, { clientId, clean: false })
  await first.subscribeAsync(`${topic}/#`, { qos: 1 })
  await first.endAsync()

  const pub = await mqttConnect(urls.pub, { clientId: `${clientId}-pub` })
  const queued = Array.from({ length: n }, (_, i) => `q${i}`)
  await publishAll(pub, `${topic}/t`, queued)

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
      await pub.publishAsync(`${topic}/t`, p, { qos: 1 })
      firstLiveAcked ||= Date.now()
    }
  })()
  // and a burst from another publisher, many messages in flight, around the reconnect
  const burster = await mqttConnect(urls.pub, { clientId: `${clientId}-burst` })
  const burst: string[] = []
  let stopBurst = false
  const bursting = Promise.all(
    Array.from({ length: 10 }, async () => {
      while (!stopBurst) {
        const p = `b${burst.length}`
        burst.push(p)
        await burster.publishAsync(`${topic}/b`, p, { qos: 1 })
      }
    }),
  )

  const again = await mqttConnect(urls.again, { clientId, clean: false })
  const t0 = Date.now()
  const got = collect(again)
  const onT = (): number => got.reduce((k, g) => (g.topic === `${topic}/t` ? k + 1 : k), 0)
  let closed = ''
  again.on('close', () => (closed ||= ` (the session's connection closed after ${onT()} messages)`))
  await waitFor(() => onT() >= n, timeoutMs, `${n} queued messages`).catch((err: Error) => {
    throw new Error(`${err.message}: got ${onT()}`)
  })
  const replayDone = Date.now()
  const replayMs = replayDone - t0
  stopBurst = true
  await waitFor(() => live.length >= LIVE_MIN, 10_000, `${LIVE_MIN} live messages published`)
  publishing = false
  await Promise.all([publishingLive, bursting])
  // nothing more comes: a marker published now is the next and last message
  await pub.publishAsync(`${topic}/t`, 'marker', { qos: 1 })
  await waitFor(() => got.some((g) => g.payload === 'marker'), 10_000, 'marker').catch((err: Error) => {
    throw new Error(`${err.message}: got ${onT() - n} of ${live.length} live messages${closed}`)
  })

  // live messages were acknowledged to their publisher while the replay was still running
  expect(firstLiveAcked).toBeGreaterThan(0)
  expect(firstLiveAcked).toBeLessThan(replayDone)
  const payloads = got.filter((g) => g.topic === `${topic}/t`).map((g) => g.payload)
  expect(payloads.slice(0, n)).toEqual(queued)
  expect(payloads.slice(n)).toEqual([...live, 'marker'])
  // the burst: every message once
  const bursted = got.filter((g) => g.topic === `${topic}/b`).map((g) => g.payload)
  expect(bursted.length - new Set(bursted).size, 'duplicates in the burst').toBe(0)
  expect(new Set(bursted).size).toBe(burst.length)

  // for comparison, the live rate of the same session on the same broker (no assertion: the
  // test machine's load varies far more than the two rates differ)
  const sample = Array.from({ length: 1000 }, (_, i) => `r${i}`)
  const before = got.length
  const t1 = Date.now()
  await publishAll(pub, `${topic}/r`, sample)
  await waitFor(() => got.length >= before + sample.length, 10_000, 'live sample')
  const liveRate = Math.round((sample.length * 1000) / (Date.now() - t1))
  const replayRate = Math.round((n * 1000) / replayMs)
  console.log(`${clientId}: replay of ${n} queued messages in ${replayMs} ms (${replayRate} msg/s, alongside ${live.length} live and ${burst.length} burst messages); live rate ${liveRate} msg/s`)

  await again.endAsync()
  return replayMs
}
