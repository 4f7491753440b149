/**
 * The seam to mqtt-packet 9's parser: its underscore methods (docs/internals.md, rows M2-M9).
 * The only module that touches them; test/seam/contract-parser.test.ts checks each.
 *
 * Parser patches are per connection (the parser of one Client, seam/aedes-client.ts parserOf), made of
 * shared functions that read the broker's ParserHooks from the parser (hookParser).
 */
import { isUtf8 } from 'node:buffer'
import type { ParsedPacket } from '../limits/packet-check.js'
import { HooksByCmd } from './hooks-by-cmd.js'
import { readThroughBuffer } from './mqtt-read-buffer.js'

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
  /** each packet, in this order, before it is emitted to Aedes (those given to `seeOnly`: the packets of their types) */
  readonly packet: Array<PacketHook<C>> = []
  /** `packet` by packet type (seeOnly) */
  private readonly byCmd = new HooksByCmd<PacketHook<C>>(this.packet)
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

  /** `hook` (one of `packet`) sees only the packets whose `cmd` is one of `cmds` (seam/hooks-by-cmd.ts) */
  seeOnly(hook: PacketHook<C>, cmds: readonly string[]): void {
    this.byCmd.seeOnly(hook, cmds)
  }

  /** the hooks of `packet` a packet of `cmd` goes through, in order */
  packetHooksFor(cmd: string): ReadonlyArray<PacketHook<C>> {
    return this.byCmd.for(cmd)
  }
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
  // reads are offsets into the read Buffer, not bl's buffer list (mqtt-read-buffer.ts, row M14)
  readThroughBuffer(p)
  if (hooks.maxPacketSize > 0) p._parseLength = limitedParseLength
  if (hooks.strictUtf8) p._parseString = strictParseString
  if (hooks.check) p._newPacket = checkedNewPacket
  if (hooks.parseFault) p.parse = guardedParse
}

function hookedEmit(this: Hooked, event: string, arg?: unknown): boolean {
  if (event === 'packet') return runPacketHooks(this, arg, this[HOOKS].packetHooksFor((arg as { cmd: string }).cmd), 0)
  if (event === 'error') for (const fn of this[HOOKS].errorEvent) fn(arg as Error, this.client)
  // every argument passed on (no rest array made for each packet above)
  // eslint-disable-next-line prefer-rest-params
  return own!.emit.apply(this, arguments as unknown as [string, ...unknown[]])
}

function runPacketHooks(p: Hooked, packet: unknown, hooks: ReadonlyArray<PacketHook<unknown>>, from: number): boolean {
  for (let i = from; i < hooks.length; i++) {
    const h = hooks[i]!
    if (typeof h === 'function') {
      const out = h(packet as never, p.client)
      if (out === false) return false
      if (out) return p.emit('error', out)
    } else if (h.before(packet as never, p.client)) {
      try {
        return runPacketHooks(p, packet, hooks, i + 1)
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
