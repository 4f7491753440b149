/**
 * Outgoing packet ids of a persistent session after the counter goes round: one node in memory
 * mode (Aedes' memory store), raw clients (helpers/pid-wrap.ts). A subscriber keeps one message
 * in flight (QoS 1 without PUBACK, or QoS 2 past PUBREL without PUBCOMP) while 65,534 others pass
 * through and are acknowledged; the next message must get another packet id [MQTT-2.3.1-2]
 * [MQTT-2.2.1-4], and after a reconnect only the held one is resent (QoS 1: PUBLISH DUP=1;
 * QoS 2: PUBREL), with its id [MQTT-4.4.0-1]. 3.1.1 and 5, QoS 1 and QoS 2, four subscribers fed
 * by one publisher at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { startTestNode } from '../helpers/node.js'
import { closeRaw, type AnyPacket } from '../helpers/raw-mqtt.js'
import { PACKET_IDS, fill, heldTopic, wrapPublisher, wrapSubscriber, type WrapSubscriber } from '../helpers/pid-wrap.js'

let node: CulexNode
const variants = [
  { version: 4, qos: 1 },
  { version: 4, qos: 2 },
  { version: 5, qos: 1 },
  { version: 5, qos: 2 },
] as const
const name = (v: { version: 4 | 5; qos: 1 | 2 }): string => `MQTT ${v.version === 5 ? '5' : '3.1.1'}, QoS ${v.qos}`
const subs = new Map<string, WrapSubscriber>()
/** what each subscriber's second connection got before it answered anything */
const resent = new Map<string, Array<{ cmd: string; messageId?: number; payload?: string; dup?: boolean }>>()

/** wait for a PINGRESP after everything sent before it was handled (Aedes handles a client's packets in order) */
async function settle(s: WrapSubscriber): Promise<void> {
  const before = s.raw.packets.filter((p) => p.cmd === 'pingresp').length
  s.raw.send({ cmd: 'pingreq' })
  await s.raw.until((ps) => ps.filter((p) => p.cmd === 'pingresp').length > before, 10_000, 'PINGRESP')
}

/** QoS 2: PUBREC for `id`, wait for its PUBREL (the subscriber never PUBCOMPs unless told) */
async function pubrec(s: WrapSubscriber, id: number): Promise<void> {
  const before = s.pubrels.length
  s.raw.send({ cmd: 'pubrec', messageId: id })
  await s.raw.until(() => s.pubrels.length > before, 10_000, `PUBREL ${id}`)
}

beforeAll(async () => {
  node = await startTestNode({ node_id: 'pid-wrap', allow_anonymous: true })
  const port = node.ports.mqtt
  for (const v of variants) subs.set(name(v), await wrapSubscriber(port, `wrap-${v.version}-${v.qos}`, v.version, v.qos))
  const pub = await wrapPublisher(port, 'wrap-pub')
  // the held message: in flight until the end
  for (const s of subs.values()) {
    await pub.publish(heldTopic(s), ['held'], s.qos)
    await s.raw.until(() => s.held.length === 1, 10_000, 'the held message')
    if (s.qos === 2) await pubrec(s, s.held[0]!.messageId!)
  }
  // every other id once: the counter is back at the held message's id
  await fill(pub, [...subs.values()], PACKET_IDS - 1)
  for (const s of subs.values()) {
    await pub.publish(heldTopic(s), ['next'], s.qos)
    await s.raw.until(() => s.held.length === 2, 10_000, 'the next message')
    // the next message acknowledged in full
    const id = s.held[1]!.messageId!
    if (s.qos === 1) s.raw.send({ cmd: 'puback', messageId: id })
    else {
      await pubrec(s, id)
      s.raw.send({ cmd: 'pubcomp', messageId: id })
    }
    await settle(s)
  }
  // a new connection to each session: what the broker resends
  for (const [key, s] of subs) {
    await s.raw.drop()
    const again = await wrapSubscriber(port, s.clientId, s.version, s.qos, false)
    await settle(again)
    const got = again.raw.packets.filter((p: AnyPacket) => p.cmd === 'publish' || p.cmd === 'pubrel')
    resent.set(key, got.map((p) => ({ cmd: p.cmd, messageId: p.messageId, ...(p.cmd === 'publish' ? { payload: String(p.payload), dup: p.dup } : {}) })))
  }
}, 120_000)

afterAll(async () => {
  await closeRaw()
  await node?.close()
})

describe('one node, memory mode: a message held in flight while the packet id counter goes round', () => {
  for (const v of variants) {
    it(`[MQTT-2.3.1-2] [MQTT-2.2.1-4] ${name(v)}: the message after the round gets another packet id than the one in flight`, () => {
      const s = subs.get(name(v))!
      expect(s.held.map((p) => String(p.payload))).toEqual(['held', 'next'])
      expect(s.held[1]!.messageId).not.toBe(s.held[0]!.messageId)
    })
    it(`[MQTT-4.4.0-1] ${name(v)}: on reconnect only the held message is resent, with its id (the next one was acknowledged)`, () => {
      const s = subs.get(name(v))!
      const id = s.held[0]!.messageId
      expect(resent.get(name(v))).toEqual(v.qos === 1 ? [{ cmd: 'publish', messageId: id, payload: 'held', dup: true }] : [{ cmd: 'pubrel', messageId: id }])
    })
  }
})
