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

it('a SUBSCRIBE of several filters named like prototype properties or integers: SUBACK codes in the order of the request [MQTT-3.9.3-1], each filter delivers', async () => {
  const { raw } = await rawClient(node.ports.mqtt, { clientId: 'proto-multi' })
  const subs = [
    { topic: 'b', qos: 0 },
    { topic: '__proto__', qos: 1 },
    { topic: '7', qos: 2 },
    { topic: 'constructor', qos: 1 },
  ]
  raw.send({ cmd: 'subscribe', messageId: 9, subscriptions: subs })
  await raw.until((ps) => ps.some((p) => p.cmd === 'suback'), 5000, 'SUBACK')
  expect(raw.packets.find((p) => p.cmd === 'suback')!.granted).toEqual([0, 1, 2, 1])
  subs.forEach((s, i) => raw.send({ cmd: 'publish', topic: s.topic, payload: s.topic, qos: 1, messageId: 20 + i }))
  await raw.until((ps) => subs.every((s) => ps.some((p) => p.cmd === 'publish' && p.topic === s.topic)), 5000, 'a message on each filter')
  expect(node.exited()).toBe(false)
})

it('a persistent session holding filters __proto__ and x is restored on reconnect: both deliver, the node stays up [MQTT-3.1.2-4]', async () => {
  const first = await rawClient(node.ports.mqtt, { clientId: 'proto-restore', clean: false })
  await rawSubscribe(first.raw, '__proto__', 1, 1)
  await rawSubscribe(first.raw, 'x', 1, 2)
  await first.raw.drop()
  const back = await rawClient(node.ports.mqtt, { clientId: 'proto-restore', clean: false, autoAck: true })
  expect(back.connack.sessionPresent).toBe(true)
  const { raw: pub } = await rawClient(node.ports.mqtt, { clientId: 'proto-restore-pub' })
  pub.send({ cmd: 'publish', topic: '__proto__', payload: 'p', qos: 1, messageId: 1 })
  pub.send({ cmd: 'publish', topic: 'x', payload: 'x', qos: 1, messageId: 2 })
  await back.raw.until((ps) => ['__proto__', 'x'].every((t) => ps.some((p) => p.cmd === 'publish' && p.topic === t)), 5000, 'a message on each restored filter')
  expect(node.exited()).toBe(false)
})
