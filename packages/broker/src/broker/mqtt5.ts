/**
 * MQTT 5 at the node (issue 11 step 2): what Culex tells v5 clients in the CONNACK and grants
 * them, where aedes 2.0.0-beta.1's answer is not Culex's (the reaches are in seam/aedes-v5*.ts).
 *
 * CONNACK properties (MQTT 5.0 §3.2.2.3):
 * - Shared Subscription Available 1: Culex has `$share/` across the cluster (src/shared/); the
 *   beta says 0 and refuses the filters with 0x9E, so they are let through to its hook.
 * - Maximum Packet Size `max_packet_size` (§3.2.2.3.6): Culex closes a connection whose packet's
 *   remaining length is larger (limits/guard.ts); the advertised total size is that number, so a
 *   client that keeps to it is never closed for size.
 * - Receive Maximum `max_inflight` (Aedes' receiveMaximum option, broker/create.ts) and Server
 *   Keep Alive `keepalive_max_s` (Aedes' keepaliveLimit, which for v5 answers with the cap
 *   instead of refusing [MQTT-3.2.2-21]; 3.1.1 CONNECTs are capped before Aedes sees them,
 *   broker/conformance.ts).
 * - Retain, Wildcard Subscription, Subscription Identifier Available and Maximum QoS are absent,
 *   i.e. available / 2: Culex has them all.
 * SUBACK (§3.9.3): a refused filter is 0x87 Not authorized for v5 clients (the beta writes 0x80
 * when its version check was bypassed for a `$share/` filter of the same SUBSCRIBE); a filter
 * Culex cannot take (wildcards not filling a level [MQTT-4.7.1-2] [MQTT-4.7.1-3], empty
 * [MQTT-4.7.3-1], an invalid share name [MQTT-4.8.2-1] [MQTT-4.8.2-2]) is 0x8F Topic Filter
 * invalid, and the connection stays (3.1.1: closed, broker/conformance.ts): it is taken out of the
 * SUBSCRIBE before Aedes sees it and its code put back in the SUBACK at its place.
 * UNSUBACK, client DISCONNECTs and No Local on a shared subscription: broker/mqtt5-packets.ts.
 * DISCONNECT with a reason code before the server closes a v5 client's connection [MQTT-3.14.0-1]:
 * 0x8E when the client id connects on another node (the beta sends it for a takeover on the same
 * node only), 0x95 for a packet over max_packet_size (limits/guard.ts); elsewhere: 0x8B at shutdown
 * (the beta's broker.close), 0x98 kicked by the admin (broker/disconnect.ts), 0x93 over the inbound
 * window (seam/aedes-fixes.ts), 0x94 a client topic alias of 0 or above the Topic Alias Maximum
 * of 32 the CONNACK offers (the beta), 0x97 a
 * subscriber cut for its queue (limits/delivery.ts) when its stream holds no bytes (else just
 * closed: a DISCONNECT would wait behind the bytes its socket holds).
 */
import type { Aedes, Client } from 'aedes'
import {
  acceptV5SharedFilters,
  disconnectDuringQueueReplay,
  amendConnack,
  amendSuback,
  disconnectV5,
  interceptPacketsOfEachClient,
  interceptParseErrorsOfEachClient,
  keepSentMessagesPastExpiry,
  onRemoteTakeover,
  PacketTooLargeError,
  parserOf,
  protocolVersion,
  stopParsing,
  strictPropertySections,
  topicAliasesOnFirstUse,
} from '../seam/index.js'
import { DisconnectReason } from './disconnect.js'
import { parseShare } from '../shared/names.js'
import { validFilter } from './conformance.js'
import { checkPayloadFormat, v5AckCodes } from './mqtt5-puback.js'
import { disconnectExpiryFromZeroIsProtocolError, invalidUnsubscribeFiltersGet0x8F, noLocalOnSharedIsProtocolError } from './mqtt5-packets.js'
import { trackSubscriptionIds } from './subscription-ids.js'

export interface Mqtt5Options {
  /** max_packet_size (remaining length, bytes) */
  maxPacketSize: number
}

const UNSPECIFIED_ERROR = 0x80
const NOT_AUTHORIZED = 0x87
const TOPIC_FILTER_INVALID = 0x8f

interface InSubscribe {
  cmd: string
  messageId?: number
  subscriptions?: Array<{ topic: string }>
}

/** v5 SUBSCRIBEs' invalid filters: taken out before Aedes sees them, their 0x8F put back in the SUBACK */
function invalidFiltersGet0x8F(broker: Aedes): void {
  /** by client, by packet id: the places of the filters taken out (made on first use) */
  const removedOf = new WeakMap<Client, Map<number, number[]>>()
  interceptPacketsOfEachClient<InSubscribe>(broker, 'mqtt5', (packet, client) => {
    if (packet.cmd !== 'subscribe' || protocolVersion(client) !== 5 || !packet.subscriptions || packet.messageId === undefined) return undefined
    const bad: number[] = []
    packet.subscriptions.forEach((s, i) => {
      if (!validFilter(s.topic) || parseShare(s.topic) === 'invalid') bad.push(i)
    })
    if (bad.length === 0) return undefined
    let removed = removedOf.get(client)
    if (!removed) removedOf.set(client, (removed = new Map()))
    removed.set(packet.messageId, bad)
    packet.subscriptions = packet.subscriptions.filter((_s, i) => !bad.includes(i))
    return undefined
  }, ['subscribe'])
  amendSuback(broker, (suback, client) => {
    const removed = removedOf.get(client)
    const bad = suback.messageId === undefined ? undefined : removed?.get(suback.messageId)
    if (!bad || !suback.granted) return
    removed!.delete(suback.messageId!)
    const granted = [...suback.granted]
    for (const i of bad) granted.splice(i, 0, TOPIC_FILTER_INVALID)
    suback.granted = granted
  })
}

/**
 * Response Information (§3.2.2.3.15) for a client that set Request Response Information 1
 * (§3.1.2.11.6: the Server MAY send it; none when not asked [MQTT-3.1.2-28]): `response_information` with %c = the
 * client id, as a topic prefix for the responses it expects (EMQX sends its configured
 * `response_information` as it is; a per-client prefix keeps clients apart). None for a client
 * id that would put a wildcard, a NUL or an extra level into it, nor when the template is empty.
 * Aedes' `responseInformation` option (lib/handlers/connect.js) asks this for each such client.
 * Publishing and subscribing under it is up to the ACL, like any topic.
 */
export function responseInformationFor(template: string): ((client: Client) => string | undefined) | null {
  if (template === '') return null
  return (client) => {
    const id = client.id
    if (template.includes('%c') && (id.length === 0 || /[+#/]/.test(id) || id.includes('\u0000'))) return undefined
    return template.replaceAll('%c', id)
  }
}

/** hooks registered once per broker (seam/client-hooks.ts, stage 'mqtt5'): a client holds nothing for them until it needs it */
export function installMqtt5(broker: Aedes, opts: Mqtt5Options): void {
  onRemoteTakeover(broker, (client, done) => disconnectV5(client, DisconnectReason.sessionTakenOver, done))
  // PUBACK/PUBREC 0x99 for a payload that is not the UTF-8 it says it is (§3.3.2.3.2, mqtt5-puback.ts)
  checkPayloadFormat(broker)
  // PUBACK/PUBREC reason codes 0x99 and (PUBREC) 0x10 (mqtt5-puback.ts)
  v5AckCodes(broker)
  // a packet over max_packet_size (limits/guard.ts): DISCONNECT 0x95 Packet too large first
  interceptParseErrorsOfEachClient(broker, 'mqtt5', (err, client) => {
    if (!(err instanceof PacketTooLargeError)) return false
    stopParsing(parserOf(client), err)
    return disconnectV5(client, DisconnectReason.packetTooLarge)
  })
  amendConnack(broker, (properties) => {
    properties.sharedSubscriptionAvailable = true
    properties.maximumPacketSize = opts.maxPacketSize
  })
  acceptV5SharedFilters(broker)
  disconnectDuringQueueReplay(broker)
  amendSuback(broker, (suback) => {
    if (suback.granted) suback.granted = suback.granted.map((g) => (g === UNSPECIFIED_ERROR ? NOT_AUTHORIZED : g))
  })
  invalidFiltersGet0x8F(broker)
  invalidUnsubscribeFiltersGet0x8F(broker)
  disconnectExpiryFromZeroIsProtocolError(broker)
  noLocalOnSharedIsProtocolError(broker)
  // a message sent and not acknowledged is sent again on the session's return, expired or not [MQTT-4.3.3-7] (seam A24)
  keepSentMessagesPastExpiry(broker)
  topicAliasesOnFirstUse(broker)
  // a property twice is seen whatever its first value; a User Property that is not UTF-8 is malformed [MQTT-1.5.4-1] (seam/mqtt-parse-props.ts)
  strictPropertySections(broker)
  // a client found without Subscription Identifiers skips the walk until a subscription is written (subscription-ids.ts)
  trackSubscriptionIds(broker)
}
