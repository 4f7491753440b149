/**
 * Wire format of the cluster bus: many Aedes packets in one Redis PUBLISH; this file writes it,
 * bus-decode.ts reads it. Pure (Buffer in, Buffer out) so it is unit-tested without Redis.
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
 * flags  = qos (bits 0-1) | retain (2) | dup (3) | CLIENT_ID (4) | EXTRA (5) | RESENT (6)
 *          RESENT: the message was published again by its node (same brokerId/brokerCounter: a
 *          Redis failover crossed its first batch, replica-acks.ts); a receiver drops it where it
 *          delivered it already (bus-seen.ts). A node of the previous release ignores the bit (it
 *          reads bits 0-5 only) and delivers the copy, as it did before.
 *
 * Versions: the extra section is JSON in version 2 and MessagePack (msgpack.ts: Buffers as bytes,
 * user properties as a list of pairs) in version 3; the rest is the same. JSON turns a Buffer
 * (an MQTT 5 correlationData) into {type, data}, so a batch is written as version 3 when one of
 * its packets has binary data in its extra fields, else as version 2, and bus-delivery.ts puts the
 * packets with binary properties (needsV3) in batches of their own. Why not always 3: a node of the
 * previous release reads versions 1 and 2 only. It refuses a version 3 batch whole (its bus logs
 * "unknown batch version"; bus-order.ts there gives the batch number up as missed once the sender
 * moves on). So during a rolling upgrade every 3.1.1 message, and every MQTT 5 one without binary
 * properties, still reaches every node, QoS 1 included; only MQTT 5 messages with correlation
 * data (which only upgraded nodes accept from clients) miss the subscribers of older nodes until
 * those are upgraded (docs/cluster.md). Every version is read here.
 */
import { encode as packExtra, packProperties } from './msgpack.js'

export const V1 = 1
export const V2 = 2
export const V3 = 3
export const RETAIN = 4
export const DUP = 8
export const CLIENT_ID = 16
export const EXTRA = 32
export const RESENT_FLAG = 64

/** on a packet: published again by its node (flag RESENT); a symbol, so never an extra field */
export const RESENT: unique symbol = Symbol('culex.resent')

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
  [RESENT]?: true
  [extra: string]: unknown
}

function extrasOf(p: BusPacket): Record<string, unknown> | undefined {
  let extra: Record<string, unknown> | undefined
  if (p.cmd !== undefined && p.cmd !== 'publish') (extra ??= {}).cmd = p.cmd
  for (const k in p) {
    // the fields the packet section carries (and messageId, the publisher's): a switch of
    // string constants, not a Set lookup per key (~10 keys per packet, every message)
    switch (k) {
      case 'cmd':
      case 'brokerId':
      case 'brokerCounter':
      case 'topic':
      case 'payload':
      case 'qos':
      case 'retain':
      case 'dup':
      case 'clientId':
      case 'messageId':
        continue
    }
    if (p[k] !== undefined) (extra ??= {})[k] = p[k]
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

/**
 * the packet has binary MQTT 5 properties (correlationData): JSON cannot carry them. Looks at
 * `properties` only, where MQTT 5 puts the only binary field a PUBLISH has besides its payload, so
 * a 3.1.1 packet costs one property read; encodeBatch checks every extra field for its version.
 */
export function needsV3(p: BusPacket): boolean {
  return p.properties !== undefined && hasBinary(p.properties)
}

/** `packets` in runs, in order, each all of version 3 or none (bus-delivery.ts sends each run as a batch) */
export function versionRuns(packets: BusPacket[]): BusPacket[][] {
  if (!packets.some(needsV3)) return [packets]
  const runs: BusPacket[][] = []
  let last: boolean | undefined
  for (const p of packets) {
    const v3 = needsV3(p)
    if (v3 !== last) runs.push([])
    runs[runs.length - 1]!.push(p)
    last = v3
  }
  return runs
}

function serializeExtra(extras: Record<string, unknown>, version: number): Buffer {
  if (version === V2) return Buffer.from(JSON.stringify(extras))
  if (extras.properties !== undefined) extras.properties = packProperties(extras.properties)
  return packExtra(extras)
}

/**
 * UTF-8 length of a string; short ASCII ones (topics, broker and client ids) are counted here,
 * a JIT-compiled loop, instead of a call into C++ per string
 */
function byteLength(s: string): number {
  const n = s.length
  if (n > 64) return Buffer.byteLength(s)
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) > 0x7f) return Buffer.byteLength(s)
  return n
}

/** write `s` at `o` (its length measured by byteLength), return the offset after it */
function writeString(buf: Buffer, s: string, o: number): number {
  const n = s.length
  if (n <= 64) {
    let i = 0
    for (; i < n; i++) {
      const c = s.charCodeAt(i)
      if (c > 0x7f) break
      buf[o + i] = c
    }
    if (i === n) return o + n
  }
  return o + buf.write(s, o)
}

/** version 3 if any packet needs it (see the top), else version 2 */
export function encodeBatch(origin: string, packets: readonly BusPacket[], seq = 0, base = 0): Buffer {
  // the extra fields of each packet, once (a 3.1.1 batch has none and allocates nothing here)
  let extras: Array<Record<string, unknown> | undefined> | undefined
  let version = V2
  for (let i = 0; i < packets.length; i++) {
    const e = extrasOf(packets[i]!)
    if (e === undefined) continue
    ;(extras ??= new Array(packets.length))[i] = e
    if (version === V2 && hasBinary(e)) version = V3
  }
  // serialized extra sections (none for a 3.1.1 batch)
  let extraBufs: Array<Buffer | undefined> | undefined
  if (extras) {
    extraBufs = new Array(packets.length)
    for (let i = 0; i < packets.length; i++) if (extras[i]) extraBufs[i] = serializeExtra(extras[i]!, version)
  }
  const originLen = Buffer.byteLength(origin)
  let total = 1 + 1 + originLen + 8 + 8 + 4
  // the broker id is the same for every packet a node publishes: measured once
  let lastId: string | undefined
  let lastIdLen = 0
  for (let i = 0; i < packets.length; i++) {
    const p = packets[i]!
    const brokerId = p.brokerId ?? ''
    if (brokerId !== lastId) {
      lastId = brokerId
      lastIdLen = byteLength(brokerId)
    }
    total += 1 + 1 + lastIdLen + 8 + 2 + byteLength(p.topic) + 4 + p.payload.length
    if (p.clientId !== undefined) total += 2 + byteLength(p.clientId)
    const extra = extraBufs?.[i]
    if (extra) total += 4 + extra.length
  }
  const buf = Buffer.allocUnsafe(total)
  let o = buf.writeUInt8(version, 0)
  o = buf.writeUInt8(originLen, o)
  o += buf.write(origin, o)
  o = buf.writeDoubleBE(seq, o)
  o = buf.writeDoubleBE(base, o)
  o = buf.writeUInt32BE(packets.length, o)
  // where the broker id of the packet before was written: the same id is copied from there
  let idString: string | undefined
  let idAt = 0
  let idBytes = 0
  for (let i = 0; i < packets.length; i++) {
    const p = packets[i]!
    const extra = extraBufs?.[i]
    buf[o++] = (p.qos & 3) | (p.retain ? RETAIN : 0) | (p.dup ? DUP : 0) | (p.clientId !== undefined ? CLIENT_ID : 0) | (extra ? EXTRA : 0) | (p[RESENT] === true ? RESENT_FLAG : 0)
    const id = p.brokerId ?? ''
    if (id === idString) {
      buf[o++] = idBytes
      buf.copyWithin(o, idAt, idAt + idBytes)
      o += idBytes
    } else {
      const at = o++
      o = writeString(buf, id, o)
      if (o - at - 1 > 0xff) throw new RangeError('cluster bus: broker id longer than 255 bytes')
      buf[at] = o - at - 1
      idString = id
      idAt = at + 1
      idBytes = o - at - 1
    }
    o = buf.writeDoubleBE(p.brokerCounter ?? 0, o)
    o = writeLen16(buf, p.topic, o)
    o = buf.writeUInt32BE(p.payload.length, o)
    buf.set(p.payload, o)
    o += p.payload.length
    if (p.clientId !== undefined) o = writeLen16(buf, p.clientId, o)
    if (extra) {
      o = buf.writeUInt32BE(extra.length, o)
      buf.set(extra, o)
      o += extra.length
    }
  }
  return buf
}

/** u16 length | the string's UTF-8 bytes */
function writeLen16(buf: Buffer, s: string, o: number): number {
  const end = writeString(buf, s, o + 2)
  buf.writeUInt16BE(end - o - 2, o)
  return end
}
