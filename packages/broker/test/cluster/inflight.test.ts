/** In-flight QoS 1/2 messages of a persistent session come again on reconnect, sessions in Redis. */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { killAll, startNode, startRedis, waitFor, type TestNode } from '../helpers/cluster-procs.js'
import { closeRaw, rawClient, rawSubscribe } from '../helpers/raw-mqtt.js'
import { eachSessionKeepsItsPacketId, unackedPubrelComesBack, unackedPublishesComeBack } from '../helpers/inflight.js'

let a: TestNode
let b: TestNode

/** clients connected to `node` (its /metrics) */
async function connected(node: TestNode): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.http}/metrics`)).text()
  return Number(/^culex_clients_connected(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1] ?? NaN)
}

beforeAll(async () => {
  const redis = await startRedis()
  ;[a, b] = await Promise.all([startNode(redis.url, 'if-a'), startNode(redis.url, 'if-b')])
})
afterEach(closeRaw)
afterAll(killAll)

describe('in-flight redelivery, sessions in Redis', () => {
  it('[MQTT-4.4.0-1] [MQTT-3.3.1-1] unacknowledged QoS 1 and QoS 2 PUBLISHes are resent on reconnect to the same node with DUP=1 and their packet ids, and not after they are acknowledged', async () => {
    await unackedPublishesComeBack({ sub: a.mqtt, pub: a.mqtt }, 'same')
  })

  it('the same with the message published on another node', async () => {
    await unackedPublishesComeBack({ sub: a.mqtt, pub: b.mqtt }, 'cross')
  })

  it('[MQTT-4.4.0-1] an unacknowledged PUBREL is resent on reconnect, the PUBLISH is not', async () => {
    await unackedPubrelComesBack({ sub: a.mqtt, pub: b.mqtt }, 'redis')
  })

  it('[MQTT-4.4.0-1] a message in flight to two sessions comes again to each with its own packet id', async () => {
    await eachSessionKeepsItsPacketId({ sub: a.mqtt, pub: b.mqtt }, 'redis')
  })
})

describe('queued messages, sessions in Redis', () => {
  it('[MQTT-3.8.4-6] [MQTT-3.3.1-9] a QoS 2 retained message queued for a QoS 1 wildcard subscription comes on reconnect at QoS 1 with RETAIN 0', async () => {
    const before = await connected(a)
    const first = await rawClient(a.mqtt, { clientId: 'queued-downgrade', clean: false })
    await rawSubscribe(first.raw, 'queued-dg/#', 1)
    await first.raw.drop()
    // A has seen the connection go: the message is queued, not sent to it on its way out (then it
    // would come again with DUP 1 [MQTT-3.3.1-1], as on a loaded machine)
    await waitFor(async () => (await connected(a)) <= before, 10_000, 'the first connection gone at A')
    const pub = await rawClient(b.mqtt, { clientId: 'queued-dg-pub' })
    pub.raw.send({ cmd: 'publish', topic: 'queued-dg/x', payload: Buffer.from('q2'), qos: 2, retain: true, dup: false, messageId: 1 })
    await pub.raw.until((ps) => ps.some((p) => p.cmd === 'pubrec'), 5000, 'PUBREC')
    pub.raw.send({ cmd: 'pubrel', messageId: 1 })
    await pub.raw.until((ps) => ps.some((p) => p.cmd === 'pubcomp'), 5000, 'PUBCOMP')
    const again = await rawClient(a.mqtt, { clientId: 'queued-downgrade', clean: false })
    await again.raw.until((ps) => ps.some((p) => p.cmd === 'publish'), 5000, 'queued message')
    const got = again.raw.publishes()[0]!
    expect({ topic: got.topic, qos: got.qos, retain: got.retain, dup: got.dup }).toEqual({ topic: 'queued-dg/x', qos: 1, retain: false, dup: false })
  })
})
