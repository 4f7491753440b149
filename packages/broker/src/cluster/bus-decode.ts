/**
 * Reading the cluster bus' wire format (bus-codec.ts describes it and writes it): a batch from
 * Redis into Aedes packets. Pure, unit-tested without Redis (test/cluster/bus-codec.test.ts).
 */
import { decode as unpackExtra, unpackProperties } from './msgpack.js'
import { CLIENT_ID, DUP, EXTRA, RESENT, RESENT_FLAG, RETAIN, V1, V2, V3, type BusPacket } from './bus-codec.js'

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
  /** packets flagged RESENT in it */
  resent: number
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
  // the payloads are views of one copy of a small batch (one allocation and copy per batch, not per
  // message); a larger batch's are copied one by one, so that a payload kept (a subscriber's held
  // deliveries, a shared subscription's record) pins no more than a copy of its own would: Node
  // serves small copies from its 8 KiB pool, and one kept pins that pool slab just the same
  const own = buf.length <= OWN_BATCH_MAX ? Buffer.from(buf) : undefined
  // a batch's packets come from one node, with one broker id: decoded once per batch, and the
  // string kept across batches (idCache), so each subscriber's dedupe entry (Aedes'
  // `client.duplicates[brokerId]`) is looked up with the same string, not a new one per batch
  let idAt = -1
  let idLen = 0
  let brokerId = ''
  let resent = 0
  let lastTopicAt = 0
  let lastTopicLen = -1
  let lastTopic = ''
  for (let i = 0; i < count; i++) {
    const flags = buf[o++]!
    const len = buf[o++]!
    if (idAt < 0 || len !== idLen || !sameBytes(buf, idAt, o, len)) {
      brokerId = idString(buf, o, len)
      idAt = o
      idLen = len
    }
    o += len
    const brokerCounter = buf.readDoubleBE(o)
    o += 8
    const topicLen = buf[o]! * 256 + buf[o + 1]!
    o += 2
    // a publisher's messages come in runs of one topic: the string of the packet before, when the bytes are the same
    if (topicLen !== lastTopicLen || !sameBytes(buf, lastTopicAt, o, topicLen)) {
      lastTopic = buf.toString('utf8', o, o + topicLen)
      lastTopicAt = o
      lastTopicLen = topicLen
    }
    const topic = lastTopic
    o += topicLen
    const payloadLen = buf.readUInt32BE(o)
    o += 4
    // never a view of `buf` itself: it is a slice of the socket's read (up to 64 KiB, or of
    // redis-parser's pool for a batch read in several chunks), which a kept payload would pin whole
    const payload = own !== undefined ? own.subarray(o, o + payloadLen) : Buffer.from(buf.subarray(o, o + payloadLen))
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
    if (flags & RESENT_FLAG) {
      p[RESENT] = true
      resent++
    }
    packets[i] = p
  }
  if (o !== buf.length) throw new Error('cluster bus: trailing bytes in batch')
  return { origin, seq, base, packets, resent }
}

/** batches up to this size are copied whole once, their payloads views of the copy (decodeBatch) */
const OWN_BATCH_MAX = 8192

/** the last broker id decoded: its bytes and its string (a node sees a handful of peers, mostly one per batch) */
let idCacheBytes = Buffer.alloc(0)
let idCacheString = ''

/** the broker id of `len` bytes at `o`: the string decoded before when the bytes are the same */
function idString(buf: Buffer, o: number, len: number): string {
  if (len === idCacheBytes.length) {
    let i = 0
    while (i < len && buf[o + i] === idCacheBytes[i]) i++
    if (i === len) return idCacheString
  }
  idCacheString = buf.toString('utf8', o, o + len)
  idCacheBytes = Buffer.from(buf.subarray(o, o + len))
  return idCacheString
}

/** the `len` bytes at `a` and at `b` of `buf` are the same */
function sameBytes(buf: Buffer, a: number, b: number, len: number): boolean {
  for (let i = 0; i < len; i++) if (buf[a + i] !== buf[b + i]) return false
  return true
}

function parseExtra(buf: Buffer, version: number): Record<string, unknown> {
  if (version !== V3) return JSON.parse(buf.toString('utf8')) as Record<string, unknown>
  // a copy: the Buffers decoded are views of it, and must not pin the whole batch in memory
  const extras = unpackExtra<Record<string, unknown>>(Buffer.from(buf))
  if (extras.properties !== undefined) unpackProperties(extras.properties)
  return extras
}
