/**
 * Wire format of the cluster bus: many Aedes packets in one Redis PUBLISH.
 * Pure (Buffer in, Buffer out) so it is unit-tested without Redis.
 *
 * batch  = u8 version | u8 originLen | origin | f64 seq | f64 base | u32 count | packet*
 *          (version 1, from older nodes, has no seq and base: read, never written)
 * seq    = the batch's number from its origin (1, 2, ...); base = the origin's oldest batch
 *          still unsettled when this one was sent (bus-delivery.ts)
 * packet = u8 flags | u8 brokerIdLen | brokerId | f64 brokerCounter |
 *          u16 topicLen | topic | u32 payloadLen | payload |
 *          [u16 clientIdLen | clientId]   (flag CLIENT_ID)
 *          [u32 extraLen | extra]          (flag EXTRA: every other field of the packet: cmd, nl,
 *                                           the MQTT 5 `properties`, `messageExpiry` (aedes-packet's
 *                                           absolute expiry, ms since the epoch), the shared
 *                                           subscription choice `share` / `shareTopic`
 *                                           (shared/router.ts); any field a node does not know
 *                                           rides here)
 * flags  = qos (bits 0-1) | retain (2) | dup (3) | CLIENT_ID (4) | EXTRA (5)
 *
 * Versions: the extra section is JSON in version 2 and MessagePack (msgpack.ts: Buffers as bytes,
 * user properties as a list of pairs) in version 3; the rest is the same. JSON turns a Buffer
 * (an MQTT 5 correlationData) into {type, data}, so a batch is written as version 3 when one of
 * its packets has binary data in its extra fields (needsV3), else as version 2, and bus-delivery.ts
 * never mixes the two kinds in one batch. Why not always 3: a node of the previous release reads
 * versions 1 and 2 only. It refuses a version 3 batch whole (its bus logs "unknown batch
 * version"; bus-order.ts there gives the batch number up as missed once the sender moves on), so
 * during a rolling upgrade its subscribers miss exactly the messages that carry binary MQTT 5
 * properties, which only an upgraded node accepts from clients (a 3.1.1 message, and an MQTT 5
 * one without binary properties, still reach every node: no QoS 1 message of a client the older
 * release could serve is lost). Every version is read here.
 */
import { decode as unpackExtra, encode as packExtra, packProperties, unpackProperties } from './msgpack.js'

const V1 = 1
const V2 = 2
const V3 = 3
const RETAIN = 4
const DUP = 8
const CLIENT_ID = 16
const EXTRA = 32

export interface BusPacket {
  cmd?: string
  brokerId?: string
  brokerCounter?: number
  topic: string
  payload: Buffer
  qos: number
  retain: boolean
  dup: boolean
  clientId?: string
  [extra: string]: unknown
}

const KNOWN = new Set(['cmd', 'brokerId', 'brokerCounter', 'topic', 'payload', 'qos', 'retain', 'dup', 'clientId', 'messageId'])

function extrasOf(p: BusPacket): Record<string, unknown> | undefined {
  let extra: Record<string, unknown> | undefined
  if (p.cmd !== undefined && p.cmd !== 'publish') (extra ??= {}).cmd = p.cmd
  for (const k in p) {
    if (!KNOWN.has(k) && p[k] !== undefined) (extra ??= {})[k] = p[k]
  }
  return extra
}

function hasBinary(v: unknown, depth = 0): boolean {
  if (v === null || typeof v !== 'object') return false
  if (v instanceof Uint8Array) return true
  if (depth > 4) return false
  for (const k in v) if (hasBinary((v as Record<string, unknown>)[k], depth + 1)) return true
  return false
}

/** the packet has binary data outside topic and payload (MQTT 5 correlationData): JSON cannot carry it */
export function needsV3(p: BusPacket): boolean {
  for (const k in p) if (!KNOWN.has(k) && hasBinary(p[k])) return true
  return false
}

function serializeExtra(extras: Record<string, unknown>, version: number): Buffer {
  if (version === V2) return Buffer.from(JSON.stringify(extras))
  if (extras.properties !== undefined) extras.properties = packProperties(extras.properties)
  return packExtra(extras)
}

function parseExtra(buf: Buffer, version: number): Record<string, unknown> {
  if (version !== V3) return JSON.parse(buf.toString('utf8')) as Record<string, unknown>
  // a copy: the Buffers decoded are views of it, and must not pin the whole batch in memory
  const extras = unpackExtra<Record<string, unknown>>(Buffer.from(buf))
  if (extras.properties !== undefined) unpackProperties(extras.properties)
  return extras
}

/** bytes a packet takes, and its serialized extra fields if any */
function measure(p: BusPacket, version: number): { size: number; extra?: Buffer } {
  const extras = extrasOf(p)
  const extra = extras ? serializeExtra(extras, version) : undefined
  let size = 1 + 1 + Buffer.byteLength(p.brokerId ?? '') + 8 + 2 + Buffer.byteLength(p.topic) + 4 + p.payload.length
  if (p.clientId !== undefined) size += 2 + Buffer.byteLength(p.clientId)
  if (extra) size += 4 + extra.length
  return { size, extra }
}

/** version 3 if any packet needs it (see the top), else version 2 */
export function encodeBatch(origin: string, packets: readonly BusPacket[], seq = 0, base = 0): Buffer {
  const version = packets.some(needsV3) ? V3 : V2
  const measured = packets.map((p) => measure(p, version))
  const originLen = Buffer.byteLength(origin)
  let total = 1 + 1 + originLen + 8 + 8 + 4
  for (const m of measured) total += m.size
  const buf = Buffer.allocUnsafe(total)
  let o = buf.writeUInt8(version, 0)
  o = buf.writeUInt8(originLen, o)
  o += buf.write(origin, o)
  o = buf.writeDoubleBE(seq, o)
  o = buf.writeDoubleBE(base, o)
  o = buf.writeUInt32BE(packets.length, o)
  for (let i = 0; i < packets.length; i++) {
    const p = packets[i]!
    const extra = measured[i]!.extra
    const flags = (p.qos & 3) | (p.retain ? RETAIN : 0) | (p.dup ? DUP : 0) | (p.clientId !== undefined ? CLIENT_ID : 0) | (extra ? EXTRA : 0)
    o = buf.writeUInt8(flags, o)
    const brokerId = p.brokerId ?? ''
    o = buf.writeUInt8(Buffer.byteLength(brokerId), o)
    o += buf.write(brokerId, o)
    o = buf.writeDoubleBE(p.brokerCounter ?? 0, o)
    o = buf.writeUInt16BE(Buffer.byteLength(p.topic), o)
    o += buf.write(p.topic, o)
    o = buf.writeUInt32BE(p.payload.length, o)
    o += p.payload.copy(buf, o)
    if (p.clientId !== undefined) {
      o = buf.writeUInt16BE(Buffer.byteLength(p.clientId), o)
      o += buf.write(p.clientId, o)
    }
    if (extra) {
      o = buf.writeUInt32BE(extra.length, o)
      o += extra.copy(buf, o)
    }
  }
  return buf
}

/** the origin of a batch, without decoding its packets */
export function originOf(buf: Buffer): string {
  if (buf.length < 2 || (buf[0] !== V3 && buf[0] !== V2 && buf[0] !== V1)) throw new Error('cluster bus: unknown batch version')
  return buf.toString('utf8', 2, 2 + buf[1]!)
}

export interface DecodedBatch {
  origin: string
  /** undefined from a version 1 (older) node */
  seq?: number
  base?: number
  packets: BusPacket[]
}

export function decodeBatch(buf: Buffer): DecodedBatch {
  const origin = originOf(buf)
  const version = buf[0]!
  let o = 2 + buf[1]!
  let seq: number | undefined
  let base: number | undefined
  if (version !== V1) {
    seq = buf.readDoubleBE(o)
    base = buf.readDoubleBE(o + 8)
    o += 16
  }
  const count = buf.readUInt32BE(o)
  o += 4
  const packets: BusPacket[] = new Array(count)
  for (let i = 0; i < count; i++) {
    const flags = buf[o++]!
    const idLen = buf[o++]!
    const brokerId = buf.toString('utf8', o, o + idLen)
    o += idLen
    const brokerCounter = buf.readDoubleBE(o)
    o += 8
    const topicLen = buf.readUInt16BE(o)
    o += 2
    const topic = buf.toString('utf8', o, o + topicLen)
    o += topicLen
    const payloadLen = buf.readUInt32BE(o)
    o += 4
    // a copy, so that one retained payload does not pin the whole batch in memory
    const payload = Buffer.from(buf.subarray(o, o + payloadLen))
    o += payloadLen
    const p: BusPacket = { cmd: 'publish', brokerId, brokerCounter, topic, payload, qos: flags & 3, retain: (flags & RETAIN) !== 0, dup: (flags & DUP) !== 0 }
    if (flags & CLIENT_ID) {
      const len = buf.readUInt16BE(o)
      o += 2
      p.clientId = buf.toString('utf8', o, o + len)
      o += len
    }
    if (flags & EXTRA) {
      const len = buf.readUInt32BE(o)
      o += 4
      Object.assign(p, parseExtra(buf.subarray(o, o + len), version))
      o += len
    }
    packets[i] = p
  }
  if (o !== buf.length) throw new Error('cluster bus: trailing bytes in batch')
  return { origin, seq, base, packets }
}
