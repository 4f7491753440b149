/**
 * An MQTT 5 client's Maximum Packet Size: the node never sends it a PUBLISH larger than that
 * [MQTT-3.1.2-24]; such a message is discarded for that client and the delivery treated as done
 * [MQTT-3.1.2-25], counted in culex_messages_dropped_total{reason="too_large_for_client"}
 * (aedes#1125: aedes 2.0.0-beta.1 stores the limit and does not apply it).
 *
 * Applied in authorizeForward (broker/create.ts), which Aedes calls for each live delivery and
 * for each message of a session replay before it writes or stores anything for it: a refused
 * message is not written, and a replayed one is cleared from the session store.
 * Cost for a 3.1.1 client: one field read.
 */
import type { Client } from 'aedes'
import mqttPacket from 'mqtt-packet'
import { maximumPacketSizeOf } from '../seam/index.js'

/** the fields of a message to deliver (an aedes-packet Packet) */
export interface OutgoingPublish {
  topic: string
  payload?: Buffer | string
  qos?: number
  retain?: boolean
  properties?: Record<string, unknown>
}

const varintBytes = (n: number): number => (n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4)

/** the size on the wire of `packet` as a v5 PUBLISH (fixed header included) */
export function publishSize(packet: OutgoingPublish): number {
  if (packet.properties && Object.keys(packet.properties).length > 0) {
    const qos = (packet.qos ?? 0) as 0 | 1 | 2
    return mqttPacket.generate(
      { cmd: 'publish', topic: packet.topic, payload: packet.payload ?? '', qos, messageId: qos > 0 ? 1 : undefined, retain: !!packet.retain, dup: false, properties: packet.properties } as mqttPacket.IPublishPacket,
      { protocolVersion: 5 },
    ).length
  }
  const payload = packet.payload === undefined ? 0 : typeof packet.payload === 'string' ? Buffer.byteLength(packet.payload) : packet.payload.length
  // topic (2 + bytes), packet id at QoS 1/2, property length 0 (1 byte), payload
  const remaining = 2 + Buffer.byteLength(packet.topic) + ((packet.qos ?? 0) > 0 ? 2 : 0) + 1 + payload
  return 1 + varintBytes(remaining) + remaining
}

/** true when `packet` must not be sent to `client`: larger than the Maximum Packet Size it stated */
export function tooLargeFor(client: Client, packet: OutgoingPublish): boolean {
  const max = maximumPacketSizeOf(client)
  return max !== undefined && publishSize(packet) > max
}
