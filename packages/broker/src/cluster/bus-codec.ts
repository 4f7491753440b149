/**
 * Wire format of the cluster bus: many Aedes packets in one Redis PUBLISH.
 * Pure (Buffer in, Buffer out) so it is unit-tested without Redis.
 *
 * batch  = u8 version(2) | u8 originLen | origin | f64 seq | f64 base | u32 count | packet*
 *          (version 1, from older nodes, has no seq and base: read, never written)
 * seq    = the batch's number from its origin (1, 2, ...); base = the origin's oldest batch
 *          still unsettled when this one was sent (bus-delivery.ts)
 * packet = u8 flags | u8 brokerIdLen | brokerId | f64 brokerCounter |
 *          u16 topicLen | topic | u32 payloadLen | payload |
 *          [u16 clientIdLen | clientId]   (flag CLIENT_ID)
 *          [u32 extraLen | JSON extra]     (flag EXTRA: cmd, nl, properties, messageExpiry, and the
 *                                           shared subscription choice `share` / `shareTopic`,
 *                                           shared/router.ts: any field a node does not know rides
 *                                           here, so older nodes read newer batches)
 * flags  = qos (bits 0-1) | retain (2) | dup (3) | CLIENT_ID (4) | EXTRA (5)
 */
const VERSION = 2
const V1 = 1
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

/** bytes a packet takes, and its extra JSON if any */
function measure(p: BusPacket): { size: number; extra?: Buffer } {
  const extras = extrasOf(p)
  const extra = extras ? Buffer.from(JSON.stringify(extras)) : undefined
  let size = 1 + 1 + Buffer.byteLength(p.brokerId ?? '') + 8 + 2 + Buffer.byteLength(p.topic) + 4 + p.payload.length
  if (p.clientId !== undefined) size += 2 + Buffer.byteLength(p.clientId)
  if (extra) size += 4 + extra.length
  return { size, extra }
}

export function encodeBatch(origin: string, packets: readonly BusPacket[], seq = 0, base = 0): Buffer {
  const measured = packets.map(measure)
  const originLen = Buffer.byteLength(origin)
  let total = 1 + 1 + originLen + 8 + 8 + 4
  for (const m of measured) total += m.size
  const buf = Buffer.allocUnsafe(total)
  let o = buf.writeUInt8(VERSION, 0)
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
  if (buf.length < 2 || (buf[0] !== VERSION && buf[0] !== V1)) throw new Error('cluster bus: unknown batch version')
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
  let o = 2 + buf[1]!
  let seq: number | undefined
  let base: number | undefined
  if (buf[0] === VERSION) {
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
      Object.assign(p, JSON.parse(buf.toString('utf8', o, o + len)))
      o += len
    }
    packets[i] = p
  }
  if (o !== buf.length) throw new Error('cluster bus: trailing bytes in batch')
  return { origin, seq, base, packets }
}
