/**
 * PUBLISH packets as Aedes writes them, encoded here instead of by mqtt-packet's writeToStream
 * (seam/mqtt-packet.ts calls this first for every packet; row M11 in docs/internals.md). The
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

/**
 * Write a PUBLISH of MQTT 3.1.1 (or 3.1) or 5 to `stream`; returns what the last write returned,
 * or undefined if the packet is left to mqtt-packet (nothing written then).
 */
export function writePublish(packet: Publish, stream: Writable, opts?: { protocolVersion?: number }): boolean | undefined {
  if (packet.cmd !== 'publish') return undefined
  const v5 = opts !== undefined && opts.protocolVersion === 5
  // MQTT 5: the property section's length (-1: left to mqtt-packet)
  const props = v5 ? measure(packet.properties) : 0
  if (props < 0) return undefined
  const { topic, messageId } = packet
  const qos = packet.qos || 0
  if (qos !== 0 && qos !== 1 && qos !== 2) return undefined
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
  const remaining = 2 + topicLength + (qos > 0 ? 2 : 0) + (v5 ? varLength(props) + props : 0) + payload.length
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
  if (!split) payload.copy(head, pos)
  if (cached) qos0.set(payload, { topic: topic as string | Buffer, first, v5, head, split })
  return emit(stream, head, split ? payload : undefined)
}

function emit(stream: Writable, head: Buffer, tail: Buffer | undefined): boolean {
  if (tail === undefined) return stream.write(head)
  stream.write(head)
  return stream.write(tail)
}
