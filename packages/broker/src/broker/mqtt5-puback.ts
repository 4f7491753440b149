/**
 * PUBACK / PUBREC reason codes for MQTT 5 publishers (MQTT 5.0 §3.4.2.1, §3.5.2.1), where aedes
 * 2.0.0-beta.1 only knows 0x00 and 0x87 Not authorized. 3.1.1 clients: unchanged (an ack has no
 * reason code; mqtt-packet does not write one).
 *
 * - 0x99 Payload format invalid: a PUBLISH with Payload Format Indicator 1 whose payload is not
 *   valid UTF-8 (§3.3.2.3.2: the receiver MAY check it and answer 0x99; [MQTT-3.3.2-4], forward the
 *   indicator unchanged, is about valid ones). Refused through the
 *   authorizePublish hook, as Aedes refuses a v5 client's denied PUBLISH (lib/handlers/publish.js:
 *   PUBACK/PUBREC 0x87 with the Reason String when the client did not set Request Problem
 *   Information 0 [MQTT-3.1.2-29], the message neither delivered nor retained, the connection
 *   kept); that ack's code is then 0x99. A QoS 0 one is dropped and the connection stays (no ack
 *   to carry the code; the spec's other choice, DISCONNECT 0x99, would cost the client its
 *   connection for one message). Mosquitto 2.0.11 (checked here) does not validate the payload.
 * - 0x10 No matching subscribers: broker/no-subscribers.ts decides, at the time the PUBACK is
 *   released (broker/puback-after-publish.ts), after the message is delivered and stored.
 * - 0x97 Quota exceeded: a PUBLISH over the client's `max_publishes_per_s`
 *   (limits/publish-quota.ts), refused the same way (QoS 0: dropped, the connection stays).
 */
import { isUtf8 } from 'node:buffer'
import type { Aedes, Client } from 'aedes'
import { maximumPacketSizeOf, onWriteOfEachClient } from '../seam/index.js'
import type { PubackHold } from './puback-after-publish.js'

export const NOT_AUTHORIZED = 0x87
export const PAYLOAD_FORMAT_INVALID = 0x99
export const NO_MATCHING_SUBSCRIBERS = 0x10
export const QUOTA_EXCEEDED = 0x97

interface InPublish {
  qos?: number
  messageId?: number
  payload?: Buffer | string
  properties?: { payloadFormatIndicator?: boolean }
}

/** per v5 client: packet id -> reason code of the QoS 1/2 PUBLISHes refused for their payload or a quota, until their ack is written */
const refused = new WeakMap<object, Map<number, number>>()

/**
 * `packet` of v5 `client` is being refused through the authorizePublish hook: the 0x87 ack Aedes
 * writes for it (QoS 1/2) goes out with `code` instead (v5AckCodes); nothing for QoS 0
 */
export function refuseWith(client: Client, packet: { qos?: number; messageId?: number }, code: number): void {
  if ((packet.qos ?? 0) === 0 || packet.messageId === undefined) return
  let ids = refused.get(client)
  if (!ids) refused.set(client, (ids = new Map()))
  ids.set(packet.messageId, code)
}

/** true when `packet` says its payload is UTF-8 and it is not (§3.3.2.3.2) */
function invalidPayload(packet: InPublish): boolean {
  if (packet.properties?.payloadFormatIndicator !== true) return false
  const p = packet.payload
  return Buffer.isBuffer(p) && !isUtf8(p)
}

/** refuse v5 PUBLISHes whose payload is not the UTF-8 their Payload Format Indicator says (before any other check) */
export function checkPayloadFormat(broker: Aedes): void {
  // authorizePublish is a public Aedes option, read at call time (lib/handlers/publish.js)
  const authorize = broker.authorizePublish.bind(broker)
  broker.authorizePublish = (client, packet, callback) => {
    const p = packet as unknown as InPublish
    if (client && invalidPayload(p)) {
      refuseWith(client, p, PAYLOAD_FORMAT_INVALID)
      return callback(new Error('payload is not valid UTF-8 (Payload Format Indicator 1)'))
    }
    return authorize(client, packet, callback)
  }
}

/**
 * [MQTT-3.4.2-2] [MQTT-3.5.2-2] no Reason String on a PUBACK / PUBREC that it would make larger
 * than the client's Maximum Packet Size (Aedes adds it to the 0x87 / 0x99 ack without checking)
 */
function withinMaximumPacketSize(client: Client, p: { properties?: Record<string, unknown> }): void {
  const reason = p.properties?.reasonString
  const max = maximumPacketSizeOf(client)
  if (typeof reason !== 'string' || max === undefined) return
  const props = 3 + Buffer.byteLength(reason)
  // packet id, reason code, property length, properties
  const remaining = 3 + varLength(props) + props
  if (1 + varLength(remaining) + remaining <= max) return
  const { reasonString: _dropped, ...rest } = p.properties!
  p.properties = Object.keys(rest).length > 0 ? rest : undefined
}

const varLength = (n: number): number => (n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4)

/** per v5 client: packet id -> reason code for the PUBREC of a QoS 2 PUBLISH that matched no subscriber */
const pubrecCodes = new WeakMap<object, Map<number, number>>()

/** the PUBREC of `client`'s QoS 2 PUBLISH `messageId` (written next, by Aedes) carries `code` */
export function setPubrecCode(client: Client, messageId: number, code: number): void {
  let codes = pubrecCodes.get(client)
  if (!codes) pubrecCodes.set(client, (codes = new Map()))
  codes.set(messageId, code)
}

/**
 * the publish of a v5 client's QoS 1/2 `packet` has completed with `code` (0x00, or 0x10 from
 * broker/no-subscribers.ts): its held PUBACK goes with the code (puback-after-publish.ts), or the
 * PUBREC Aedes writes next gets it; then Aedes' `done`. A function of the module, not a closure
 * per message (issue 11)
 */
export function v5Published(puback: PubackHold, client: Client, packet: { qos?: number; messageId?: number }, code: number, done: () => void): void {
  if (packet.qos === 1) puback.completed(client, packet, code)
  else if (code !== 0 && packet.messageId !== undefined) setPubrecCode(client, packet.messageId, code)
  done()
}

/**
 * for each client, one hook per broker (broker/mqtt5.ts): the 0x87 ack of a PUBLISH refused for its
 * payload or a quota goes out as 0x99 / 0x97 (refuseWith); a PUBREC gets the code setPubrecCode left for it (a PUBACK gets its own
 * from broker/puback-after-publish.ts, which holds it)
 */
export function v5AckCodes(broker: Aedes): void {
  onWriteOfEachClient(broker, 'mqtt5', (p, client) => {
    if (p.cmd !== 'puback' && p.cmd !== 'pubrec') return
    if (p.reasonCode === NOT_AUTHORIZED) {
      const ids = refused.get(client)
      const code = ids?.get(p.messageId!)
      if (code !== undefined) {
        ids!.delete(p.messageId!)
        p.reasonCode = code
      }
      withinMaximumPacketSize(client, p)
      return
    }
    const codes = p.cmd === 'pubrec' ? pubrecCodes.get(client) : undefined
    const code = codes?.get(p.messageId!)
    if (code === undefined) return
    codes!.delete(p.messageId!)
    if (!p.reasonCode) p.reasonCode = code
  }, ['puback', 'pubrec'])
}
