/**
 * Chaos: a persistent (`clean: false`) QoS 1 session resumes with 10,000 messages queued in Redis
 * while a live publisher keeps publishing to the same topic. It must get its whole queue, in
 * order, and the live messages published during the replay after it (issue 8, bug 1: today it
 * gets 1,001).
 */
import mqtt from 'mqtt'
import { describe, expect, it } from 'vitest'
import { useChaosCluster } from './lib/cluster.js'
import { Stream } from './lib/stream.js'
import { PROFILE } from './lib/profile.js'
import { eventLog, lossReport, summarize } from './lib/report.js'
import { waitFor } from '../helpers/wait.js'

/** 10,000 queued messages at no less than 500 msg/s (the live rate of the short profile) */
const REPLAY_WITHIN_MS = 20_000

const cluster = useChaosCluster()

/** publish `n` QoS 1 messages `<prefix><seq>` (at most 500 outstanding), accounted in `s` */
async function publishMany(client: mqtt.MqttClient, topic: string, prefix: string, s: Stream, n: number): Promise<void> {
  let inFlight = 0
  for (let i = 0; i < n; i++) {
    while (inFlight >= 500) await new Promise((r) => setTimeout(r, 5))
    const seq = s.sent()
    inFlight++
    client.publish(topic, `${prefix}${seq}`, { qos: 1 }, (err) => {
      inFlight--
      if (err) s.failed(seq)
      else s.acked(seq)
    })
  }
  await waitFor(() => inFlight === 0, 60_000, `${n} PUBACKs`)
}

describe('chaos: persistent session resuming with a long queue', () => {
  it(
    `gets all ${PROFILE.queued} queued QoS 1 messages in order, and live messages published during the replay after them`,
    async () => {
      const c = cluster()
      const run = `resume${Date.now()}`
      const topic = `chaos/${run}/q`
      const log = eventLog()
      const opts = { clientId: `${run}-sub`, clean: false, reconnectPeriod: 0, connectTimeout: 5000 }
      const first = await mqtt.connectAsync(c.url, opts)
      await first.subscribeAsync(topic, { qos: 1 })
      await first.endAsync()
      log.note('subscriber subscribed (QoS 1, clean: false) and went offline')

      const queued = new Stream('queued', true)
      const live = new Stream('live', true)
      const pub = await mqtt.connectAsync(c.url, { clientId: `${run}-pub`, reconnectPeriod: 0 })
      const livePub = await mqtt.connectAsync(c.url, { clientId: `${run}-live`, reconnectPeriod: 0 })
      const sub = mqtt.connect(c.url, { ...opts, manualConnect: true })
      let liveTimer: NodeJS.Timeout | undefined
      try {
        await publishMany(pub, topic, 'q', queued, PROFILE.queued)
        log.note(`${queued.ackCount} queued messages acknowledged`)

        // arrival order across both streams: 'q' or 'l' per message
        const arrivals: string[] = []
        sub.on('message', (_t, payload) => {
          const p = payload.toString()
          arrivals.push(p[0]!)
          ;(p[0] === 'q' ? queued : live).received(Number(p.slice(1)))
        })
        let connackAt = 0
        let lastQueuedAt = 0
        sub.on('message', () => {
          if (queued.unique === PROFILE.queued && !lastQueuedAt) lastQueuedAt = Date.now()
        })
        sub.once('connect', () => {
          connackAt = Date.now()
          log.note('subscriber resumed its session')
          // live publishes from the CONNACK on, 100 msg/s, until the replay is over
          liveTimer = setInterval(() => {
            if (lastQueuedAt && Date.now() - lastQueuedAt > 500) return clearInterval(liveTimer)
            const seq = live.sent()
            livePub.publish(topic, `l${seq}`, { qos: 1 }, (err) => (err ? live.failed(seq) : live.acked(seq)))
          }, 10)
        })
        sub.connect()

        // the replay must run near the live rate: the whole queue within REPLAY_WITHIN_MS
        let progress = -1
        let lastChange = Date.now()
        const end = Date.now() + REPLAY_WITHIN_MS
        await waitFor(() => {
          if (arrivals.length !== progress) [progress, lastChange] = [arrivals.length, Date.now()]
          const done = queued.unique === PROFILE.queued && lastQueuedAt > 0 && live.outstanding === 0 && live.missing() === 0 && Date.now() - lastQueuedAt > 600
          return done || Date.now() - lastChange > 4000 || Date.now() > end
        }, REPLAY_WITHIN_MS + 5000, 'the replay to end')
        clearInterval(liveTimer)
        // the last live publishes of an unfinished replay: acknowledged and delivered before the count
        await waitFor(() => live.outstanding === 0 && live.missing() === 0, 3000, 'the last live messages').catch(() => {})
        const held = lastQueuedAt
          ? `replay of ${queued.unique} in ${((lastQueuedAt - connackAt) / 1000).toFixed(1)} s (${Math.round((queued.unique * 1000) / Math.max(1, lastQueuedAt - connackAt))} msg/s)`
          : `replay incomplete: ${queued.unique} of ${PROFILE.queued} after ${((Date.now() - connackAt) / 1000).toFixed(1)} s`
        log.note(`${held}; ${live.ackCount} live messages published meanwhile`)

        const r = summarize(`session resume (${PROFILE.queued} queued)`, {
          seconds: ((lastQueuedAt || Date.now()) - connackAt) / 1000,
          rateTarget: 0,
          held,
          streams: [queued.counts(), live.counts()],
          outages: [],
          events: log.events,
        })
        expect(r.lost, lossReport(r)).toBe(0)
        expect(queued.outOfOrder, 'queued messages out of order').toBe(0)
        // no live message before the last queued one
        const lastQ = arrivals.lastIndexOf('q')
        const firstL = arrivals.indexOf('l')
        expect(firstL === -1 || firstL > lastQ, `live message at position ${firstL} before the last queued one at ${lastQ}`).toBe(true)
        expect(live.ackCount, 'live messages were published during the replay').toBeGreaterThan(0)
      } finally {
        clearInterval(liveTimer)
        await Promise.all([sub, pub, livePub].map((x) => x.endAsync(true).catch(() => {})))
      }
    },
    PROFILE.timeoutMs + 30_000,
  )
})
