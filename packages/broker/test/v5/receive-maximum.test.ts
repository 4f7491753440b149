/**
 * A v5 client's Receive Maximum: the node sends it no more QoS 1/2 PUBLISHes awaiting PUBACK /
 * PUBCOMP than it stated [MQTT-3.3.4-9] (aedes#829), in order, the rest as it acknowledges; with
 * max_outgoing_inflight larger (100) and 0 (no node limit). The subscriber is a raw v5 client that
 * acknowledges only when told. QoS 0 is not windowed, so a QoS 0 marker shows when the node has
 * handled every earlier publish.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { closeAllClients, mqttConnect } from '../helpers/cluster-mqtt.js'
import { startTestNode } from '../helpers/node.js'
import { closeRaw, rawClient, type Raw } from '../helpers/raw-mqtt.js'

afterEach(async () => {
  await closeAllClients()
  await closeRaw()
})

const qos1Of = (raw: Raw): string[] => raw.publishes().filter((p) => p.qos > 0).map((p) => String(p.payload))
const markersOf = (raw: Raw): number => raw.publishes().filter((p) => p.topic === 'rm/marker').length

describe.each([100, 0])('max_outgoing_inflight %i', (maxOut) => {
  let node: CulexNode
  afterAll(() => node?.close())

  it('a subscriber with Receive Maximum 3 has at most 3 unacknowledged QoS 1 and 2 messages, and gets all 10 in order as it acknowledges [MQTT-3.3.4-9]', async () => {
    node = await startTestNode({ max_outgoing_inflight: maxOut })
    const { raw: sub, connack } = await rawClient(node.ports.mqtt, { clientId: `rm-sub-${maxOut}`, protocolVersion: 5, properties: { receiveMaximum: 3 } })
    expect(connack.reasonCode).toBe(0)
    sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'rm/t', qos: 2 }, { topic: 'rm/marker', qos: 0 }] })
    await sub.until((ps) => ps.some((p) => p.cmd === 'suback'))
    const pub = await mqttConnect(`mqtt://127.0.0.1:${node.ports.mqtt}`, { protocolVersion: 5, clientId: `rm-pub-${maxOut}` })
    for (let i = 0; i < 10; i++) await pub.publishAsync('rm/t', String(i), { qos: i % 2 === 0 ? 1 : 2 })
    const marker = async (n: number): Promise<void> => {
      await pub.publishAsync('rm/marker', 'm', { qos: 0 })
      await sub.until(() => markersOf(sub) === n, 5000, `marker ${n}`)
    }
    await sub.until(() => qos1Of(sub).length === 3, 5000, 'three messages')
    await marker(1)
    expect(qos1Of(sub)).toEqual(['0', '1', '2'])
    // a PUBACK (QoS 1) lets one more through; a QoS 2 message stays in flight until PUBCOMP
    const ack = (p: { qos: number; messageId?: number }): void =>
      sub.send(p.qos === 1 ? { cmd: 'puback', messageId: p.messageId } : { cmd: 'pubrec', messageId: p.messageId })
    ack(sub.publishes().find((p) => String(p.payload) === '0') as never)
    await sub.until(() => qos1Of(sub).length === 4, 5000, 'a fourth message after one PUBACK')
    ack(sub.publishes().find((p) => String(p.payload) === '1') as never)
    await sub.until((ps) => ps.some((p) => p.cmd === 'pubrel'), 5000, 'PUBREL')
    await marker(2)
    expect(qos1Of(sub)).toHaveLength(4)
    // from here on acknowledge everything as it comes (checked at each packet): all arrive, in order
    const acked = new Set<unknown>([sub.publishes()[0], sub.publishes()[1]])
    const ackNew = (): void => {
      for (const p of sub.packets) {
        if (acked.has(p) || !((p.cmd === 'publish' && p.qos > 0) || p.cmd === 'pubrel')) continue
        acked.add(p)
        if (p.cmd === 'pubrel') sub.send({ cmd: 'pubcomp', messageId: p.messageId })
        else ack(p as never)
      }
    }
    await sub.until(() => (ackNew(), qos1Of(sub).length === 10), 5000, 'all ten messages')
    expect(qos1Of(sub)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'])
  })
})
