/**
 * The seam to mqtt-packet 9's writeToStream (docs/internals.md, rows M1, M11, M12): the module
 * function every packet Aedes writes goes through. The only module that touches it;
 * test/seam/contract-parser.test.ts, contract-publish.test.ts and contract-acks.test.ts check it.
 *
 * The write path is process-wide: Aedes writes every packet through `mqtt.writeToStream`, read from
 * the module object at call time (aedes lib/write.js), so it is wrapped once and dispatches
 * per stream (WeakMaps keyed by the connection).
 */
import type { HooksByCmd } from './hooks-by-cmd.js'
import { writeAck, writeAcks } from './mqtt-acks.js'
import { mqttPacket } from './mqtt-packet-debug.js'
import { writePublish, type TopicAliasesOut } from './mqtt-publish.js'

/** a packet on its way out, before it is encoded (hooks may change it) */
export interface OutPacket {
  cmd: string
  topic?: string
  messageId?: number
  qos?: number
  returnCode?: number
  sessionPresent?: boolean
  /** MQTT 5: CONNACK, PUBACK, PUBREC, DISCONNECT reason code */
  reasonCode?: number
  /** SUBACK: granted QoS / reason code per filter */
  granted?: number[]
  /** MQTT 5 properties */
  properties?: Record<string, unknown>
}
type Stream = NodeJS.WritableStream
type WriteToStream = (packet: OutPacket, stream: Stream, opts?: unknown) => boolean
export type WriteHook = (packet: OutPacket) => void

const mp = mqttPacket as unknown as { writeToStream: WriteToStream }
/** per connection: the write hooks its broker gives every connection (with their ctx, the Client), its own, its hold (one WeakMap lookup per packet written) */
interface Taps {
  ctx?: unknown
  /** the broker's hooks by packet type (hooks-by-cmd.ts) */
  shared?: HooksByCmd<SharedWriteHook<never>>
  hooks?: WriteHook[]
  hold?: (packet: OutPacket, opts: unknown, stream: Stream) => boolean
  /** MQTT 5 Topic Aliases Culex gives the connection's PUBLISHes (mqtt-publish.ts) */
  aliases?: TopicAliasesOut
}
export type SharedWriteHook<C> = (packet: OutPacket, ctx: C) => void
const taps = new WeakMap<Stream, Taps>()
/** mqtt-packet's own writeToStream, once the wrapper is in place */
let original: WriteToStream | undefined

function install(): void {
  if (original) return
  const write = mp.writeToStream
  original = write
  const wrapped = ((packet, stream, opts) => {
    const t = taps.get(stream)
    if (t) {
      if (t.shared) {
        const shared = t.shared.for(packet.cmd)
        for (let i = 0; i < shared.length; i++) shared[i]!(packet, t.ctx as never)
      }
      if (t.hooks) for (const hook of t.hooks) hook(packet)
      if (t.hold && t.hold(packet, opts, stream)) return true
    }
    const o = opts as { protocolVersion?: number } | undefined
    return writePublish(packet, stream, o, t?.aliases) ?? writeAck(packet, stream, o) ?? write(packet, stream, opts)
  }) as WriteToStream
  // keep the function's own settings (mqtt.js sets writeToStream.cacheNumbers)
  Object.defineProperty(wrapped, 'cacheNumbers', {
    get: () => (write as unknown as { cacheNumbers: boolean }).cacheNumbers,
    set: (v: boolean) => ((write as unknown as { cacheNumbers: boolean }).cacheNumbers = v),
  })
  mp.writeToStream = wrapped
}

function tapsOf(stream: Stream): Taps {
  install()
  let t = taps.get(stream)
  if (!t) taps.set(stream, (t = {}))
  return t
}

/** call each of `hooks` (shared by every connection of a broker) that sees its type with every packet Aedes writes to `stream` and `ctx`, before its own hooks */
export function hookWrites<C>(stream: Stream, hooks: HooksByCmd<SharedWriteHook<C>>, ctx: C): void {
  const t = tapsOf(stream)
  t.shared = hooks as unknown as HooksByCmd<SharedWriteHook<never>>
  t.ctx = ctx
}

/** call `hook` with every packet Aedes writes to `stream`, before it is encoded (in the order added) */
export function onWrite(stream: Stream, hook: WriteHook): void {
  const t = tapsOf(stream)
  ;(t.hooks ??= []).push(hook)
}

/**
 * `hold` sees each packet written to `stream` after the hooks, with the options Aedes 2 passes
 * (lib/write.js: `{ protocolVersion }`) and the stream (one function may hold for every stream);
 * true = not written now (writePacket later, with them)
 */
export function holdWrites(stream: Stream, hold: (packet: OutPacket, opts: unknown, stream: Stream) => boolean): void {
  tapsOf(stream).hold = hold
}

/** write `packet` with mqtt-packet's own writeToStream, past the hooks and holds (may throw) */
export function writePacket(packet: OutPacket, stream: Stream, opts?: unknown): boolean {
  install()
  const o = opts as { protocolVersion?: number } | undefined
  return writePublish(packet, stream, o, taps.get(stream)?.aliases) ?? writeAck(packet, stream, o) ?? original!(packet, stream, opts)
}

/**
 * write `packets` (in order) as writePacket writes each, past the hooks and holds: in one
 * `stream.write` when they are all acks mqtt-acks.ts encodes (may throw)
 */
export function writePackets(packets: readonly OutPacket[], stream: Stream, opts?: unknown): void {
  install()
  if (packets.length > 1 && writeAcks(packets, stream, opts as { protocolVersion?: number } | undefined)) return
  for (let i = 0; i < packets.length; i++) writePacket(packets[i]!, stream, opts)
}

/**
 * Give the PUBLISHes written to `stream` (an MQTT 5 connection) Topic Aliases 1..max
 * (mqtt-publish.ts; max at most the client's Topic Alias Maximum [MQTT-3.3.2-11]), none that would
 * make a packet larger than `maxPacket` (the client's Maximum Packet Size)
 */
export function aliasTopicsOut(stream: Stream, max: number, maxPacket?: number): void {
  if (max > 0) tapsOf(stream).aliases = { max, byTopic: new Map(), maxPacket }
}
