/**
 * A node stopped gracefully (SIGTERM) while publishes it read are still on their way to Redis:
 * those messages reach the persistent subscriber online on another node live, and are not kept
 * in its queue for a later reconnect. Redis holds writes (CLIENT PAUSE WRITE) until A is closing its
 * clients, so the stop lands between the queueing of each message and its emit, every run. Before the fix the
 * emit found the cluster bus closed: nothing arrived live, and every message came at the next
 * resume (in the chaos rolling restart after the publisher had sent it again: a delivered
 * message came again on a later resume, in batches of the publishers' in-flight window).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import mqttPacket from 'mqtt-packet'
import { killAll, startNode, startRedis, waitFor, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { closeRaw, rawClient, rawSubscribe } from '../helpers/raw-mqtt.js'

let redis: TestRedis
let a: TestNode
let b: TestNode

beforeAll(async () => {
  redis = await startRedis()
  ;[a, b] = await Promise.all([startNode(redis.url, 'sp-a'), startNode(redis.url, 'sp-b')])
})

afterAll(async () => {
  await closeRaw()
  await killAll()
})

describe('cluster: publishes a stopping node has read', () => {
  it('[MQTT-4.3.2-2] reach the online persistent subscriber on another node live, and its next resume brings none of them again', async () => {
    const N = 20
    const s = await rawClient(b.mqtt, { clientId: 'sp-sub', clean: false, autoAck: true })
    await rawSubscribe(s.raw, 'sp/t', 1)
    const p = await rawClient(a.mqtt, { clientId: 'sp-pub', clean: true })
    const db = new Redis(redis.url)
    try {
      // Redis holds every write until A is closing: A's publishes wait in their queueing step
      await db.call('CLIENT', 'PAUSE', '8000', 'WRITE')
      // one write, so that A reads them in one batch: a later read would wait for the first batch's
      // publishes, held by the paused Redis, and the PINGREQ would not be answered until the unpause
      const packets = Array.from({ length: N }, (_, i) => mqttPacket.generate({ cmd: 'publish', topic: 'sp/t', payload: `m${i + 1}`, qos: 1, messageId: i + 1, retain: false, dup: false }))
      p.raw.socket.write(Buffer.concat([...packets, mqttPacket.generate({ cmd: 'pingreq' })]))
      // A answers in order: it has read every PUBLISH
      await p.raw.until((ps) => ps.some((x) => x.cmd === 'pingresp'), 5000, 'PINGRESP from A')
      const stopped = a.stop()
      await p.raw.until(() => p.raw.closed, 5000, 'A closed the publisher')
      await waitFor(() => a.logs().some((l) => l.msg === 'closing listeners, disconnecting clients'), 5000, 'A closing')
      await db.call('CLIENT', 'UNPAUSE')
      await s.raw.until((ps) => ps.filter((x) => x.cmd === 'publish').length >= N, 10_000, `${N} messages live on B`)
      expect(s.raw.publishes().map((x) => String(x.payload))).toEqual(Array.from({ length: N }, (_, i) => `m${i + 1}`))
      await stopped
      // every PUBACK read by B (it answers in order), then a clean DISCONNECT and a resume
      s.raw.send({ cmd: 'pingreq' })
      await s.raw.until((ps) => ps.some((x) => x.cmd === 'pingresp'), 5000, 'PINGRESP from B')
      s.raw.send({ cmd: 'disconnect' })
      await s.raw.until(() => s.raw.closed, 5000, 'close after DISCONNECT')
      const again = await rawClient(b.mqtt, { clientId: 'sp-sub', clean: false, autoAck: true })
      const q = await rawClient(b.mqtt, { clientId: 'sp-marker', clean: true })
      q.raw.send({ cmd: 'publish', topic: 'sp/t', payload: 'marker', qos: 1, messageId: 1 })
      await again.raw.until((ps) => ps.some((x) => x.cmd === 'publish' && String(x.payload) === 'marker'), 10_000, 'marker on the resumed session')
      expect(again.raw.publishes().map((x) => String(x.payload))).toEqual(['marker'])
      // the marker acked too: the session's queue is empty
      await waitFor(async () => (await db.llen('outgoing:sp-sub')) === 0, 5000, 'empty queue')
    } finally {
      db.disconnect()
    }
  })
})
