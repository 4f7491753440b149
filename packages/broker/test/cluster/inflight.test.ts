/** In-flight QoS 1/2 messages of a persistent session come again on reconnect, sessions in Redis. */
import { afterAll, afterEach, beforeAll, describe, it } from 'vitest'
import { killAll, startNode, startRedis, type TestNode } from '../helpers/cluster-procs.js'
import { closeRaw } from '../helpers/raw-mqtt.js'
import { eachSessionKeepsItsPacketId, unackedPubrelComesBack, unackedPublishesComeBack } from '../helpers/inflight.js'

let a: TestNode
let b: TestNode

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
