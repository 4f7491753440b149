/**
 * PUBLISH packets as Aedes writes them, encoded here instead of by mqtt-packet's writeToStream
 * (seam/mqtt-writes.ts calls this first for every packet; row M11 in docs/internals.md). The
 * bytes are the same (test/seam/contract-publish.test.ts compares them with mqtt-packet's
 * `generate`); what differs is how they reach the socket:
 *
 * - one buffer and one `stream.write` per packet, where mqtt-packet makes 5-6 writes (header,
 *   length, topic length, topic as a string the stream encodes again, packet id, payload), each
 *   through every write wrapper (byte accounting, batching) and the Writable machinery, and a
 *   cork/uncork with a process.nextTick per packet;
 * - a QoS 0 message written to many subscribers is encoded once: Aedes hands each subscriber its
 *   own Packet object but the same payload Buffer, so the encoding is kept per payload (WeakMap)
 *   and reused while topic and flags match [MQTT-3.3.1-9: RETAIN is part of the key, so a
 *   retained copy and a live copy are not confused];
 * - a payload over COPY_MAX bytes is not copied: header, topic and packet id go in one buffer,
 *   the payload follows as it is.
 *
 * MQTT 5 PUBLISHes too (issue 11): the Property Length and the properties a PUBLISH carries
 * (§3.3.2.3) go into the same buffer (seam/mqtt-publish-props.ts); a QoS 0 encoding is shared
 * only while the properties are empty (Subscription Identifiers and Topic Aliases differ per
 * subscriber).
 *
 * Topic aliases on the way out (MQTT 5 §3.3.2.3.4, opt-in: broker/topic-alias-out.ts): a
 * connection given a TopicAliasesOut has the first PUBLISH of a topic sent with the topic and a
 * new Topic Alias, the later ones with an empty topic and the alias [MQTT-3.3.2-12], up to its
 * maximum (at most the client's Topic Alias Maximum [MQTT-3.3.2-10] [MQTT-3.3.2-11]; topics
 * beyond it go out whole). The map changes only when the packet is written here, so the client
 * learns every alias before it is used alone; a PUBLISH that already has a Topic Alias, or that is
 * left to mqtt-packet, goes out as it is.
 *
 * Anything else (an unusual property, a payload that is neither a Buffer nor a string, a field
 * out of range, other packet types) is left to mqtt-packet, errors included.
 */
import { measure, putVar, varLength, writeProps } from './mqtt-publish-props.js'

/** payloads up to this size are copied into the packet's buffer (Node's pool serves allocations under 4 KiB) */
const COPY_MAX = 2048
/** MQTT 3.1.1 2.2.3: the largest Remaining Length */
const MAX_REMAINING = 268_435_455

interface Publish {
  cmd: string
  topic?: unknown
  payload?: unknown
  qos?: unknown
  dup?: unknown
  retain?: unknown
  messageId?: unknown
  properties?: unknown
}
interface Writable {
  write(chunk: Buffer): boolean
}

/** the QoS 0 encoding of a payload, reused while topic and first byte match */
interface Encoded {
  topic: string | Buffer
  first: number
  /** encoded for MQTT 5 (with an empty property section) */
  v5: boolean
  head: Buffer
  /** the payload follows `head` as a second write (large payloads) */
  split: boolean
}
const qos0 = new WeakMap<Buffer, Encoded>()

const empty = Buffer.alloc(0)

/** the Topic Aliases Culex gave one connection: topic -> alias (1..max) */
export interface TopicAliasesOut {
  max: number
  byTopic: Map<string, number>
  /** the client's Maximum Packet Size, if it sent one */
  maxPacket?: number
}

/**
 * Write a PUBLISH of MQTT 3.1.1 (or 3.1) or 5 to `stream`; returns what the last write returned,
 * or undefined if the packet is left to mqtt-packet (nothing written then).
 */
export function writePublish(packet: Publish, stream: Writable, opts?: { protocolVersion?: number }, aliases?: TopicAliasesOut): boolean | undefined {
  if (packet.cmd !== 'publish') return undefined
  const v5 = opts !== undefined && opts.protocolVersion === 5
  // MQTT 5: the property section's length (-1: left to mqtt-packet)
  let props = v5 ? measure(packet.properties) : 0
  if (props < 0) return undefined
  const { messageId } = packet
  let topic = packet.topic
  const qos = packet.qos || 0
  if (qos !== 0 && qos !== 1 && qos !== 2) return undefined
  // a Topic Alias of this connection: known (sent alone, with an empty topic) or new (sent with the topic)
  let alias = 0
  let newAlias: string | undefined
  if (aliases !== undefined && v5 && typeof topic === 'string' && topic !== '' && (packet.properties as { topicAlias?: unknown } | undefined)?.topicAlias === undefined) {
    const known = aliases.byTopic.get(topic)
    if (known !== undefined) {
      alias = known
      topic = ''
    } else if (aliases.byTopic.size < aliases.max) {
      alias = aliases.byTopic.size + 1
      newAlias = topic
    }
    if (alias !== 0) props += 3
  }
  let payload = packet.payload || empty
  // a Buffer payload is the message's own, the same object for every subscriber
  const cached = qos === 0 && props === 0 && Buffer.isBuffer(payload)
  if (typeof payload === 'string') payload = Buffer.from(payload)
  if (!Buffer.isBuffer(payload)) return undefined
  // [MQTT-2.2.2-2] flags: DUP, QoS, RETAIN
  const first = 0x30 | (packet.dup ? 0x08 : 0) | (qos << 1) | (packet.retain ? 0x01 : 0)
  const shared = cached ? qos0.get(payload) : undefined
  if (shared && shared.topic === topic && shared.first === first && shared.v5 === v5) return emit(stream, shared.head, shared.split ? payload : undefined)

  let topicLength: number
  if (typeof topic === 'string') topicLength = Buffer.byteLength(topic)
  else if (Buffer.isBuffer(topic)) topicLength = topic.length
  else return undefined
  if (topicLength > 65_535) return undefined
  if (qos > 0 && !(typeof messageId === 'number' && Number.isInteger(messageId) && messageId >= 0 && messageId <= 65_535)) return undefined
  let remaining = 2 + topicLength + (qos > 0 ? 2 : 0) + (v5 ? varLength(props) + props : 0) + payload.length
  // the alias may not make the packet larger than the client's Maximum Packet Size [MQTT-3.1.2-24]
  // (checked on the packet without it, limits/client-packet-size.ts): then it goes out whole
  if (alias !== 0 && aliases!.maxPacket !== undefined && 1 + varLength(remaining) + remaining > aliases!.maxPacket) {
    if (topic === '') topicLength = Buffer.byteLength(packet.topic as string)
    topic = packet.topic
    props -= 3
    alias = 0
    newAlias = undefined
    remaining = 2 + topicLength + (qos > 0 ? 2 : 0) + varLength(props) + props + payload.length
  }
  if (remaining > MAX_REMAINING) return undefined

  const split = payload.length > COPY_MAX
  const headLength = 1 + varLength(remaining) + remaining - (split ? payload.length : 0)
  const head = Buffer.allocUnsafe(headLength)
  head[0] = first
  // Remaining Length: a Variable Byte Integer (2.2.3)
  let pos = putVar(head, 1, remaining)
  head[pos++] = topicLength >> 8
  head[pos++] = topicLength & 0xff
  if (typeof topic === 'string') pos += head.write(topic, pos)
  else pos += (topic as Buffer).copy(head, pos)
  if (qos > 0) {
    head[pos++] = (messageId as number) >> 8
    head[pos++] = (messageId as number) & 0xff
  }
  if (v5) pos = writeProps(head, pos, packet.properties, props)
  if (alias !== 0) {
    // after the packet's own properties: Topic Alias (0x23), Two Byte Integer (§3.3.2.3.4)
    head[pos++] = 0x23
    head[pos++] = alias >> 8
    head[pos++] = alias & 0xff
    if (newAlias !== undefined) aliases!.byTopic.set(newAlias, alias)
  }
  if (!split) payload.copy(head, pos)
  if (cached) qos0.set(payload, { topic: topic as string | Buffer, first, v5, head, split })
  return emit(stream, head, split ? payload : undefined)
}

function emit(stream: Writable, head: Buffer, tail: Buffer | undefined): boolean {
  if (tail === undefined) return stream.write(head)
  stream.write(head)
  return stream.write(tail)
}
