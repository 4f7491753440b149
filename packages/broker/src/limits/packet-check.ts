/**
 * Field checks on a packet as it comes out of mqtt-packet's parser, before
 * Aedes sees it. mqtt-packet 9 reads fields from its whole input buffer, not
 * only from the packet: a field that runs past the remaining length takes
 * its bytes from the next packet, and a missing packet identifier is read as
 * -1 (`_parseNum`). Aedes trusts these values (a PUBACK for packet id -1 threw
 * on the write path and ended the process, issue 16). A packet that fails a
 * check is a protocol violation: its connection is closed [MQTT-4.8.0-1] and
 * the packet is never handled.
 *
 * Pure function of the parsed packet and how many bytes of the remaining
 * length its fields used; limits/guard.ts calls it for every packet.
 */

/** the parsed fields the checks read (mqtt-packet's Packet) */
export interface ParsedPacket {
  cmd: string | null
  length: number
  qos?: number
  dup?: boolean
  messageId?: number
  protocolVersion?: number
  will?: { qos?: number; properties?: Record<string, unknown> } | null
  subscriptions?: unknown[]
  /** MQTT 5 properties, by mqtt-packet's names */
  properties?: Record<string, unknown>
  unsubscriptions?: unknown[]
}

/**
 * Why MQTT 5 properties as mqtt-packet 9 parses them are not usable, or undefined. Its parser
 * (parser.js _parseProperties) makes a property that came more than once an array, and a UTF-8
 * string property that is not well-formed null (seam/mqtt-parser.ts strictParseString returns
 * null, _parseByType passes it on); Aedes computes with both as they are: a Session Expiry
 * Interval of [60, 60] armed a NaN timer when the connection closed and ended the process, a
 * Response Topic of null threw in the PUBLISH handler. Each property but User Property may come
 * once ("It is a Protocol Error to include the ... more than once", MQTT 5.0 §3.1.2.11,
 * §3.3.2.3, §3.8.2.1, §3.14.2.2, §3.15.2.2); a string that is not well-formed UTF-8 makes the
 * packet malformed [MQTT-1.5.4-1].
 * mqtt-packet itself did not make an array of a property whose first copy was 0, '' or false,
 * and read on from the wrong place after a User Property string that is not UTF-8: the parser
 * reads property sections with seam/mqtt-parse-props.ts instead (installed by broker/mqtt5.ts),
 * which makes every repetition an array and stops at a bad User Property string itself; the
 * null checks here stay for parsers without it.
 */
function propertyViolation(props: Record<string, unknown> | undefined): string | undefined {
  if (!props) return undefined
  for (const [name, value] of Object.entries(props)) {
    if (name === 'userProperties') {
      for (const v of Object.values(value as Record<string, unknown>)) {
        if (v === null || (Array.isArray(v) && v.includes(null))) return 'a User Property value that is not UTF-8 [MQTT-1.5.4-1]'
      }
    } else if (Array.isArray(value)) return `property ${name} more than once`
    else if (value === null) return `property ${name} not well-formed UTF-8 [MQTT-1.5.4-1]`
  }
  return undefined
}

const validId = (id: unknown): boolean => typeof id === 'number' && Number.isInteger(id) && id >= 1 && id <= 0xffff

/**
 * Why `packet` is malformed, or undefined when it is fine. `used` is the
 * number of bytes after the fixed header the parser consumed for the fields
 * (mqtt-packet's `_pos`); a PUBLISH payload is what is left, so it is not in `used`.
 */
export function packetViolation(packet: ParsedPacket, used: number, protocolVersion = 4): string | undefined {
  const { cmd, length } = packet
  // the fields must lie inside the packet's remaining length [MQTT-2.2.3] [MQTT-1.5.3]
  if (used > length) return `${cmd} fields run ${used - length} bytes past its remaining length ${length}`
  const v5 = protocolVersion === 5
  const props = propertyViolation(packet.properties) ?? propertyViolation(packet.will?.properties)
  if (props) return `${cmd} ${packet.will?.properties && !propertyViolation(packet.properties) ? 'will ' : ''}${props}`
  switch (cmd) {
    case 'connect':
      if (used !== length) return `connect has ${length - used} bytes after its payload`
      // [MQTT-3.1.2-14] the Will QoS MUST NOT be 3
      if (packet.will && (packet.will.qos ?? 0) > 2) return 'connect will QoS 3 [MQTT-3.1.2-14]'
      return undefined
    case 'publish':
      // [MQTT-2.3.1-1] a QoS 1/2 PUBLISH carries a non-zero 16-bit packet identifier
      if ((packet.qos ?? 0) > 0 && !validId(packet.messageId)) return `publish QoS ${packet.qos} with packet id ${packet.messageId} [MQTT-2.3.1-1]`
      // [MQTT-3.3.1-2] the DUP flag MUST be 0 for a QoS 0 message
      if (packet.qos === 0 && packet.dup) return 'publish QoS 0 with DUP set [MQTT-3.3.1-2]'
      return undefined
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      if (!validId(packet.messageId)) return `${cmd} with packet id ${packet.messageId} [MQTT-2.3.1-1]`
      // MQTT 3.1.1: the remaining length of PUBACK, PUBREC, PUBREL and PUBCOMP is 2 (3.4.1 - 3.7.1)
      if (!v5 && length !== 2) return `${cmd} with remaining length ${length}, not 2`
      return undefined
    case 'subscribe':
      if (!validId(packet.messageId)) return `subscribe with packet id ${packet.messageId} [MQTT-2.3.1-1]`
      // [MQTT-3.8.3-3] at least one topic filter
      if (!packet.subscriptions?.length) return 'subscribe without a topic filter [MQTT-3.8.3-3]'
      if (used !== length) return `subscribe fields end ${length - used} bytes before its remaining length`
      return undefined
    case 'unsubscribe':
      if (!validId(packet.messageId)) return `unsubscribe with packet id ${packet.messageId} [MQTT-2.3.1-1]`
      // [MQTT-3.10.3-2] at least one topic filter
      if (!packet.unsubscriptions?.length) return 'unsubscribe without a topic filter [MQTT-3.10.3-2]'
      if (used !== length) return `unsubscribe fields end ${length - used} bytes before its remaining length`
      return undefined
    case 'pingreq':
      // PINGREQ has no variable header and no payload (3.12)
      if (length !== 0) return `pingreq with remaining length ${length}, not 0`
      return undefined
    case 'disconnect':
      // MQTT 3.1.1 DISCONNECT has no variable header and no payload (3.14)
      if (!v5 && length !== 0) return `disconnect with remaining length ${length}, not 0`
      return undefined
    default:
      // CONNACK, SUBACK, UNSUBACK, PINGRESP, AUTH go from server to client only
      return `${cmd} is not a packet a client sends`
  }
}
