/**
 * Messages a persistent session acknowledged stay acknowledged: after the node that delivered
 * them dies (kill -9, right after it answered a PINGREQ sent behind the last PUBACK) and is
 * started again, and wherever the session reconnects, none of them comes back, and Redis holds
 * nothing of them (no queue entry kept for a later reconnect, no message body left over).
 * Stock aedes-persistence-redis handles a PUBACK in four round trips and loses the rest when the
 * node dies after the first: measured, 1-2 acknowledged messages back on every run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { killAll, startNode, startRedis, waitFor, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { closeRaw, rawClient, rawSubscribe } from '../helpers/raw-mqtt.js'
import { closeAllClients, mqttConnect } from '../helpers/cluster-mqtt.js'

let redis: TestRedis
let a: TestNode
let b: TestNode

beforeAll(async () => {
  redis = await startRedis()
  ;[a, b] = await Promise.all([startNode(redis.url, 'ar-a'), startNode(redis.url, 'ar-b')])
})

afterAll(async () => {
  await closeRaw()
  await closeAllClients()
  await killAll()
})

/** reconnect `id` to `port`, then a marker is published to it alone: the payloads it got up to the marker */
async function reconnectAndCollect(id: string, port: number, publish: (topic: string) => Promise<unknown>): Promise<string[]> {
  const { raw } = await rawClient(port, { clientId: id, clean: false, autoAck: true })
  await publish(`ar/${id}`)
  await raw.until((ps) => ps.some((p) => p.cmd === 'publish' && String(p.payload) === 'marker'), 10_000, `marker on ${id}`)
  const got = raw.publishes().map((p) => String(p.payload))
  raw.send({ cmd: 'disconnect' })
  await raw.until(() => raw.closed, 5000, 'close after DISCONNECT')
  return got
}

describe('cluster: acknowledged messages of persistent sessions after a node restart', () => {
  it('two sessions ack N messages through node A, A is killed and restarted: reconnecting to A or to B brings none of them back', async () => {
    const N = 300
    const ids = ['ar-x', 'ar-y']
    // x on A gets the messages live; y is offline and gets them from its queue on A
    const x = await rawClient(a.mqtt, { clientId: ids[0]!, clean: false, autoAck: true })
    await rawSubscribe(x.raw, 'ar/t', 1, 1)
    await rawSubscribe(x.raw, `ar/${ids[0]}`, 1, 2)
    const y = await rawClient(a.mqtt, { clientId: ids[1]!, clean: false })
    await rawSubscribe(y.raw, 'ar/t', 1, 1)
    await rawSubscribe(y.raw, `ar/${ids[1]}`, 1, 2)
    await y.raw.drop()

    const pub = await mqttConnect(b.url, { clientId: 'ar-pub', reconnectPeriod: 200 })
    await Promise.all(Array.from({ length: N }, (_, i) => pub.publishAsync('ar/t', `m${i}`, { qos: 1 })))
    await x.raw.until((ps) => ps.filter((p) => p.cmd === 'publish').length >= N, 10_000, `${N} messages on x`)
    const y2 = await rawClient(a.mqtt, { clientId: ids[1]!, clean: false, autoAck: true })
    await y2.raw.until((ps) => ps.filter((p) => p.cmd === 'publish').length >= N, 10_000, `${N} queued messages on y`)
    for (const r of [x.raw, y2.raw]) {
      // every message acknowledged, and the node has read the acknowledgements (it answers in order)
      r.send({ cmd: 'pingreq' })
      await r.until((ps) => ps.some((p) => p.cmd === 'pingresp'), 5000, 'PINGRESP')
    }

    await a.kill9()
    a = await startNode(redis.url, 'ar-a')
    await waitFor(() => x.raw.closed && y2.raw.closed, 5000, 'both sessions disconnected by the restart')

    let round = 0
    const marker = (topic: string): Promise<unknown> => pub.publishAsync(topic, 'marker', { qos: 1 })
    for (const port of [a.mqtt, b.mqtt, a.mqtt]) {
      round++
      for (const id of ids) {
        expect(await reconnectAndCollect(id, port, marker), `round ${round}, ${id}`).toEqual(['marker'])
      }
    }

    // nothing kept in Redis for a later reconnect: empty queues, no packet ids, no message bodies
    const db = new Redis(redis.url)
    try {
      await waitFor(async () => (await db.llen(`outgoing:${ids[0]}`)) + (await db.llen(`outgoing:${ids[1]}`)) === 0, 5000, 'empty queues')
      expect((await db.hkeys(`culex:oids:${ids[0]}`)).filter((f) => f !== 'g')).toEqual([])
      expect((await db.hkeys(`culex:oids:${ids[1]}`)).filter((f) => f !== 'g')).toEqual([])
      expect(await db.keys('packet:*')).toEqual([])
    } finally {
      db.disconnect()
    }
  })

  it('[MQTT-3.1.2-6] a session ended by a clean CONNECT leaves neither its queue nor the message bodies only it held in Redis', async () => {
    const db = new Redis(redis.url)
    try {
      const before = new Set(await db.keys('packet:*'))
      const s = await rawClient(b.mqtt, { clientId: 'ar-ends', clean: false })
      await rawSubscribe(s.raw, 'ar-ends/t', 1)
      await s.raw.drop()
      const pub = await mqttConnect(a.url, { clientId: 'ar-ends-pub' })
      for (let i = 0; i < 5; i++) await pub.publishAsync('ar-ends/t', `e${i}`, { qos: 1 })
      expect(await db.llen('outgoing:ar-ends')).toBe(5)
      const added = (await db.keys('packet:*')).filter((k) => !before.has(k))
      expect(added.length).toBeGreaterThanOrEqual(5)

      await rawClient(b.mqtt, { clientId: 'ar-ends', clean: true })
      expect(await db.exists('outgoing:ar-ends', 'culex:oids:ar-ends')).toBe(0)
      expect(await db.exists(...added)).toBe(0)
    } finally {
      db.disconnect()
    }
  })
})
