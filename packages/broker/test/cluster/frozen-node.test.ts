/**
 * [MQTT-4.3.2-2] A node that is frozen for longer than the cluster bus takes a silent node for
 * dead (SILENT_MS, or RESUBSCRIBE_GRACE_MS after a Redis restart) is not dead: its clients are
 * still connected when it comes back. Every QoS 1 message acknowledged meanwhile on the other
 * node reaches its subscribers, live, once and in order: the sender kept the batches it settled
 * while the node was silent, and the node asks for the gap when it comes back (bus-keep.ts,
 * bus-order.ts). Without that, its clean subscriber lost them all and its persistent one got
 * them only from its Redis queue on a reconnect.
 */
import { afterEach, expect, it } from 'vitest'
import { killAll } from '../helpers/cluster-procs.js'
import { closeAllClients } from '../helpers/cluster-mqtt.js'
import { runRedisGap, type GapReport } from '../helpers/redis-gap.js'

afterEach(async () => {
  await closeAllClients()
  await killAll()
})

const noLoss = (report: GapReport): void => {
  console.log(`frozen node: ${JSON.stringify(report)}`)
  expect(report.acknowledged).toBeGreaterThan(report.published / 2)
  for (const s of Object.values(report.subscribers)) expect(s).toEqual({ lost: 0, duplicated: 0, outOfOrder: 0 })
  expect(report.requeued).toBe(0)
  expect(report.busErrors.filter((e) => /never arrived/.test(e))).toEqual([])
}

it('a node frozen 4 s (SIGSTOP) under load loses none of the other node\'s acknowledged QoS 1 messages [MQTT-4.3.2-2] [MQTT-4.6.0-6]', async () => {
  noLoss(await runRedisGap({ durationMs: 6000, kills: 1, freezeOnly: true, stallMs: 4000, downMs: 0, publishers: 2, rate: 1000 }, (m) => console.log(m)))
}, 40_000)

it('a node frozen across a Redis kill -9 and restart until 6 s after the other node is back loses none of them either [MQTT-4.3.2-2]', async () => {
  noLoss(await runRedisGap({ durationMs: 3000, kills: 1, downMs: 300, stallMs: 6000, publishers: 2, rate: 1000 }, (m) => console.log(m)))
}, 60_000)
