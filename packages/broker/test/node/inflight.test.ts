/** In-flight QoS 1/2 messages of a persistent session come again on reconnect, one node in memory. */
import { afterEach, describe, it } from 'vitest'
import { useTestNode } from '../helpers/node.js'
import { closeRaw } from '../helpers/raw-mqtt.js'
import { eachSessionKeepsItsPacketId, unackedPubrelComesBack, unackedPublishesComeBack } from '../helpers/inflight.js'

const t = useTestNode()
afterEach(closeRaw)

describe('in-flight redelivery, in memory', () => {
  it('[MQTT-4.4.0-1] [MQTT-3.3.1-1] unacknowledged QoS 1 and QoS 2 PUBLISHes are resent on reconnect with DUP=1 and their packet ids, and not after they are acknowledged', async () => {
    const port = t.node.ports.mqtt
    await unackedPublishesComeBack({ sub: port, pub: port }, 'mem')
  })

  it('[MQTT-4.4.0-1] an unacknowledged PUBREL is resent on reconnect, the PUBLISH is not', async () => {
    const port = t.node.ports.mqtt
    await unackedPubrelComesBack({ sub: port, pub: port }, 'mem')
  })

  it('[MQTT-4.4.0-1] a message in flight to two sessions comes again to each with its own packet id', async () => {
    const port = t.node.ports.mqtt
    await eachSessionKeepsItsPacketId({ sub: port, pub: port }, 'mem')
  })
})
