/**
 * [MQTT-4.3.2-2] redis-server frozen (SIGSTOP: a paused VM, a stalled disk) under load, its
 * connections kept: the nodes neither crash nor give anything up; the QoS 1 publishes of the
 * frozen seconds are acknowledged once Redis answers again, and every acknowledged message
 * reaches the other node's subscribers once and in order. The nodes' /readyz turns 503 once Redis
 * has not answered for UNRESPONSIVE_MS (cluster/redis-answers.ts: their links stay up, and it
 * said 200 all along before), and 200 again once it answers.
 */
import { afterAll, expect, it } from 'vitest'
import { killAll } from '../helpers/cluster-procs.js'
import { closeAllClients } from '../helpers/cluster-mqtt.js'
import { runRedisGap } from '../helpers/redis-gap.js'
import { UNRESPONSIVE_MS, WATCH_MS } from '../../src/cluster/redis-answers.js'

afterAll(async () => {
  await closeAllClients()
  await killAll()
})

it('no acknowledged QoS 1 message is lost, duplicated or reordered across a Redis frozen 6 s twice; not ready while it does not answer [MQTT-4.3.2-2] [MQTT-4.6.0-6]', async () => {
  const report = await runRedisGap({ durationMs: 12_000, kills: 2, downMs: 6000, freezeRedis: true, publishers: 2, rate: 1000 }, (m) => console.log(m))
  console.log(`redis-frozen: ${JSON.stringify(report)}`)
  expect(report.acknowledged).toBeGreaterThan(report.published / 2)
  for (const s of Object.values(report.subscribers)) expect(s).toEqual({ lost: 0, duplicated: 0, outOfOrder: 0 })
  expect(report.requeued).toBe(0)
  expect(report.busErrors).toEqual([])
  // 503 from UNRESPONSIVE_MS into each freeze (a PING goes every WATCH_MS), 200 again after it (runRedisGap waits for that)
  expect(report.notReadyWhileFrozenMs).toHaveLength(2)
  for (const ms of report.notReadyWhileFrozenMs!) {
    expect(ms).not.toBeNull()
    expect(ms!).toBeGreaterThanOrEqual(UNRESPONSIVE_MS - 100)
    expect(ms!).toBeLessThan(UNRESPONSIVE_MS + WATCH_MS + 1500)
  }
}, 90_000)
