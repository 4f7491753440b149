/**
 * MQTT 5.0: Malformed Packets and Protocol Errors close the connection [MQTT-4.13.1-1], byte level,
 * in every mode: CONNECT flags and payload fields that disagree, strings that are not UTF-8, bad
 * fixed header flags, wildcards where a topic name belongs, filters that are not filters. A
 * CONNECT refused this way gets no successful CONNACK; a packet after CONNECT gets no
 * acknowledgement (a DISCONNECT with a reason code before the close is allowed).
 */
import { expect } from 'vitest'
import { connectBytes, pkt, str, type Raw } from '../conformance/raw.js'
import { forEachMode5, test, type Mode } from './modes.js'

/** a property block: its length (< 128) and the properties */
const props = (...parts: Buffer[]): Buffer => {
  const b = Buffer.concat(parts)
  return Buffer.concat([Buffer.from([b.length]), b])
}
const NONE = props()
const bad = Buffer.from([0x61, 0xc0, 0xaf]) // "a" then an overlong "/": not UTF-8
const id = str('malformed')
const u8 = (n: number): Buffer => Buffer.from([n])
const msgId = Buffer.from([0, 1])

/** CONNECT packets (level 5, keepalive 60) that must be refused */
const connects: Array<[string, Buffer]> = [
  ['[MQTT-3.1.2-11] Will Flag 0 with Will QoS 1', connectBytes({ level: 5, flags: 0x0a, payload: [NONE, id] })],
  ['[MQTT-3.1.2-12] Will QoS 3', connectBytes({ level: 5, flags: 0x1e, payload: [NONE, id, NONE, str('w'), str('x')] })],
  ['[MQTT-3.1.2-13] Will Flag 0 with Will Retain 1', connectBytes({ level: 5, flags: 0x22, payload: [NONE, id] })],
  ['[MQTT-3.1.2-9] Will Flag 1 without will properties, topic and payload', connectBytes({ level: 5, flags: 0x06, payload: [NONE, id] })],
  ['[MQTT-3.1.2-17] User Name Flag 1 without a user name', connectBytes({ level: 5, flags: 0x82, payload: [NONE, id] })],
  ['[MQTT-3.1.2-16] User Name Flag 0 with a user name after the client id', connectBytes({ level: 5, flags: 0x02, payload: [NONE, id, str('user')] })],
  ['[MQTT-3.1.2-19] Password Flag 1 without a password', connectBytes({ level: 5, flags: 0xc2, payload: [NONE, id, str('user')] })],
  ['[MQTT-3.1.2-18] Password Flag 0 with a password after the user name', connectBytes({ level: 5, flags: 0x82, payload: [NONE, id, str('user'), str('pw')] })],
  ['[MQTT-3.1.3-3] no client id field', connectBytes({ level: 5, payload: [NONE] })],
  ['[MQTT-3.1.3-4] a client id that is not UTF-8', connectBytes({ level: 5, payload: [NONE, str(bad)] })],
  ['[MQTT-3.1.3-11] a will topic that is not UTF-8', connectBytes({ level: 5, flags: 0x06, payload: [NONE, id, NONE, str(bad), str('x')] })],
  ['[MQTT-3.1.3-12] a user name that is not UTF-8', connectBytes({ level: 5, flags: 0x82, payload: [NONE, id, str(bad)] })],
  ['[MQTT-1.5.7-1] a user property whose name is not UTF-8', connectBytes({ level: 5, payload: [props(u8(0x26), str(bad), str('v')), id] })],
]

/** packets after a successful CONNECT that must close the connection */
const after: Array<[string, Buffer]> = [
  ['[MQTT-3.3.1-4] a PUBLISH with both QoS bits set', pkt(0x36, str('a/b'), msgId, NONE, Buffer.from('x'))],
  ['[MQTT-3.3.2-2] [MQTT-4.7.0-1] a PUBLISH to a topic name with a wildcard', pkt(0x32, str('a/+'), msgId, NONE, Buffer.from('x'))],
  ['[MQTT-4.7.3-1] a PUBLISH to an empty topic name without a topic alias', pkt(0x32, str(''), msgId, NONE, Buffer.from('x'))],
  ['[MQTT-3.3.2-13] a Response Topic that is not UTF-8', pkt(0x32, str('a/b'), msgId, props(u8(0x08), str(bad)), Buffer.from('x'))],
  ['[MQTT-3.3.2-14] a Response Topic with a wildcard', pkt(0x32, str('a/b'), msgId, props(u8(0x08), str('r/#')), Buffer.from('x'))],
  ['[MQTT-3.3.2-19] a Content Type that is not UTF-8', pkt(0x32, str('a/b'), msgId, props(u8(0x03), str(bad)), Buffer.from('x'))],
  ['[MQTT-3.6.1-1] a PUBREL with fixed header flags 0000', pkt(0x60, msgId)],
  ['[MQTT-3.8.1-1] a SUBSCRIBE with fixed header flags 0000', pkt(0x80, msgId, NONE, str('a/b'), u8(1))],
  ['[MQTT-3.8.3-1] a SUBSCRIBE filter that is not UTF-8', pkt(0x82, msgId, NONE, str(bad), u8(1))],
  ['[MQTT-3.8.3-2] a SUBSCRIBE without a filter', pkt(0x82, msgId, NONE)],
  ['[MQTT-3.10.1-1] an UNSUBSCRIBE with fixed header flags 0000', pkt(0xa0, msgId, NONE, str('a/b'))],
  ['[MQTT-3.10.3-1] an UNSUBSCRIBE filter that is not UTF-8', pkt(0xa2, msgId, NONE, str(bad))],
  ['[MQTT-3.10.3-2] an UNSUBSCRIBE without a filter', pkt(0xa2, msgId, NONE)],
]

/** filters that are not filters: refused, by closing or with a SUBACK failure code */
const filters: Array<[string, string]> = [
  ['[MQTT-4.7.1-1] "#" not last', 'a/#/b'],
  ['[MQTT-4.7.1-1] "#" not alone in its level', 'a#'],
  ['[MQTT-4.7.1-2] "+" not alone in its level', 'a+/b'],
  ['[MQTT-4.7.3-1] an empty filter', ''],
]

async function connected(m: Mode): Promise<Raw> {
  const c = await m.raw(0)
  expect(await c.connect({ clientId: m.id('mal') })).toMatchObject({ reasonCode: 0 })
  return c
}

forEachMode5((m) => {
  const it = test(m)

  for (const [what, bytes] of connects) {
    it(`${what}: the CONNECT is refused and the connection closed`, async () => {
      const c = await m.raw(0)
      c.send(bytes)
      await c.closedBy()
      expect(c.packets.filter((p) => p.cmd !== 'connack' || (p.reasonCode as number) < 0x80)).toEqual([])
    })
  }

  for (const [what, bytes] of after) {
    it(`${what} closes the connection, unacknowledged`, async () => {
      const c = await connected(m)
      c.send(bytes)
      await c.closedBy()
      expect(c.unread().filter((p) => p.cmd !== 'disconnect' || (p.reasonCode as number) < 0x80)).toEqual([])
    })
  }

  for (const [what, filter] of filters) {
    it(`${what} (${JSON.stringify(filter)}): no subscription, the SUBSCRIBE refused by a close or a SUBACK failure code`, async () => {
      const c = await connected(m)
      c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: 0 }] })
      await Promise.race([c.closedBy(), c.expect('suback').catch(() => undefined)])
      expect(c.packets.filter((p) => p.cmd === 'suback' && (p.granted as number[]).some((g) => g < 0x80))).toEqual([])
    })
  }
})
