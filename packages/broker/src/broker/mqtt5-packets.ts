/**
 * MQTT 5 packets from clients that aedes 2.0.0-beta.1 answers differently from the standard
 * (hooks registered once per broker by broker/mqtt5.ts, for v5 clients):
 *
 * - DISCONNECT with a non-zero Session Expiry Interval from a client whose CONNECT had 0 (or
 *   none) is a Protocol Error [MQTT-3.14.2-2] (v5): the server sends DISCONNECT 0x82 and closes
 *   (§4.13.1); it is not a normal disconnect, so the will is published, and the session ends as
 *   the CONNECT said. The beta takes it as a normal disconnect (lib/handlers/index.js: the will is
 *   discarded, the value ignored, a clientError emitted): the packet is dropped before it.
 * - UNSUBSCRIBE with an invalid Topic Filter (wildcards not filling a level [MQTT-4.7.1-2]
 *   [MQTT-4.7.1-3], empty [MQTT-4.7.3-1], an invalid share name [MQTT-4.8.2-1] [MQTT-4.8.2-2]):
 *   UNSUBACK 0x8F Topic Filter invalid for it (§3.11.3) and the connection stays; the beta closes
 *   it (lib/handlers/unsubscribe.js validateTopic). The filter is taken out of the UNSUBSCRIBE
 *   before Aedes sees it and its code put back in the UNSUBACK at its place; the others get
 *   Aedes' 0x00 / 0x11 No subscription existed. 3.1.1 clients: closed, as before.
 * - SUBSCRIBE with No Local 1 on a Shared Subscription is a Protocol Error [MQTT-3.8.3-4]: DISCONNECT
 *   0x82 and closed (§4.13.1), the SUBSCRIBE not handled (no SUBACK, no subscription); one sent
 *   before the CONNACK closes the connection without DISCONNECT. The beta
 *   has no shared subscriptions (Culex's are src/shared/) and granted it; No Local would mean
 *   nothing there anyway, since a member gets a message whoever published it.
 */
import type { Aedes, Client } from 'aedes'
import { amendUnsuback, disconnectV5, interceptPacketsOfEachClient, protocolVersion } from '../seam/index.js'
import { parseShare } from '../shared/names.js'
import { validFilter } from './conformance.js'

const PROTOCOL_ERROR = 0x82
const TOPIC_FILTER_INVALID = 0x8f

interface InPacket {
  cmd: string
  messageId?: number
  subscriptions?: Array<{ topic: string; nl?: boolean }>
  unsubscriptions?: string[]
  properties?: { sessionExpiryInterval?: number }
}

/** [MQTT-3.14.2-2] (v5): a DISCONNECT may not turn a Session Expiry of 0 in the CONNECT into non-zero */
export function disconnectExpiryFromZeroIsProtocolError(broker: Aedes): void {
  /** the clients whose CONNECT had a non-zero Session Expiry Interval */
  const expiring = new WeakSet<Client>()
  interceptPacketsOfEachClient<InPacket>(broker, 'mqtt5', (packet, client) => {
    if (packet.cmd === 'connect') {
      if ((packet.properties?.sessionExpiryInterval ?? 0) !== 0) expiring.add(client)
      else expiring.delete(client)
    }
    if (packet.cmd !== 'disconnect' || protocolVersion(client) !== 5) return undefined
    const expiry = packet.properties?.sessionExpiryInterval
    if (expiring.has(client) || expiry === undefined || expiry === 0) return undefined
    // not a normal disconnect: DISCONNECT 0x82, then closed as a connection lost (will published)
    return disconnectV5(client, PROTOCOL_ERROR) ? false : undefined
  }, ['connect', 'disconnect'])
}

/** [MQTT-3.8.3-4] (v5): No Local 1 on a `$share/` filter closes the connection with DISCONNECT 0x82 */
export function noLocalOnSharedIsProtocolError(broker: Aedes): void {
  /**
   * the clients whose CONNECT was level 5, known as it is read: a SUBSCRIBE read right behind it
   * comes before Aedes sets the client's version, and a 3.1.1 bridge's (mqtt-packet bridgeMode)
   * subscriptions carry No Local 1 too
   */
  const level5 = new WeakSet<Client>()
  interceptPacketsOfEachClient<InPacket & { protocolVersion?: number }>(broker, 'mqtt5', (packet, client) => {
    if (packet.cmd === 'connect' && packet.protocolVersion === 5) level5.add(client)
    if (packet.cmd !== 'subscribe' || !level5.has(client)) return undefined
    if (!packet.subscriptions?.some((s) => s.nl === true && typeof parseShare(s.topic) === 'object')) return undefined
    // sent before the CONNACK (read now, handled once connected): no DISCONNECT can go yet, closed
    return disconnectV5(client, PROTOCOL_ERROR) ? false : new Error('No Local on a shared subscription [MQTT-3.8.3-4]')
  }, ['connect', 'subscribe'])
}

/** v5 UNSUBSCRIBEs' invalid filters: taken out before Aedes sees them, their 0x8F put back in the UNSUBACK */
export function invalidUnsubscribeFiltersGet0x8F(broker: Aedes): void {
  /** by client, by packet id: the places of the filters taken out (made on first use) */
  const removedOf = new WeakMap<Client, Map<number, number[]>>()
  interceptPacketsOfEachClient<InPacket>(broker, 'mqtt5', (packet, client) => {
    if (packet.cmd !== 'unsubscribe' || protocolVersion(client) !== 5 || !packet.unsubscriptions || packet.messageId === undefined) return undefined
    const bad: number[] = []
    packet.unsubscriptions.forEach((topic, i) => {
      if (!validFilter(topic) || parseShare(topic) === 'invalid') bad.push(i)
    })
    if (bad.length === 0) return undefined
    let removed = removedOf.get(client)
    if (!removed) removedOf.set(client, (removed = new Map()))
    removed.set(packet.messageId, bad)
    packet.unsubscriptions = packet.unsubscriptions.filter((_t, i) => !bad.includes(i))
    return undefined
  }, ['unsubscribe'])
  amendUnsuback(broker, (unsuback, client) => {
    const removed = removedOf.get(client)
    const bad = unsuback.messageId === undefined ? undefined : removed?.get(unsuback.messageId)
    if (!bad) return
    removed!.delete(unsuback.messageId!)
    const granted = [...(unsuback.granted ?? [])]
    for (const i of bad) granted.splice(i, 0, TOPIC_FILTER_INVALID)
    unsuback.granted = granted
  })
}
