/**
 * The seam to mqtt-packet 9: its parser's underscore methods, the module's writeToStream and its
 * `debug` loggers (docs/internals.md, rows M*). The only module that touches them;
 * test/seam/contract-parser.test.ts checks each.
 *
 * Parser patches are per connection (the parser of one Client, seam/aedes.ts parserOf). The
 * write path is process-wide: Aedes writes every packet through `mqtt.writeToStream`, read from
 * the module object at call time (aedes lib/write.js), so it is wrapped once and dispatches
 * per stream (WeakMaps keyed by the connection).
 *
 * main.ts imports this module first, so that mqtt-packet loads here, after its loggers are off.
 */
import { isUtf8 } from 'node:buffer'
import { createRequire } from 'node:module'
import type MqttPacket from 'mqtt-packet'
import type { ParsedPacket } from '../limits/packet-check.js'
import { writeAck } from './mqtt-acks.js'
import { writePublish, type TopicAliasesOut } from './mqtt-publish.js'

// ---- debug: off before mqtt-packet loads ----------------------------------------------------

const require = createRequire(import.meta.url)
const DEBUG_PREFIX = 'mqtt-packet:'
const silenced: string[] = []
let debugState: 'off' | 'on (DEBUG)' | 'loaded before the seam' = 'off'

/**
 * mqtt-packet 9 calls its `debug` loggers about 15 times per packet parsed or written, each a
 * call with its arguments and the debug package's `enabled` getter, enabled or not (issue 15:
 * 6-9% of a node's CPU). parser.js and writeToStream.js make them once, at load
 * (`require('debug')('mqtt-packet:parser')`, module constants), so they can only be dropped
 * before mqtt-packet loads: the `debug` module it resolves is replaced in Node's require cache by
 * a proxy that hands out a no-op for mqtt-packet's namespaces that DEBUG does not enable (any
 * other caller gets the real logger). No upstream issue found (mqtt-packet could drop its debug
 * calls from the per-packet path).
 */
function silenceDebug(): void {
  const fromPkg = createRequire(require.resolve('mqtt-packet'))
  if (require.cache[fromPkg.resolve('./parser.js')] || require.cache[fromPkg.resolve('./writeToStream.js')]) {
    debugState = 'loaded before the seam'
    return
  }
  const path = fromPkg.resolve('debug')
  const real = fromPkg('debug') as ((ns: string) => unknown) & { enabled(ns: string): boolean }
  const noop = (): void => {}
  require.cache[path]!.exports = new Proxy(real, {
    apply(target, self, args: unknown[]) {
      const ns = args[0]
      if (typeof ns === 'string' && ns.startsWith(DEBUG_PREFIX)) {
        if (!real.enabled(ns)) {
          silenced.push(ns)
          return noop
        }
        debugState = 'on (DEBUG)'
      }
      return Reflect.apply(target, self, args) as unknown
    },
  })
}
silenceDebug()
const mqttPacket = require('mqtt-packet') as typeof MqttPacket

/** mqtt-packet's debug calls: off (no-ops), on (DEBUG enables them), or still there (mqtt-packet was loaded before this module) */
export function mqttPacketDebug(): { state: typeof debugState; silenced: string[] } {
  return { state: debugState, silenced: [...silenced] }
}

/** mqtt-packet's Parser (parser.js): the fields and methods the seam touches */
interface ParserInternals {
  packet: ParsedPacket
  settings: { protocolVersion?: number }
  error: Error | null
  parse(buf: Buffer): number
  on(event: 'error', fn: (err: Error) => void): unknown
  emit(event: string, ...args: unknown[]): boolean
  _newPacket(): boolean
  _list: { toString(enc: 'utf8', start: number, end: number): string; slice(start: number, end: number): Buffer; length: number }
  _pos: number
  _parseLength(): boolean
  _parseNum(): number
  _parseString(): string | null
  _emitError(err: Error): void
}
/** the parser of one connection (opaque outside the seam) */
export type PacketParser = { readonly __mqttPacketParser: unique symbol }
const internals = (p: PacketParser): ParserInternals => p as unknown as ParserInternals

// ---- parser patches (each could go upstream as a parser option) ----------------------------

/**
 * A packet whose remaining length is over `max` bytes is an error as soon as the length is
 * decoded: the parser buffers a whole packet before parsing it and accepts up to 256 MiB (no
 * mqtt-packet issue found; aedes 2 checks its v5 maximumPacketSize in the read loop instead).
 */
export class PacketTooLargeError extends Error {}

export function limitPacketSize(parser: PacketParser, max: number): void {
  const p = internals(parser)
  const parseLength = p._parseLength
  p._parseLength = function (this: ParserInternals) {
    const ok = parseLength.call(this)
    if (ok && this.packet.length > max) {
      this._emitError(new PacketTooLargeError(`packet of ${this.packet.length} bytes is larger than max_packet_size ${max}`))
      return false
    }
    return ok
  }
}

/**
 * mqtt-packet 9's _parseString plus the checks it lacks (mqtt-packet#59): well-formed UTF-8
 * [MQTT-1.5.3-1] and no U+0000 [MQTT-1.5.3-2]; null = malformed, and the parser emits its error.
 * Only a string that decodes to U+FFFD is re-checked byte by byte: the common path is one scan.
 */
function strictParseString(this: ParserInternals): string | null {
  const length = this._parseNum()
  const end = length + this._pos
  if (length === -1 || end > this._list.length || end > this.packet.length) return null
  const result = this._list.toString('utf8', this._pos, end)
  if (result.indexOf('\u0000') !== -1) return null
  if (result.indexOf('\uFFFD') !== -1 && !isUtf8(this._list.slice(this._pos, end))) return null
  this._pos += length
  return result
}
export function strictUtf8Strings(parser: PacketParser): void {
  internals(parser)._parseString = strictParseString
}

/**
 * `check` sees each packet once its fields are parsed, before it is emitted to Aedes
 * (_newPacket emits 'packet'); `used` is how many bytes of the remaining length the fields took
 * (`_pos`). A reason returned is emitted as the parser's error and the packet is dropped.
 */
export function checkEachPacket(parser: PacketParser, check: (packet: ParsedPacket, used: number, protocolVersion: number | undefined) => string | undefined): void {
  const p = internals(parser)
  const newPacket = p._newPacket
  p._newPacket = function (this: ParserInternals) {
    const why = check(this.packet, this._pos, this.settings?.protocolVersion)
    if (why === undefined) return newPacket.call(this)
    this._emitError(new Error(`malformed packet: ${why}`))
    return false
  }
}

/** the parser's error for a CONNECT whose protocol level it does not support (parser.js _parseConnect) */
export const isUnsupportedProtocolLevel = (err: Error): boolean => err.message === 'Invalid protocol version'

/** `intercept` sees each error the parser raises (`_emitError`); true = handled, not emitted */
export function interceptParseErrors(parser: PacketParser, intercept: (err: Error) => boolean): void {
  const p = internals(parser)
  const emitError = p._emitError
  p._emitError = function (this: ParserInternals, err: Error) {
    if (intercept(err)) return
    return emitError.call(this, err)
  }
}

/**
 * `intercept` sees each packet the parser emits to Aedes: undefined passes it on, false drops
 * it, an Error is emitted as the parser's 'error' instead (Aedes then closes the connection).
 */
export function interceptPackets<P>(parser: PacketParser, intercept: (packet: P) => Error | false | undefined): void {
  const p = internals(parser)
  const emit = p.emit
  p.emit = function (this: ParserInternals, event: string, ...args: unknown[]) {
    if (event === 'packet') {
      const out = intercept(args[0] as P)
      if (out === false) return false
      if (out) return emit.call(this, 'error', out)
    }
    return emit.call(this, event, ...args)
  }
}

/**
 * `around` runs each packet the parser emits to Aedes and calls `handle` to pass it on: Aedes'
 * handler (lib/client.js enqueue -> lib/handlers) starts synchronously inside `handle`.
 */
export function aroundPackets<P>(parser: PacketParser, around: (packet: P, handle: () => void) => void): void {
  const p = internals(parser)
  const emit = p.emit
  p.emit = function (this: ParserInternals, event: string, ...args: unknown[]) {
    if (event !== 'packet') return emit.call(this, event, ...args)
    let out = false
    around(args[0] as P, () => {
      out = emit.call(this, event, ...args)
    })
    return out
  }
}

/** stop the parse loop: parser.js parse() ends while `error` is set */
export function stopParsing(parser: PacketParser, err: Error): void {
  internals(parser).error = err
}

/** replace parse(buf), the call that runs Aedes' packet handlers synchronously */
export function wrapParse(parser: PacketParser, wrap: (parse: (buf: Buffer) => number) => (buf: Buffer) => number): void {
  const p = internals(parser)
  p.parse = wrap(p.parse.bind(p))
}

/** the parser's 'error' event (Aedes listens to it too and closes the client) */
export function onParserError(parser: PacketParser, fn: (err: Error) => void): void {
  internals(parser).on('error', fn)
}

// ---- writeToStream: every packet Aedes writes ----------------------------------------------

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
/** per connection: its write hooks and its hold (one WeakMap lookup per packet written) */
interface Taps {
  hooks: WriteHook[]
  hold?: (packet: OutPacket, opts: unknown) => boolean
  /** MQTT 5 Topic Aliases Culex gives the connection's PUBLISHes (mqtt-publish.ts) */
  aliases?: TopicAliasesOut
}
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
      for (const hook of t.hooks) hook(packet)
      if (t.hold && t.hold(packet, opts)) return true
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
  if (!t) taps.set(stream, (t = { hooks: [] }))
  return t
}

/** call `hook` with every packet Aedes writes to `stream`, before it is encoded (in the order added) */
export function onWrite(stream: Stream, hook: WriteHook): void {
  tapsOf(stream).hooks.push(hook)
}

/**
 * `hold` sees each packet written to `stream` after the hooks, with the options Aedes 2 passes
 * (lib/write.js: `{ protocolVersion }`); true = not written now (writePacket later, with them)
 */
export function holdWrites(stream: Stream, hold: (packet: OutPacket, opts: unknown) => boolean): void {
  tapsOf(stream).hold = hold
}

/** write `packet` with mqtt-packet's own writeToStream, past the hooks and holds (may throw) */
export function writePacket(packet: OutPacket, stream: Stream, opts?: unknown): boolean {
  install()
  const o = opts as { protocolVersion?: number } | undefined
  return writePublish(packet, stream, o, taps.get(stream)?.aliases) ?? writeAck(packet, stream, o) ?? original!(packet, stream, opts)
}

/**
 * Give the PUBLISHes written to `stream` (an MQTT 5 connection) Topic Aliases 1..max
 * (mqtt-publish.ts; max at most the client's Topic Alias Maximum [MQTT-3.3.2-11]), none that would
 * make a packet larger than `maxPacket` (the client's Maximum Packet Size)
 */
export function aliasTopicsOut(stream: Stream, max: number, maxPacket?: number): void {
  if (max > 0) tapsOf(stream).aliases = { max, byTopic: new Map(), maxPacket }
}
