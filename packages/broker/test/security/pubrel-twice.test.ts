/**
 * One client must not end a node: a PUBREL sent twice back to back (a retransmitting client, or a
 * hostile one) made aedes 2.0.0-beta.1 delete the stored QoS 2 message twice, and the second
 * delete's "no such packet" became an unhandled rejection (lib/handlers/pubrel.js chains
 * `.finally` on it), which ends the CLI's process. seam/aedes-fixes.ts U4 settles it, as aedes
 * 1.2.0 did. Memory and Redis stores, MQTT 3.1.1 and 5: PUBCOMP for each PUBREL
 * [MQTT-4.3.3-2], the message delivered once, no unhandled rejection, other clients served.
 */
import mqttPacket from 'mqtt-packet'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { startRedis, type TestRedis } from '../helpers/cluster-procs.js'
import { startTestNode } from '../helpers/node.js'
import { closeRaw, rawClient, rawSubscribe } from '../helpers/raw-mqtt.js'

let redis: TestRedis
const rejections: unknown[] = []
const onRejection = (reason: unknown): void => void rejections.push(reason)
beforeAll(async () => {
  redis = await startRedis()
  process.on('unhandledRejection', onRejection)
})
afterAll(async () => {
  process.off('unhandledRejection', onRejection)
  await redis.stop()
})
afterEach(closeRaw)

describe.each(['memory', 'redis'] as const)('%s store', (mode) => {
  let node: CulexNode
  beforeAll(async () => {
    node = await startTestNode(mode === 'redis' ? { redis_url: redis.url, node_id: `pr2-${mode}`, allow_anonymous: true } : {})
  })
  afterAll(() => node.close())

  it.each([4, 5] as const)('MQTT level %s: a PUBREL sent twice gets a PUBCOMP each [MQTT-4.3.3-2], the message arrives once, and the node stays up', async (protocolVersion) => {
    const topic = `pr2/${mode}/${protocolVersion}`
    const { raw: sub } = await rawClient(node.ports.mqtt, { clientId: `${topic}-sub`.replaceAll('/', '-'), protocolVersion })
    await rawSubscribe(sub, topic, 2)
    const { raw: pub } = await rawClient(node.ports.mqtt, { clientId: `${topic}-pub`.replaceAll('/', '-'), protocolVersion })
    pub.send({ cmd: 'publish', topic, payload: 'once', qos: 2, messageId: 7 })
    await pub.until((ps) => ps.some((p) => p.cmd === 'pubrec'), 5000, 'PUBREC')
    // both in one segment, so Aedes parses them in one batch and handles them side by side
    const pubrel = mqttPacket.generate({ cmd: 'pubrel', messageId: 7 } as mqttPacket.Packet, { protocolVersion })
    pub.socket.write(Buffer.concat([pubrel, pubrel]))
    await pub.until((ps) => ps.filter((p) => p.cmd === 'pubcomp').length === 2, 5000, 'two PUBCOMPs')
    // the same connection and a new one are still served: a marker goes through
    pub.send({ cmd: 'publish', topic, payload: 'marker', qos: 1, messageId: 8 })
    await sub.until((ps) => ps.some((p) => p.cmd === 'publish' && String(p.payload) === 'marker'), 5000, 'the marker')
    expect(sub.publishes().map((p) => String(p.payload))).toEqual(['once', 'marker'])
    expect(rejections).toEqual([])
  })
})
