/**
 * Client ids and topics named like Object.prototype properties (GHSA-52qw-whmv-87c5, fixed in
 * aedes 1.2: its per-broker and per-client maps are keyed by values from the wire). Against the
 * built CLI node: each connects, subscribes, receives, is taken over by a second connection with
 * the same id, and the node stays up. Found moving to aedes 2.0.0-beta.1 (issue 11), where a
 * CONNECT with client id `constructor` ended the node (`this.clients[client.id].disconnect is not
 * a function` in registerClient).
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { spawnNode, stopAll, type SpawnedNode } from '../helpers/security-node.js'
import { closeRaw, rawClient, rawSubscribe } from '../helpers/raw-mqtt.js'

let node: SpawnedNode

beforeAll(async () => {
  node = await spawnNode({ allow_anonymous: true })
})
afterAll(async () => {
  await closeRaw()
  await stopAll()
})

it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty'])(
  'client id and topic %s: CONNACK 0, its own message delivered, a second connection takes over [MQTT-3.1.4-2], the node stays up',
  async (name) => {
    const first = await rawClient(node.ports.mqtt, { clientId: name })
    expect(first.connack.returnCode).toBe(0)
    await rawSubscribe(first.raw, name, 1)
    first.raw.send({ cmd: 'publish', topic: name, payload: 'x', qos: 1, messageId: 1 })
    await first.raw.until((ps) => ps.some((p) => p.cmd === 'publish' && p.topic === name), 5000, `the message on ${name}`)
    // the same client id again: the broker looks the first one up by id and closes it
    const second = await rawClient(node.ports.mqtt, { clientId: name })
    expect(second.connack.returnCode).toBe(0)
    await first.raw.until(() => first.raw.closed, 5000, 'the first connection closed')
    second.raw.send({ cmd: 'pingreq' })
    await second.raw.until((ps) => ps.some((p) => p.cmd === 'pingresp'), 5000, 'PINGRESP')
    expect(node.exited()).toBe(false)
  },
)
