/**
 * The seam to mqtt-packet 9: its parser's underscore methods, the module's writeToStream and its
 * `debug` loggers (docs/internals.md, rows M*). The only module that touches them;
 * test/seam/contract-parser.test.ts checks each.
 *
 * Parser patches are per connection (the parser of one Client, seam/aedes.ts parserOf), made of
 * shared functions that read the broker's ParserHooks from the parser (hookParser). The
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
//
// One ParserHooks object holds what every parser of a broker does besides mqtt-packet's own
// parsing; hookParser points a parser at it and replaces its methods with the shared functions
// below, which read the hooks from the parser and the Client from `parser.client` (aedes
// lib/client.js sets it): no closure per connection (issue 15, docs/performance.md).

/**
 * A packet whose remaining length is over `max` bytes is an error as soon as the length is
 * decoded: the parser buffers a whole packet before parsing it and accepts up to 256 MiB (no
 * mqtt-packet issue found; aedes 2 checks its v5 maximumPacketSize in the read loop instead).
 */
export class PacketTooLargeError extends Error {}

/** sees each packet the parser emits to Aedes: undefined passes it on, false drops it, an Error is emitted as the parser's 'error' instead (Aedes then closes the connection) */
export type PacketIntercept<C> = (packet: never, ctx: C) => Error | false | undefined
/** `before` true: the rest (the later hooks and Aedes' handler, which starts synchronously) runs, then `after` */
export interface PacketAround<C> {
  before(packet: never, ctx: C): boolean
  after(packet: never, ctx: C): void
}
export type PacketHook<C> = PacketIntercept<C> | PacketAround<C>

export class ParserHooks<C = unknown> {
  /** each packet, in this order, before it is emitted to Aedes */
  readonly packet: Array<PacketHook<C>> = []
  /** each error the parser raises (`_emitError`), in this order; true = handled, not emitted */
  readonly parseError: Array<(err: Error, ctx: C) => boolean> = []
  /** each 'error' the parser emits (a raised one or an intercept's), before Aedes' listener closes the client */
  readonly errorEvent: Array<(err: Error, ctx: C) => void> = []
  /** remaining length above which a packet is an error (PacketTooLargeError) as soon as it is decoded; 0 = none */
  maxPacketSize = 0
  /** well-formed UTF-8 and no U+0000 in every string field (strictParseString) */
  strictUtf8 = false
  /** each packet once its fields are parsed (`used`: bytes of the remaining length they took); a reason = malformed, dropped */
  check?: (packet: ParsedPacket, used: number, protocolVersion: number | undefined) => string | undefined
  /** a throw out of parse() (Aedes' handlers run inside it): parse returns 0 */
  parseFault?: (err: unknown, ctx: C) => void
}

const HOOKS = Symbol('culex.parserHooks')
interface Hooked extends ParserInternals {
  [HOOKS]: ParserHooks
  /** aedes lib/client.js: the Client of the parser */
  client: unknown
}
/** mqtt-packet's own methods (Parser.prototype), taken from the first parser hooked */
let own: Pick<ParserInternals, 'emit' | '_emitError' | '_parseLength' | '_newPacket' | 'parse'> | undefined

/** route `parser` through `hooks` (once per parser, before it reads a byte); `parser.client` is the hooks' ctx */
export function hookParser<C>(parser: PacketParser, hooks: ParserHooks<C>): void {
  const p = parser as unknown as Hooked
  if (p[HOOKS]) throw new Error('parser hooked twice')
  const proto = Object.getPrototypeOf(p) as ParserInternals
  own ??= { emit: proto.emit, _emitError: proto._emitError, _parseLength: proto._parseLength, _newPacket: proto._newPacket, parse: proto.parse }
  p[HOOKS] = hooks as ParserHooks
  p.emit = hookedEmit
  p._emitError = hookedEmitError
  if (hooks.maxPacketSize > 0) p._parseLength = limitedParseLength
  if (hooks.strictUtf8) p._parseString = strictParseString
  if (hooks.check) p._newPacket = checkedNewPacket
  if (hooks.parseFault) p.parse = guardedParse
}

function hookedEmit(this: Hooked, event: string, ...args: unknown[]): boolean {
  if (event === 'packet') return runPacketHooks(this, args[0], 0)
  if (event === 'error') for (const fn of this[HOOKS].errorEvent) fn(args[0] as Error, this.client)
  return own!.emit.call(this, event, ...args)
}

function runPacketHooks(p: Hooked, packet: unknown, from: number): boolean {
  const hooks = p[HOOKS].packet
  for (let i = from; i < hooks.length; i++) {
    const h = hooks[i]!
    if (typeof h === 'function') {
      const out = h(packet as never, p.client)
      if (out === false) return false
      if (out) return p.emit('error', out)
    } else if (h.before(packet as never, p.client)) {
      try {
        return runPacketHooks(p, packet, i + 1)
      } finally {
        h.after(packet as never, p.client)
      }
    }
  }
  return own!.emit.call(p, 'packet', packet)
}

function hookedEmitError(this: Hooked, err: Error): void {
  for (const fn of this[HOOKS].parseError) if (fn(err, this.client)) return
  own!._emitError.call(this, err)
}

function limitedParseLength(this: Hooked): boolean {
  const ok = own!._parseLength.call(this)
  const max = this[HOOKS].maxPacketSize
  if (ok && this.packet.length > max) {
    this._emitError(new PacketTooLargeError(`packet of ${this.packet.length} bytes is larger than max_packet_size ${max}`))
    return false
  }
  return ok
}

/** `check` sees each packet once its fields are parsed, before it is emitted (_newPacket emits 'packet'); `used` is `_pos` */
function checkedNewPacket(this: Hooked): boolean {
  const why = this[HOOKS].check!(this.packet, this._pos, this.settings?.protocolVersion)
  if (why === undefined) return own!._newPacket.call(this)
  this._emitError(new Error(`malformed packet: ${why}`))
  return false
}

/** parse(buf) runs Aedes' packet handlers synchronously: a throw is the client's fault, not the process's */
function guardedParse(this: Hooked, buf: Buffer): number {
  try {
    return own!.parse.call(this, buf)
  } catch (err) {
    this[HOOKS].parseFault!(err, this.client)
    return 0
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

/** the parser's error for a CONNECT whose protocol level it does not support (parser.js _parseConnect) */
export const isUnsupportedProtocolLevel = (err: Error): boolean => err.message === 'Invalid protocol version'

/** stop the parse loop: parser.js parse() ends while `error` is set */
export function stopParsing(parser: PacketParser, err: Error): void {
  internals(parser).error = err
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
/** per connection: the write hooks its broker gives every connection (with their ctx, the Client), its own, its hold (one WeakMap lookup per packet written) */
interface Taps {
  ctx?: unknown
  shared?: ReadonlyArray<SharedWriteHook<never>>
  hooks?: WriteHook[]
  hold?: (packet: OutPacket, opts: unknown) => boolean
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
      if (t.shared) for (const hook of t.shared) hook(packet, t.ctx as never)
      if (t.hooks) for (const hook of t.hooks) hook(packet)
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
  if (!t) taps.set(stream, (t = {}))
  return t
}

/** call each of `hooks` (a list shared by every connection of a broker) with every packet Aedes writes to `stream` and `ctx`, before its own hooks */
export function hookWrites<C>(stream: Stream, hooks: ReadonlyArray<SharedWriteHook<C>>, ctx: C): void {
  const t = tapsOf(stream)
  t.shared = hooks as ReadonlyArray<SharedWriteHook<never>>
  t.ctx = ctx
}

/** call `hook` with every packet Aedes writes to `stream`, before it is encoded (in the order added) */
export function onWrite(stream: Stream, hook: WriteHook): void {
  const t = tapsOf(stream)
  ;(t.hooks ??= []).push(hook)
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
