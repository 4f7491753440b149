/**
 * Chaos: QoS 1 and QoS 2 messages delivered to a persistent session and never acknowledged
 * (the connection dropped first) are sent again on its reconnect, with their original packet
 * ids [MQTT-4.4.0-1] and DUP set [MQTT-3.3.1-1]: with the sessions in memory (one node) and in
 * Redis (cluster, the publisher on another node). Issue 8, bug 3: with Redis the QoS 1 ones were lost.
 */
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chaosCluster, type ChaosCluster } from './lib/cluster.js'
import { RawClient } from './lib/raw.js'
import { PROFILE } from './lib/profile.js'
import { eventLog, summarize } from './lib/report.js'
import { Stream } from './lib/stream.js'
import { waitFor } from '../helpers/wait.js'
import { killAll } from '../helpers/cluster-procs.js'
import { startTestNode } from '../helpers/node.js'
import type { CulexNode } from '../../src/main.js'

/** messages of each QoS held in flight */
const N = 20

let c: ChaosCluster
let memory: CulexNode
beforeAll(async () => {
  ;[c, memory] = await Promise.all([chaosCluster(), startTestNode()])
})
afterAll(async () => {
  await memory?.close()
  await c?.close()
  await killAll()
})

async function scenario(name: string, subPort: number, pubUrl: string): Promise<void> {
  const run = `inflight${Date.now()}`
  const topic = `chaos/${run}/t`
  const log = eventLog()
  const first = await RawClient.connect(subPort, `${run}-sub`, false)
  first.client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 2 }] })
  await first.client.next((p) => p.cmd === 'suback')
  const pub = await mqtt.connectAsync(pubUrl, { clientId: `${run}-pub`, reconnectPeriod: 0 })
  const streams = { 1: new Stream('qos1'), 2: new Stream('qos2') }
  try {
    for (let i = 0; i < N; i++) {
      for (const qos of [1, 2] as const) {
        const seq = streams[qos].sent()
        await pub.publishAsync(topic, `${qos}:${seq}`, { qos })
        streams[qos].acked(seq)
      }
    }
    // every message reached the subscriber, which acknowledges none of them
    await waitFor(() => first.client.publishes().length >= 2 * N, 10_000, `${2 * N} messages delivered`)
    const held = new Map(first.client.publishes().map((p) => [p.payload.toString(), p.messageId]))
    log.note(`${held.size} messages in flight (no PUBACK / PUBREC sent); connection dropped`)
    await first.client.drop()

    const again = await RawClient.connect(subPort, `${run}-sub`, false)
    expect(again.sessionPresent).toBe(true)
    await waitFor(() => again.client.publishes().length >= 2 * N, 5000, 'the in-flight messages sent again').catch(() => {})
    const resent = again.client.publishes()
    log.note(`reconnected: ${resent.length} messages sent again`)
    const noDup: string[] = []
    const newId: string[] = []
    for (const p of resent) {
      const [qos, seq] = p.payload.toString().split(':').map(Number)
      streams[qos as 1 | 2].received(seq!)
      if (!p.dup) noDup.push(p.payload.toString())
      if (p.messageId !== held.get(p.payload.toString())) newId.push(p.payload.toString())
    }
    log.note(`sent again without DUP: ${noDup.length}; with another packet id: ${newId.length}`)
    const r = summarize(`in-flight redelivery (${name})`, {
      seconds: 0,
      rateTarget: 0,
      held: `${N} QoS 1 + ${N} QoS 2 in flight`,
      streams: [streams[1].counts(), streams[2].counts()],
      outages: [],
      events: log.events,
    })
    expect({ qos1: streams[1].unique, qos2: streams[2].unique }, `${name}: unacknowledged messages sent again on reconnect`).toEqual({ qos1: N, qos2: N })
    expect(r.lost).toBe(0)
    // [MQTT-3.3.1-1] DUP set on a re-delivery; [MQTT-4.4.0-1] with the original packet ids
    expect(noDup, 'sent again without DUP [MQTT-3.3.1-1]').toEqual([])
    expect(newId, 'sent again with another packet id [MQTT-4.4.0-1]').toEqual([])
    await again.client.drop()
  } finally {
    await pub.endAsync(true).catch(() => {})
  }
}

describe('chaos: in-flight messages of a persistent session on reconnect', () => {
  it('in memory: unacknowledged QoS 1 and QoS 2 are sent again with DUP set and their packet ids [MQTT-3.3.1-1] [MQTT-4.4.0-1]', () =>
    scenario('memory', memory.ports.mqtt, `mqtt://127.0.0.1:${memory.ports.mqtt}`), PROFILE.timeoutMs)

  it('with Redis: unacknowledged QoS 1 and QoS 2 are sent again with DUP set and their packet ids [MQTT-3.3.1-1] [MQTT-4.4.0-1]', () => {
    const s = c.up.state()
    return scenario('Redis', s.nodes[0]!.mqtt, c.nodeUrl(s.nodes[1]!.id))
  }, PROFILE.timeoutMs)
})
