/**
 * The inbound QoS 2 state of a client id (a PUBLISH received, its PUBREL not yet) is session
 * state: a clean session discards it when it starts and when it ends [MQTT-3.1.2-6]. Otherwise a
 * client that comes back clean and reuses a packet id has its new message taken for a
 * retransmission of the old one and dropped, and ids that never return leave their entry in the
 * store forever. aedes 1.2.0 did this; the 2.0 beta does not (seam/aedes-fixes.ts U3).
 */
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { startRedis, type TestRedis } from '../helpers/cluster-procs.js'
import { startTestNode, waitFor } from '../helpers/node.js'
import { closeRaw, rawClient, rawSubscribe, type Raw } from '../helpers/raw-mqtt.js'

let redis: TestRedis
let db: Redis
beforeAll(async () => {
  redis = await startRedis()
  db = new Redis(redis.port, '127.0.0.1')
})
afterAll(async () => {
  db.disconnect()
  await redis.stop()
})
afterEach(closeRaw)

/** a QoS 2 PUBLISH answered with PUBREC, its PUBREL never sent */
async function publishQos2(raw: Raw, payload: string): Promise<void> {
  const before = raw.packets.filter((p) => p.cmd === 'pubrec').length
  raw.send({ cmd: 'publish', topic: 'ci/t', payload, qos: 2, messageId: 1 })
  await raw.until((ps) => ps.filter((p) => p.cmd === 'pubrec').length > before, 5000, 'PUBREC')
}

describe.each(['memory', 'redis'] as const)('%s mode', (mode) => {
  let node: CulexNode
  beforeAll(async () => {
    node = await startTestNode(mode === 'redis' ? { redis_url: redis.url, node_id: 'ci1', allow_anonymous: true } : {})
  })
  afterAll(() => node.close())

  it.each([false, true])(
    'a client (first connection clean=%s) that comes back with a clean session has its new QoS 2 message with the old packet id delivered [MQTT-3.1.2-6]',
    async (firstClean) => {
      const id = `ci-${mode}-${firstClean}`
      const { raw: sub } = await rawClient(node.ports.mqtt, { clientId: `${id}-sub` })
      await rawSubscribe(sub, 'ci/t', 0)
      const first = await rawClient(node.ports.mqtt, { clientId: id, clean: firstClean })
      await publishQos2(first.raw, `${id} first`)
      await first.raw.drop()
      const { raw: again } = await rawClient(node.ports.mqtt, { clientId: id, clean: true })
      await publishQos2(again, `${id} second`)
      await sub.until((ps) => ps.some((p) => p.cmd === 'publish' && String(p.payload) === `${id} second`), 5000, 'the second message')
      expect(sub.publishes().map((p) => String(p.payload))).toEqual([`${id} first`, `${id} second`])
    },
  )
})

describe('redis mode', () => {
  let node: CulexNode
  beforeAll(async () => {
    node = await startTestNode({ redis_url: redis.url, node_id: 'ci2', allow_anonymous: true })
  })
  afterAll(() => node.close())

  it('a clean client that leaves with a QoS 2 message awaiting PUBREL leaves nothing in the store', async () => {
    const { raw } = await rawClient(node.ports.mqtt, { clientId: 'ci-gone' })
    await publishQos2(raw, 'gone')
    expect(await db.exists('incoming:ci-gone')).toBe(1)
    await raw.drop()
    await waitFor(async () => (await db.exists('incoming:ci-gone')) === 0, 5000, 'incoming:ci-gone deleted')
  })
})
