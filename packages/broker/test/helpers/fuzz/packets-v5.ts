/**
 * What the fuzzer sends to MQTT 5 sessions (protocol level 5): packets encoded
 * here byte by byte, so that they can carry what mqtt-packet would refuse to
 * write: properties with edge values (Receive Maximum 0, Maximum Packet Size 0,
 * Topic Alias 0 or above the maximum, Subscription Identifier 0 or too large),
 * properties a packet may not carry (a Subscription Identifier in a client's
 * PUBLISH), duplicated ones, unknown property ids, property lengths and
 * varints that run past the packet, Payload Format Indicator 1 with invalid
 * UTF-8, SUBSCRIBE options with reserved bits, Retain Handling 3 or No Local on
 * `$share/`, acks, DISCONNECT and AUTH with any reason code. The runner then
 * sends one as it is or puts it through packets.ts's byte mutations.
 */
import { gen, int, pick, type Rand, type SessionState } from './packets.js'

const u8 = (n: number): Buffer => Buffer.from([n & 0xff])
const u16 = (n: number): Buffer => Buffer.from([(n >> 8) & 0xff, n & 0xff])
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n >>> 0)
  return b
}
/** a Variable Byte Integer (any n, so also the ones over 268,435,455 that take five bytes) */
export function vbi(n: number): Buffer {
  const out: number[] = []
  do {
    let b = n % 128
    n = Math.floor(n / 128)
    if (n > 0) b |= 0x80
    out.push(b)
  } while (n > 0)
  return Buffer.from(out)
}
/** a two-byte-length string or binary field */
const bin = (d: Buffer | string): Buffer => {
  const b = typeof d === 'string' ? Buffer.from(d, 'utf8') : d
  return Buffer.concat([u16(b.length), b])
}
/** a packet: first byte, remaining length, body */
export const frame = (first: number, ...body: Buffer[]): Buffer => {
  const b = Buffer.concat(body)
  return Buffer.concat([u8(first), vbi(b.length), b])
}

/** ill-formed UTF-8 [MQTT-1.5.4-1], U+0000 [MQTT-1.5.4-2], a noncharacter (allowed, may be refused) */
const BAD_UTF8 = [Buffer.from([0xff, 0xfe]), Buffer.from([0xc3]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('a\u0000b'), Buffer.from([0xef, 0xbf, 0xbf])]
const text = (rand: Rand): Buffer => (rand() < 0.15 ? pick(rand, BAD_UTF8) : Buffer.from(pick(rand, ['', 'x', 'text/plain', 'ü/€', '$share/g/x', 'a'.repeat(300)])))
const bytes = (rand: Rand): Buffer => Buffer.from(Array.from({ length: int(rand, 24) }, () => int(rand, 256)))
const u32s = [0, 1, 60, 0x7fffffff, 0xffffffff]

type Prop = [id: number, value: Buffer]
/** property id -> a value for it (MQTT 5.0 §2.2.2.2) */
const PROPS: Record<string, (rand: Rand) => Prop> = {
  payloadFormat: (r) => [0x01, u8(pick(r, [0, 1, 1, 2, 255]))],
  messageExpiry: (r) => [0x02, u32(pick(r, u32s))],
  contentType: (r) => [0x03, bin(text(r))],
  responseTopic: (r) => [0x08, bin(r() < 0.7 ? pick(r, ['fz/resp', 'fz/+/x', '#', '']) : text(r))],
  correlationData: (r) => [0x09, bin(bytes(r))],
  subscriptionIdentifier: (r) => [0x0b, r() < 0.2 ? Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7f]) : vbi(pick(r, [0, 1, 7, 268435455]))],
  sessionExpiry: (r) => [0x11, u32(pick(r, u32s))],
  assignedClientId: (r) => [0x12, bin(text(r))],
  serverKeepAlive: (r) => [0x13, u16(pick(r, [0, 5, 65535]))],
  authMethod: (r) => [0x15, bin(r() < 0.6 ? pick(r, ['SCRAM-SHA-1', 'PLAIN', '']) : text(r))],
  authData: (r) => [0x16, bin(bytes(r))],
  requestProblemInfo: (r) => [0x17, u8(pick(r, [0, 1, 2, 255]))],
  willDelay: (r) => [0x18, u32(pick(r, u32s))],
  requestResponseInfo: (r) => [0x19, u8(pick(r, [0, 1, 2, 255]))],
  responseInfo: (r) => [0x1a, bin(text(r))],
  serverReference: (r) => [0x1c, bin(text(r))],
  reasonString: (r) => [0x1f, bin(text(r))],
  receiveMaximum: (r) => [0x21, u16(pick(r, [0, 0, 1, 10, 65535]))],
  topicAliasMaximum: (r) => [0x22, u16(pick(r, [0, 1, 10, 65535]))],
  // the node's Topic Alias Maximum is 32 (broker/create.ts): 0 and 33+ are out of range [MQTT-3.3.2-9]
  topicAlias: (r) => [0x23, u16(pick(r, [0, 0, 1, 2, 32, 33, 65535]))],
  maximumQoS: (r) => [0x24, u8(pick(r, [0, 1, 2]))],
  retainAvailable: (r) => [0x25, u8(pick(r, [0, 1, 2]))],
  userProperty: (r) => [0x26, Buffer.concat([bin(text(r)), bin(text(r))])],
  maximumPacketSize: (r) => [0x27, u32(pick(r, [0, 0, 1, 20, 128, 268435455, 0xffffffff]))],
  wildcardAvailable: (r) => [0x28, u8(pick(r, [0, 1]))],
  subscriptionIdsAvailable: (r) => [0x29, u8(pick(r, [0, 1]))],
  sharedAvailable: (r) => [0x2a, u8(pick(r, [0, 1]))],
}
const ALL = Object.keys(PROPS)

/** the properties a packet may carry, by packet */
export const ALLOWED = {
  connect: ['sessionExpiry', 'receiveMaximum', 'maximumPacketSize', 'topicAliasMaximum', 'requestResponseInfo', 'requestProblemInfo', 'userProperty', 'authMethod', 'authData'],
  will: ['willDelay', 'payloadFormat', 'messageExpiry', 'contentType', 'responseTopic', 'correlationData', 'userProperty'],
  publish: ['payloadFormat', 'messageExpiry', 'topicAlias', 'responseTopic', 'correlationData', 'userProperty', 'contentType'],
  subscribe: ['subscriptionIdentifier', 'userProperty'],
  unsubscribe: ['userProperty'],
  ack: ['reasonString', 'userProperty'],
  disconnect: ['sessionExpiry', 'reasonString', 'userProperty', 'serverReference'],
  auth: ['authMethod', 'authData', 'reasonString', 'userProperty'],
}

/**
 * A property block: a few of `allowed` (sometimes one the packet may not carry, a duplicate,
 * an unknown or multi-byte id, many User Properties), and now and then a length that does not
 * match what follows or a varint that never ends.
 */
export function properties(rand: Rand, allowed: readonly string[], extra: Prop[] = []): Buffer {
  const list: Prop[] = [...extra]
  for (let n = int(rand, 4); n > 0; n--) list.push(PROPS[pick(rand, allowed)]!(rand))
  if (rand() < 0.1) list.push(PROPS[pick(rand, ALL)]!(rand)) // not for this packet [MQTT-2.2.2-2]
  if (list.length && rand() < 0.08) list.push(pick(rand, list)) // a duplicate (a Protocol Error but for User Property)
  if (rand() < 0.05) list.push([pick(rand, [0x00, 0x04, 0x7f, 0x2b + int(rand, 0x54), 0x80 + int(rand, 0x80)]), bytes(rand)]) // unknown id
  if (rand() < 0.03) for (let n = 20 + int(rand, 80); n > 0; n--) list.push(PROPS.userProperty!(rand))
  for (let i = list.length - 1; i > 0; i--) {
    const j = int(rand, i + 1)
    ;[list[i], list[j]] = [list[j]!, list[i]!]
  }
  const body = Buffer.concat(list.flatMap(([id, v]) => [vbi(id), v]))
  const r = rand()
  if (r < 0.04) return Buffer.concat([vbi(Math.max(0, body.length + pick(rand, [-2, -1, 1, 3, 200]))), body]) // length off
  if (r < 0.06) return Buffer.from([0xff, 0xff, 0xff, 0xff]) // a varint that never ends
  if (r < 0.08) return Buffer.concat([vbi(body.length), body.subarray(0, int(rand, body.length + 1))]) // cut short
  return Buffer.concat([vbi(body.length), body])
}

export interface ConnectV5Options {
  clientId: string
  clean: boolean
  /** wild properties (false: a CONNECT a well-behaved client could send) */
  wild: boolean
}

/** a v5 CONNECT (MQTT 5.0 §3.1), with a Will and its properties in three of ten */
export function connectPacketV5(rand: Rand, o: ConnectV5Options): Buffer {
  const will = rand() < 0.3
  const willQos = o.wild && rand() < 0.05 ? 3 : int(rand, 3)
  const username = rand() < 0.2
  const password = username && rand() < 0.5
  let flags = (username ? 0x80 : 0) | (password ? 0x40 : 0) | (will ? 0x04 | (willQos << 3) | (rand() < 0.3 ? 0x20 : 0) : 0) | (o.clean ? 0x02 : 0)
  if (o.wild && rand() < 0.03) flags |= 0x01 // reserved [MQTT-3.1.2-3]
  const props = o.wild ? properties(rand, ALLOWED.connect) : Buffer.concat([vbi(5), u8(0x11), u32(pick(rand, [0, 30]))])
  const willPart = (): Buffer[] => {
    const format = rand() < 0.3
    const payload = format && rand() < 0.5 ? pick(rand, BAD_UTF8) : Buffer.from('bye')
    const extra: Prop[] = format ? [[0x01, u8(1)]] : []
    const wp = o.wild ? properties(rand, ALLOWED.will, extra) : Buffer.from([0])
    return [wp, bin(`fz/will/${o.clientId}`), bin(payload)]
  }
  return frame(
    0x10,
    bin('MQTT'),
    u8(5),
    u8(flags),
    u16(pick(rand, [0, 10, 60])),
    props,
    bin(o.clientId),
    ...(will ? willPart() : []),
    ...(username ? [bin('fuzz')] : []),
    ...(password ? [bin(bytes(rand))] : []),
  )
}

const id = (rand: Rand, known: number[]): number => (known.length && rand() < 0.8 ? pick(rand, known) : 1 + int(rand, 65535))
const REASONS = [0x00, 0x04, 0x10, 0x11, 0x18, 0x19, 0x80, 0x83, 0x87, 0x8e, 0x91, 0x92, 0x93, 0x95, 0x97, 0x98, 0x99]
const reason = (rand: Rand): number => (rand() < 0.8 ? pick(rand, REASONS) : int(rand, 256))

/** an ack (PUBACK 0x40, PUBREC 0x50, PUBREL 0x62, PUBCOMP 0x70): id only, id + reason, or id + reason + properties */
function ack(rand: Rand, first: number, packetId: number): Buffer {
  const form = int(rand, 3)
  if (form === 0) return frame(first, u16(packetId))
  if (form === 1) return frame(first, u16(packetId), u8(reason(rand)))
  return frame(first, u16(packetId), u8(reason(rand)), properties(rand, ALLOWED.ack))
}

/** a v5 PUBLISH: topic aliases (0, unset, above the maximum), a client's Subscription Identifier, UTF-8 claims */
function publishV5(rand: Rand, s: SessionState, qos: number, topic: () => string): Buffer {
  const extra: Prop[] = []
  let t = topic()
  const alias = rand()
  if (alias < 0.1) extra.push(PROPS.topicAlias!(rand)) // set (1 to 32) or out of range
  else if (alias < 0.15) {
    extra.push([0x23, u16(1 + int(rand, 3))]) // the alias alone: set before on this connection, or never [MQTT-3.3.2-8]
    t = ''
  }
  if (rand() < 0.08) extra.push(PROPS.subscriptionIdentifier!(rand)) // from a client: a Protocol Error [MQTT-3.3.4-6]
  let payload = Buffer.alloc(int(rand, 48), 0x61)
  if (rand() < 0.15) {
    extra.push([0x01, u8(1)])
    if (rand() < 0.6) payload = pick(rand, BAD_UTF8) // [MQTT-3.3.2-4]
  }
  const retain = rand() < 0.08 ? 1 : 0
  const first = 0x30 | (qos << 1) | retain | (qos > 0 && rand() < 0.1 ? 0x08 : 0)
  const packetId = qos === 2 ? id(rand, s.awaitingRel) : 1 + int(rand, 65535)
  return frame(first, bin(t), ...(qos > 0 ? [u16(packetId)] : []), properties(rand, ALLOWED.publish, extra), payload)
}

/** a subscription's options byte: QoS (3 is malformed), No Local, Retain As Published, Retain Handling (3 is malformed), reserved bits */
const options = (rand: Rand): number =>
  (rand() < 0.9 ? int(rand, 3) : 3) | (rand() < 0.3 ? 0x04 : 0) | (rand() < 0.3 ? 0x08 : 0) | ((rand() < 0.9 ? int(rand, 3) : 3) << 4) | (rand() < 0.05 ? pick(rand, [0x40, 0x80]) : 0)

/** one valid-looking packet of every type a v5 session can send (and a few only a server sends), ids from its state */
export function validPacketsV5(s: SessionState, rand: Rand): Array<() => Buffer> {
  const topic = (): string => `${s.base}/${pick(rand, ['a', 'b/c', 'ü/€', 'x'])}`
  const filter = (): string => pick(rand, [`${s.base}/#`, `${s.base}/+/c`, `$share/g/${s.base}/#`, `$share/g${int(rand, 3)}/fz/#`, '$share//x', '$share/g', 'fz/+/a', '$SYS/#', ''])
  const newId = (): number => 1 + int(rand, 65535)
  const filters = (withOptions: boolean): Buffer[] =>
    Array.from({ length: 1 + int(rand, 3) }, () => Buffer.concat([bin(filter()), ...(withOptions ? [u8(options(rand))] : [])]))
  return [
    () => connectPacketV5(rand, { clientId: s.clientId, clean: rand() < 0.5, wild: true }),
    () => gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: s.clientId }), // a second CONNECT, of the other level
    () => publishV5(rand, s, 0, topic),
    () => publishV5(rand, s, 1, topic),
    () => publishV5(rand, s, 2, topic),
    () => ack(rand, 0x40, id(rand, s.unacked)),
    () => ack(rand, 0x50, id(rand, s.unreceived)),
    () => ack(rand, 0x62, id(rand, s.awaitingRel)),
    () => ack(rand, 0x70, id(rand, s.unreceived)),
    () => frame(0x82, u16(newId()), properties(rand, ALLOWED.subscribe), ...filters(true)),
    () => frame(0xa2, u16(newId()), properties(rand, ALLOWED.unsubscribe), ...filters(false)),
    () => frame(0xc0),
    () => (rand() < 0.2 ? frame(0xe0) : frame(0xe0, u8(reason(rand)), ...(rand() < 0.7 ? [properties(rand, ALLOWED.disconnect)] : []))),
    () => (rand() < 0.2 ? frame(0xf0) : frame(0xf0, u8(reason(rand)), ...(rand() < 0.8 ? [properties(rand, ALLOWED.auth)] : []))),
    () => frame(pick(rand, [0x20, 0x90, 0xb0]), ...(rand() < 0.5 ? [u16(newId())] : [u8(0), u8(0)]), properties(rand, ALL), u8(0)),
  ]
}

/** an AUTH packet a client might send before its CONNECT, or in place of it */
export function authPacket(rand: Rand): Buffer {
  return frame(0xf0, u8(reason(rand)), properties(rand, ALLOWED.auth))
}
