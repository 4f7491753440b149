/**
 * The MQTT 5 property section of a PUBLISH (§3.3.2.3), sized and written into one buffer for
 * seam/mqtt-publish.ts, byte for byte as mqtt-packet 9's writeToStream writes it (its
 * getProperties/writeProperties: properties in the object's own key order, arrays as one property
 * per element, `userProperties` as one pair per name or per array element; row M11 in
 * docs/internals.md, test/seam/contract-publish-v5.test.ts compares with mqtt-packet's `generate`).
 *
 * Only what a PUBLISH can carry, with well-typed values, is handled here; anything else (a
 * property of another packet, null, a value of the wrong type or out of range, an empty
 * userProperties or array, which mqtt-packet treats as errors of its own) makes `measure` return
 * -1 so that the whole packet is left to mqtt-packet, errors included.
 */

/** property identifiers (§2.2.2.2), the names mqtt-packet uses for them */
const ID = {
  payloadFormatIndicator: 0x01,
  messageExpiryInterval: 0x02,
  contentType: 0x03,
  responseTopic: 0x08,
  correlationData: 0x09,
  subscriptionIdentifier: 0x0b,
  topicAlias: 0x23,
  userProperties: 0x26,
} as const
type Name = keyof typeof ID

const hasOwn = Object.prototype.hasOwnProperty
/** largest Variable Byte Integer (§1.5.5) */
const VAR_MAX = 268_435_455

export function varLength(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4
}

/** Variable Byte Integer (§1.5.5): 7 bits a byte, low first, high bit = more */
export function putVar(buf: Buffer, pos: number, n: number): number {
  do {
    let digit = n % 128
    n = Math.floor(n / 128)
    if (n > 0) digit |= 0x80
    buf[pos++] = digit
  } while (n > 0)
  return pos
}

function isInt(v: unknown, max: number, min = 0): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max
}

/** bytes of one property (identifier included), or -1 when it is left to mqtt-packet */
function one(name: Name, v: unknown): number {
  switch (name) {
    case 'payloadFormatIndicator':
      return typeof v === 'boolean' ? 2 : -1
    case 'messageExpiryInterval':
      return isInt(v, 0xffff_ffff) ? 5 : -1
    case 'topicAlias':
      return isInt(v, 0xffff) ? 3 : -1
    case 'subscriptionIdentifier':
      return isInt(v, VAR_MAX, 1) ? 1 + varLength(v) : -1
    case 'contentType':
    case 'responseTopic':
      return typeof v === 'string' ? 3 + Buffer.byteLength(v) : -1
    case 'correlationData':
      return Buffer.isBuffer(v) ? 3 + v.length : typeof v === 'string' ? 3 + Buffer.byteLength(v) : -1
    case 'userProperties': {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return -1
      let n = 0
      for (const key of Object.getOwnPropertyNames(v)) {
        const value = (v as Record<string, unknown>)[key]
        const k = 5 + Buffer.byteLength(key)
        if (typeof value === 'string') n += k + Buffer.byteLength(value)
        else if (Array.isArray(value)) {
          for (const s of value) {
            if (typeof s !== 'string') return -1
            n += k + Buffer.byteLength(s)
          }
        } else return -1
      }
      return n > 0 ? n : -1
    }
  }
}

/**
 * A message's properties encoded once for all its subscribers (issue 11): Aedes hands each
 * subscriber its own Packet but the message's own properties object (aedes-packet copies the
 * reference; a Subscription Identifier makes a new object, subscribe.js / subscription-ids.ts,
 * and its frozen per-subscription `{ subscriptionIdentifier }` is one object for all messages).
 * The content bytes are kept per object (WeakMap) once it is written twice in a row. The one change Aedes
 * makes to a properties object in place is the remaining Message Expiry Interval written into a
 * queued message at its replay (lib/handlers/connect.js), only for a message that has one: an
 * object with a `messageExpiryInterval` is never kept and always encoded afresh.
 */
interface Kept {
  /** the content's length */
  n: number
  /** the content, once written */
  bytes?: Buffer
}
const kept = new WeakMap<object, Kept>()
/** the properties object measured last, not kept (yet) */
let previous: object | undefined
/** what `measure` found for the object `writeProps` is called with next (writePublish calls one after the other) */
let lastProps: object | undefined
let lastKept: Kept | undefined

/**
 * Bytes of the property section's content (without its own length), or -1 when the packet is
 * left to mqtt-packet. Undefined properties are skipped as mqtt-packet does; no properties object
 * at all is an empty section.
 */
export function measure(properties: unknown): number {
  lastProps = lastKept = undefined
  if (properties === undefined) return 0
  if (typeof properties !== 'object' || properties === null || Array.isArray(properties)) return -1
  const keep = !hasOwn.call(properties, 'messageExpiryInterval')
  if (keep) {
    const k = kept.get(properties)
    if (k !== undefined) {
      lastProps = properties
      lastKept = k
      return k.n
    }
  }
  const n = measureAll(properties)
  if (keep && n > 0) {
    // kept once seen twice in a row (a message's deliveries to its subscribers are written one
    // after the other): a message written once costs no WeakMap entry
    if (properties === previous) {
      lastProps = properties
      lastKept = { n }
      kept.set(properties, lastKept)
    }
    previous = properties
  }
  return n
}

function measureAll(properties: object): number {
  let n = 0
  for (const name in properties) {
    if (!hasOwn.call(properties, name) || !hasOwn.call(ID, name)) return -1
    const v = (properties as Record<string, unknown>)[name]
    if (v === undefined) continue
    if (Array.isArray(v)) {
      // several values of one property: only Subscription Identifiers [MQTT-3.3.4-4]
      if (name !== 'subscriptionIdentifier' || v.length === 0) return -1
      for (const e of v) {
        const k = one(name, e)
        if (k < 0) return -1
        n += k
      }
    } else {
      const k = one(name as Name, v)
      if (k < 0) return -1
      n += k
    }
  }
  return n
}

function putString(buf: Buffer, pos: number, s: string): number {
  const len = buf.write(s, pos + 2)
  buf[pos] = len >> 8
  buf[pos + 1] = len & 0xff
  return pos + 2 + len
}

function put(buf: Buffer, pos: number, name: Name, v: unknown): number {
  const id = ID[name]
  switch (name) {
    case 'payloadFormatIndicator':
      buf[pos++] = id
      buf[pos++] = v ? 1 : 0
      return pos
    case 'messageExpiryInterval':
      buf[pos++] = id
      buf.writeUInt32BE(v as number, pos)
      return pos + 4
    case 'topicAlias':
      buf[pos++] = id
      buf[pos++] = (v as number) >> 8
      buf[pos++] = (v as number) & 0xff
      return pos
    case 'subscriptionIdentifier':
      buf[pos++] = id
      return putVar(buf, pos, v as number)
    case 'contentType':
    case 'responseTopic':
      buf[pos++] = id
      return putString(buf, pos, v as string)
    case 'correlationData':
      buf[pos++] = id
      if (typeof v === 'string') return putString(buf, pos, v)
      buf[pos++] = (v as Buffer).length >> 8
      buf[pos++] = (v as Buffer).length & 0xff
      return pos + (v as Buffer).copy(buf, pos)
    case 'userProperties':
      for (const key of Object.getOwnPropertyNames(v)) {
        const value = (v as Record<string, string | string[]>)[key]!
        for (const s of Array.isArray(value) ? value : [value]) {
          buf[pos++] = id
          pos = putString(buf, pos, key)
          pos = putString(buf, pos, s)
        }
      }
      return pos
  }
}

/**
 * write the section (its length `n` from `measure`, plus what the caller appends after it, then
 * the properties) at `pos`; returns the position after it
 */
export function writeProps(buf: Buffer, pos: number, properties: unknown, n: number): number {
  pos = putVar(buf, pos, n)
  if (n === 0 || properties === undefined) return pos
  // the content of `properties` alone is `lastKept.n` bytes (the caller may append after it)
  const k = lastProps === properties ? lastKept : undefined
  lastProps = lastKept = undefined
  if (k?.bytes !== undefined) return pos + k.bytes.copy(buf, pos)
  const start = pos
  for (const name in properties as object) {
    const v = (properties as Record<string, unknown>)[name]
    if (v === undefined) continue
    if (Array.isArray(v)) for (const e of v) pos = put(buf, pos, name as Name, e)
    else pos = put(buf, pos, name as Name, v)
  }
  // written a second time: kept from now on
  if (k !== undefined) {
    if (k.n === pos - start) k.bytes = Buffer.from(buf.subarray(start, pos))
    else kept.delete(properties as object)
  }
  return pos
}
