/**
 * The MessagePack codec of everything Culex itself keeps in Redis or sends between nodes: session
 * queue bodies (session-queue.ts), wills and subscriptions (persistence.ts, subscription-sync.ts,
 * will-store.ts, wills.ts), shared subscription records (shared/store.ts) and the extra section
 * of cluster bus batches version 3 (bus-codec.ts). msgpackr, kept, instead of msgpack-lite
 * (unmaintained since 2016).
 *
 * What it writes is plain MessagePack as msgpack-lite wrote it: maps (no msgpackr records),
 * `undefined` as nil, Buffers as bin. So entries written by msgpack-lite before the upgrade are
 * read as they were (Buffers come back as Buffers), and a node of an older release (msgpack-lite)
 * reads what a newer one wrote during a rolling upgrade.
 *
 * MQTT 5 properties go through unchanged, byte for byte [MQTT-3.3.2-4] [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20]:
 * correlationData (binary) stays a Buffer; userProperties (mqtt-packet: an object whose values
 * are a string, or a string[] for a name given several times, in the order received) is written
 * as a flat list [name, value, name, value...], because a MessagePack map decoded into an object
 * loses a name like `__proto__` (msgpackr renames it, msgpack-lite drops it) and a client may use
 * any UTF-8 string as a name. It comes back as a null-prototype object, as mqtt-packet makes it;
 * the object form of older entries is read as it is.
 */
import { Packr } from 'msgpackr'

const packr = new Packr({ useRecords: false, encodeUndefinedAsNil: true })

type Props = Record<string, unknown>
type WithProps = { properties?: unknown }

/** userProperties object -> [name, value, ...] (values as they are: string or string[]) */
function toPairs(up: Props): unknown[] {
  const out: unknown[] = []
  for (const k of Object.keys(up)) out.push(k, up[k])
  return out
}

/** [name, value, ...] -> the null-prototype object mqtt-packet makes */
function fromPairs(pairs: unknown[]): Props {
  const up = Object.create(null) as Props
  for (let i = 0; i + 1 < pairs.length; i += 2) up[String(pairs[i])] = pairs[i + 1]
  return up
}

/**
 * A property set to undefined is absent: Aedes strips a resolved Topic Alias that way
 * (lib/handlers/publish.js `packet.properties.topicAlias = undefined`) and mqtt-packet skips
 * undefined values when it writes. MessagePack has no undefined (nil, decoded as null), and
 * mqtt-packet refuses a null property and destroys the stream it writes to ("Invalid
 * topicAlias: null"): every `$share/` member and every subscriber on another node lost a
 * message published with a Topic Alias, and its connection (test/security/v5-topic-alias-relay.test.ts,
 * found by the v5 fuzzer). So such properties are left out when packed, and a null one (an entry
 * written before this) is dropped when unpacked.
 */
function withoutUndefined(props: Props): Props {
  let out: Props | undefined
  for (const k of Object.keys(props)) {
    if (props[k] !== undefined) continue
    out ??= { ...props }
    delete out[k]
  }
  return out ?? props
}

/** a copy of properties fit for MessagePack (userProperties as a list, no undefined values); the same object if nothing changes */
export function packProperties(props: unknown): unknown {
  if (props === null || typeof props !== 'object') return props
  const p = withoutUndefined(props as Props)
  const up = p.userProperties
  if (up === undefined || up === null || typeof up !== 'object' || Array.isArray(up)) return p
  return { ...p, userProperties: toPairs(up as Props) }
}

/** properties as they were before packProperties (null values, which MQTT has not, dropped) */
export function unpackProperties(props: unknown): unknown {
  if (props === null || typeof props !== 'object') return props
  const p = props as Props
  for (const k of Object.keys(p)) if (p[k] === null) delete p[k]
  const up = p.userProperties
  if (Array.isArray(up)) p.userProperties = fromPairs(up)
  return props
}

/** a packet for another MessagePack encoder (aedes-persistence-redis' retained messages): user properties as pairs */
export function withPackedProperties<T extends WithProps>(packet: T): T {
  if (packet.properties === undefined) return packet
  const props = packProperties(packet.properties)
  return props === packet.properties ? packet : { ...packet, properties: props }
}

/** packets decoded by another MessagePack decoder, their user properties as mqtt-packet makes them */
export async function* withProperties<T>(packets: AsyncIterable<T>): AsyncIterable<T> {
  for await (const p of packets) {
    const props = (p as WithProps | null)?.properties
    if (props) unpackProperties(props)
    yield p
  }
}

/** any value (a plain object, array, Buffer, string, number...) */
export function encode(value: unknown): Buffer {
  return packr.pack(value)
}

export function decode<T = unknown>(buf: Buffer | Uint8Array): T {
  return packr.unpack(buf) as T
}

/** a packet-like object (an aedes-packet Packet, a will) with its MQTT 5 properties */
export function encodePacket(packet: WithProps): Buffer {
  return packr.pack(withPackedProperties(packet))
}

export function decodePacket<T extends WithProps = WithProps>(buf: Buffer | Uint8Array): T {
  const p = packr.unpack(buf) as T
  if (p && p.properties) unpackProperties(p.properties)
  return p
}
