/**
 * What the fuzzer sends: valid MQTT 3.1.1 packets of every type for one
 * session (ids that match its in-flight state), and mutations of them (bit
 * flips, interesting bytes, insertions, deletions, truncation, remaining
 * length damage, wrong header flags, wrong type, splices of two packets).
 */
import mqttPacket from 'mqtt-packet'

export type Rand = () => number

/** mulberry32: small, seedable, good enough to fuzz with */
export function prng(seed: number): Rand {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** the generator of case `i` of a run with `seed`: a case is the same bytes whatever ran before it */
export const caseRand = (seed: number, i: number): Rand => prng((seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0)

export const int = (rand: Rand, n: number): number => Math.floor(rand() * n)
export const pick = <T>(rand: Rand, a: readonly T[]): T => a[int(rand, a.length)]!
export const gen = (p: Record<string, unknown>, protocolVersion: 4 | 5 = 4): Buffer =>
  mqttPacket.generate(p as unknown as mqttPacket.Packet, { protocolVersion })

/** a session's identity and in-flight state (packet ids the node is waiting on, or we are) */
export interface SessionState {
  /** the protocol level it connected with */
  version: 4 | 5
  clientId: string
  /** topic prefix this session subscribes to and publishes under */
  base: string
  /** ids of QoS 1 messages the node delivered to us and we have not acked */
  unacked: number[]
  /** ids of QoS 2 messages the node delivered to us (awaiting PUBREC) */
  unreceived: number[]
  /** ids of our QoS 2 publishes the node holds awaiting PUBREL */
  awaitingRel: number[]
}

export function connectPacket(clientId: string, clean: boolean, rand: Rand): Buffer {
  return gen({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean,
    keepalive: pick(rand, [0, 10, 60]),
    clientId,
    username: rand() < 0.2 ? 'fuzz' : undefined,
    will: rand() < 0.3 ? { topic: `fz/will/${clientId}`, payload: Buffer.from('bye'), qos: int(rand, 3), retain: rand() < 0.3 } : undefined,
  })
}

const id = (rand: Rand, known: number[]): number => (known.length && rand() < 0.8 ? pick(rand, known) : 1 + int(rand, 65535))

/** one valid packet of every type a session can send (and a few only a server sends), ids from its state; each made on demand */
export function validPackets(s: SessionState, rand: Rand): Array<() => Buffer> {
  const topic = (): string => `${s.base}/${pick(rand, ['a', 'b/c', 'ü/€', 'x'])}`
  const filter = (): string => pick(rand, [`${s.base}/#`, `${s.base}/+/c`, `${s.base}/+`, 'fz/+/a', '$SYS/#'])
  const payload = (): Buffer => Buffer.alloc(int(rand, 48), 0x61)
  const newId = (): number => 1 + int(rand, 65535)
  return [
    () => connectPacket(s.clientId, rand() < 0.5, rand),
    () => gen({ cmd: 'publish', topic: topic(), payload: payload(), qos: 0, retain: rand() < 0.1 }),
    () => gen({ cmd: 'publish', topic: topic(), payload: payload(), qos: 1, messageId: newId(), retain: rand() < 0.05 }),
    () => gen({ cmd: 'publish', topic: topic(), payload: payload(), qos: 2, messageId: id(rand, s.awaitingRel) }),
    () => gen({ cmd: 'puback', messageId: id(rand, s.unacked) }),
    () => gen({ cmd: 'pubrec', messageId: id(rand, s.unreceived) }),
    () => gen({ cmd: 'pubrel', messageId: id(rand, s.awaitingRel) }),
    () => gen({ cmd: 'pubcomp', messageId: id(rand, s.unreceived) }),
    () => gen({ cmd: 'subscribe', messageId: newId(), subscriptions: [{ topic: filter(), qos: int(rand, 3) }] }),
    () => gen({ cmd: 'unsubscribe', messageId: newId(), unsubscriptions: [filter()] }),
    () => gen({ cmd: 'pingreq' }),
    () => gen({ cmd: 'disconnect' }),
    () => gen({ cmd: rand() < 0.5 ? 'suback' : 'unsuback', messageId: newId(), granted: [1] }),
  ]
}

const INTERESTING = [0x00, 0x01, 0x02, 0x7f, 0x80, 0xff, 0xfe, 0x30, 0x10, 0x82, 0xc0, 0xe0, 0x2f, 0x23, 0x2b, 0x24]

/** one to three mutations of `p`; `others` make packets to splice with */
export function mutate(p: Buffer, others: Array<() => Buffer>, rand: Rand): Buffer {
  let out = Buffer.from(p)
  const rounds = 1 + int(rand, 3)
  for (let r = 0; r < rounds; r++) {
    const at = int(rand, Math.max(1, out.length))
    switch (int(rand, 11)) {
      case 0: // bit flip
        if (out.length) out[at] = out[at]! ^ (1 << int(rand, 8))
        break
      case 1: // interesting byte
        if (out.length) out[at] = pick(rand, INTERESTING)
        break
      case 2: // insert random bytes
        out = Buffer.concat([out.subarray(0, at), Buffer.from(Array.from({ length: 1 + int(rand, 8) }, () => int(rand, 256))), out.subarray(at)])
        break
      case 3: // delete bytes
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1 + int(rand, 4))])
        break
      case 4: // truncate
        out = out.subarray(0, at)
        break
      case 5: // remaining length off by a little (fields then run past the packet, or leave bytes over)
        if (out.length > 1 && out[1]! < 0x80) out[1] = Math.max(0, Math.min(0x7f, out[1]! + pick(rand, [-3, -2, -1, 1, 2, 3])))
        break
      case 6: // remaining length damaged: any byte, or a long varint
        if (out.length > 1) {
          if (rand() < 0.5) out[1] = int(rand, 256)
          else out = Buffer.concat([out.subarray(0, 1), Buffer.from([0x80 | int(rand, 128), int(rand, 4)]), out.subarray(2)])
        }
        break
      case 7: // wrong header flags
        if (out.length) out[0] = (out[0]! & 0xf0) | int(rand, 16)
        break
      case 8: // wrong packet type, same body
        if (out.length) out[0] = (int(rand, 16) << 4) | (out[0]! & 0x0f)
        break
      case 9: // splice: this packet's head with another's tail
        out = Buffer.concat([out.subarray(0, at), pick(rand, others)().subarray(int(rand, 6))])
        break
      case 10: // duplicate a chunk at the end
        out = Buffer.concat([out, out.subarray(at, at + 1 + int(rand, 16))])
        break
    }
  }
  return out
}

/**
 * `bytes` followed by whatever completes the last packet the node's parser
 * would still be waiting for (a remaining length that ends, zero bytes up to
 * the declared length): the PINGREQ sent after a case is then read as a
 * packet of its own, so most cases get an answer instead of a timeout.
 * Frames are read the way mqtt-packet reads them; a length over `maxPacketSize`
 * or a malformed varint is left alone (the node closes on those).
 */
export function completeFrames(bytes: Buffer, maxPacketSize: number): Buffer {
  let pos = 0
  while (pos < bytes.length) {
    let len = 0
    let mul = 1
    let i = pos + 1
    for (;;) {
      if (i >= bytes.length) return Buffer.concat([bytes, Buffer.from([0]), Buffer.alloc(len <= maxPacketSize ? len : 0)])
      const b = bytes[i++]!
      len += (b & 0x7f) * mul
      mul *= 128
      if ((b & 0x80) === 0) break
      if (i - pos - 1 >= 4) return bytes
    }
    if (len > maxPacketSize) return bytes
    const end = i + len
    if (end > bytes.length) return Buffer.concat([bytes, Buffer.alloc(end - bytes.length)])
    pos = end
  }
  return bytes
}
