/**
 * [MQTT-4.3.2-2] redis-server frozen (SIGSTOP: a paused VM, a stalled disk) under load, its
 * connections kept: the nodes neither crash nor give anything up; the QoS 1 publishes of the
 * frozen seconds are acknowledged once Redis answers again, and every acknowledged message
 * reaches the other node's subscribers once and in order.
 */
import { afterAll, expect, it } from 'vitest'
import { killAll } from '../helpers/cluster-procs.js'
import { closeAllClients } from '../helpers/cluster-mqtt.js'
import { runRedisGap } from '../helpers/redis-gap.js'

afterAll(async () => {
  await closeAllClients()
  await killAll()
})

it('no acknowledged QoS 1 message is lost, duplicated or reordered across a Redis frozen 2.5 s twice [MQTT-4.3.2-2] [MQTT-4.6.0-6]', async () => {
  const report = await runRedisGap({ durationMs: 10_000, kills: 2, downMs: 2500, freezeRedis: true, publishers: 2, rate: 1000 }, (m) => console.log(m))
  console.log(`redis-frozen: ${JSON.stringify(report)}`)
  expect(report.acknowledged).toBeGreaterThan(report.published / 2)
  for (const s of Object.values(report.subscribers)) expect(s).toEqual({ lost: 0, duplicated: 0, outOfOrder: 0 })
  expect(report.requeued).toBe(0)
  expect(report.busErrors).toEqual([])
}, 60_000)
