/**
 * The seam to what Aedes 2.0.0-beta.1's Client (lib/client.js constructor) and mqtt-packet 9's
 * parser make for every connection although an idle one never uses it (issue 15: bytes per idle
 * connection, docs/performance.md; docs/internals.md rows C14, C15, C16, M15, M16;
 * test/seam/contract-idle.test.ts checks each). Per plain TCP connection (TLS and WebSocket
 * streams keep Aedes' own, see closeOnStreamClose), after every other installer ('idle', the last
 * stage of CLIENT_INSTALL_ORDER):
 *
 * - end-of-stream's watch of the socket (Node's `stream.finished`: 7 closures, a bound callback
 *   and a third listener on 'error' and 'end', ~900 B) gives way to one function in the socket's
 *   close hooks: the Client closes when its socket emits 'close', as end-of-stream made it do
 *   ('end' and 'error' keep their own listeners, which close it first);
 * - Aedes' bound listeners (`emit.bind(client, 'error')` on the parser, and where end-of-stream
 *   is gone on the socket, with `close.bind(client)` on 'end') give way to shared functions that
 *   find the Client where Aedes put it (`conn.client`, `parser.client`);
 * - the parser's list of states one array shared by all parsers (its buffer list is already a
 *   ReadBuffer, smaller than bl's Duplex stream: seam/mqtt-read-buffer.ts, row M14);
 * - the listener tables (`_events`) of the Client and the parser in V8's fast mode, not a dictionary;
 * - after CONNACK the parser keeps the CONNECT's protocol version, not the whole CONNECT packet
 *   (client id, credentials, will, properties) as its `settings`;
 * - the parser's next Packet (parser.js _newPacket makes one after each packet: ~120 B) is made
 *   when bytes arrive, and between packets the parser holds one shared idle stand-in (M17);
 * - once registered, a client's keepalive is checked by one sweep per broker, not a Timeout of its
 *   own (keepalive-sweep.ts, row C17; every kind of stream).
 */
import { Socket } from 'node:net'
import type { Aedes, Client } from 'aedes'
import { closeHooksFirst, onStreamClose } from '../listeners/close-hooks.js'
import { destroyOnError } from '../listeners/tcp.js'
import { installOnEachClient } from './aedes-install.js'
import { sweepKeepalives } from './keepalive-sweep.js'
import { closeClient, NO_WATCH, skipEndOfStreamWatch } from './client-close.js'

type Listener = (...args: unknown[]) => void
interface Emitter {
  listeners(event: string): Listener[]
  removeListener(event: string, fn: Listener): unknown
  on(event: string, fn: Listener): unknown
}
/** the socket as Aedes leaves it: lib/client.js sets `conn.client` */
type Conn = Socket & { client?: ClientInternals }
/** mqtt-packet's Parser (parser.js): `settings` (the CONNECT packet once parsed), `_states`, `packet` (the one being read), `error`, `parse`; Aedes sets `client` */
interface ParserInternals extends Emitter {
  client?: ClientInternals
  settings: { protocolVersion?: number; bridgeMode?: boolean }
  _states: readonly string[]
  packet: { cmd: string | null; length: number }
  error: Error | null
  parse(buf: Buffer): number
}
/** Aedes' Client (lib/client.js): `_eos` is the cleanup of its end-of-stream watch of `conn` */
interface ClientInternals extends Emitter {
  conn: Conn
  _eos: () => void
  _parser: ParserInternals
  closed: boolean
  close(): void
  emit(event: string, ...args: unknown[]): boolean
}
const internals = (c: Client): ClientInternals => c as unknown as ClientInternals

/** the Client closes when its socket closes (end-of-stream called `client.close` then; client-close.ts C20) */
function closeClientOf(conn: Conn): void {
  const c = conn.client
  if (c) closeClient(c)
}
/** Aedes' `conn.on('error', client.emit.bind(client, 'error'))`, shared */
function emitClientError(this: Conn, err: unknown): void {
  this.client!.emit('error', err)
}
/** listeners/tcp.ts' destroyOnError, then Aedes' listener: the two in one */
function destroyThenEmitClientError(this: Conn, err: unknown): void {
  this.destroy()
  this.client!.emit('error', err)
}
/** Aedes' `conn.on('end', client.close.bind(client))`, shared */
function closeClientOnEnd(this: Conn): void {
  closeClient(this.client!)
}
/** Aedes' `parser.on('error', client.emit.bind(client, 'error'))`, shared */
function emitParserError(this: ParserInternals, err: unknown): void {
  this.client!.emit('error', err)
}

/** replace the listener named `name` (a bound function of Aedes') with `shared`; false if there is none */
function swapListener(target: Emitter, event: string, name: string, shared: Listener): boolean {
  const own = target.listeners(event).find((fn) => fn.name === name)
  if (!own) return false
  target.removeListener(event, own)
  target.on(event, shared)
  return true
}

/**
 * C14: the Client's end-of-stream watch off, the Client closed from the socket's close hooks
 * instead. Only where the close hooks' listener is the socket's first 'close' listener (a TCP
 * socket: the tracker registered it at accept), so the hooks registered so far ran before
 * end-of-stream's listener and still run before the Client closes. A TLS socket gets its hooks
 * after Aedes and a WebSocket stream has none: they keep end-of-stream.
 */
export function closeOnStreamClose(client: Client): boolean {
  const c = internals(client)
  const conn = c.conn
  // C19 (client-close.ts): no watch was made for it; the same conditions held when the Client was built, in this turn
  if (c._eos === NO_WATCH) {
    onStreamClose(conn, closeClientOf)
    return true
  }
  if (!(conn instanceof Socket) || conn.closed || !closeHooksFirst(conn) || typeof c._eos !== 'function') return false
  c._eos()
  c._eos = NO_WATCH
  onStreamClose(conn, closeClientOf)
  return true
}

/**
 * C15: Aedes' bound listeners on the socket ('error', 'end') replaced by shared functions; how many
 * were found. Where the socket's 'error' listeners are exactly listeners/tcp.ts' destroyOnError and
 * Aedes' (a TCP socket), one listener does both, in that order (no listener array).
 */
export function shareSocketListeners(client: Client): number {
  const conn = internals(client).conn as unknown as Emitter
  const onError = conn.listeners('error')
  let found = 0
  if (onError.length === 2 && onError[0] === destroyOnError && onError[1]!.name === 'bound emit') {
    conn.removeListener('error', onError[0])
    conn.removeListener('error', onError[1]!)
    conn.on('error', destroyThenEmitClientError as Listener)
    found++
  } else found += Number(swapListener(conn, 'error', 'bound emit', emitClientError as Listener))
  return found + Number(swapListener(conn, 'end', 'bound close', closeClientOnEnd as Listener))
}
/** C15: Aedes' bound 'error' listener on the parser (its only one) replaced by a shared function */
export function shareParserListener(client: Client): boolean {
  return swapListener(internals(client)._parser, 'error', 'bound emit', emitParserError as Listener)
}

/**
 * C16: Node's EventEmitter keeps an emitter's listeners in `_events`, made as `{ __proto__: null }`:
 * a dictionary-mode object in V8 (a ~160 B hash table for one or two events). The same listeners
 * in a prototype-free object made from a literal stay in fast mode (a ~56 B object); deleting the
 * last event added keeps it so: Aedes' `once('connected')` on the Client (its first event, removed
 * once the CONNACK is written) is copied last. Listeners, their order and `_eventsCount` are unchanged.
 */
export function fastEvents(emitter: unknown): boolean {
  const e = emitter as { _events?: Record<string | symbol, unknown> }
  const events = e._events
  if (!events || Object.getPrototypeOf(events) !== null) return false
  const fast = Object.setPrototypeOf({}, null) as Record<string | symbol, unknown>
  for (const key of Reflect.ownKeys(events)) if (key !== 'connected') fast[key] = events[key]
  if (events.connected !== undefined) fast.connected = events.connected
  e._events = fast
  return true
}

/** the parser's states (parser.js: the same four method names in each parser's own array), one array for all */
const STATES = Object.freeze(['_parseHeader', '_parseLength', '_parsePayload', '_newPacket'])

/** M16: the parser's `_states` (its own array of the four state names) replaced by one shared array */
export function shareParserStates(client: Client): boolean {
  const p = internals(client)._parser
  if (p._states?.length !== STATES.length || !p._states.every((x, i) => x === STATES[i])) return false
  p._states = STATES
  return true
}

/** what a parser holds between packets instead of a Packet of its own: parse() and Aedes' nextBatch read only its length (-1: none begun) */
const IDLE_PACKET = Object.freeze({ cmd: null, length: -1 })
type Parse = (this: ParserInternals, buf: Buffer) => number
/** the parse every parser has when lightened (seam/mqtt-parser.ts guardedParse on a node), and mqtt-packet's Packet class */
let innerParse: Parse | undefined
let PacketClass: (new () => ParserInternals['packet']) | undefined

/** M17: a Packet made for the bytes that arrive; once a parse ends between packets, the idle stand-in again */
function lazyPacketParse(this: ParserInternals, buf: Buffer): number {
  if (this.packet === IDLE_PACKET) this.packet = new PacketClass!()
  const n = innerParse!.call(this, buf)
  // nothing of a next packet read (parser.js _newPacket left a fresh Packet): no Packet kept
  if (this.packet.cmd === null && this.packet.length === -1 && this.error === null) this.packet = IDLE_PACKET
  return n
}

/**
 * M17: parser.js makes the next Packet (`new Packet()`, cmd null, length -1) as soon as one is
 * emitted (_newPacket, and _resetState at start); an idle connection keeps it (~120 B, its fields
 * sized for a PUBLISH). Here the parser's `parse` (read at call time by Aedes' nextBatch) makes one
 * when bytes arrive and drops it when the parse ends without a next packet begun; parse() reads
 * `packet.length` first and its states write the Packet only inside parse. False where the
 * parser's parse is not the one the first parser had (it is left alone).
 */
export function packetOnlyWhileReading(client: Client): boolean {
  const p = internals(client)._parser
  const pk = p?.packet
  if (!pk || pk.cmd !== null || pk.length !== -1 || p.error !== null) return false
  innerParse ??= p.parse as Parse
  PacketClass ??= pk.constructor as unknown as typeof PacketClass
  if (p.parse !== innerParse || pk.constructor !== PacketClass) return false
  p.parse = lazyPacketParse
  p.packet = IDLE_PACKET
  return true
}

/** one settings object per protocol version (and bridge mode): what the parser reads of them */
const settingsByVersion = new Map<string, ParserInternals['settings']>()
/** M15: the parser keeps the CONNECT's protocol version and bridge mode, not the CONNECT packet */
export function forgetConnectPacket(client: Client): void {
  const p = internals(client)._parser
  const s = p?.settings
  if (!s || s.protocolVersion === undefined) return
  const key = `${s.protocolVersion}${s.bridgeMode ? 'b' : ''}`
  let shared = settingsByVersion.get(key)
  if (!shared) settingsByVersion.set(key, (shared = Object.freeze(s.bridgeMode ? { protocolVersion: s.protocolVersion, bridgeMode: true } : { protocolVersion: s.protocolVersion })))
  p.settings = shared
}

function lighten(client: Client): void {
  shareParserStates(client)
  packetOnlyWhileReading(client)
  shareParserListener(client)
  fastEvents(client)
  fastEvents(internals(client)._parser)
  // the socket's 'error' and 'end' listeners keep their order only without end-of-stream's after them
  if (closeOnStreamClose(client)) shareSocketListeners(client)
}
function afterConnack(_connack: unknown, client: Client): void {
  forgetConnectPacket(client)
}

/** every Client of `broker` from now on: the above, as the last installer, after its CONNACK, and its keepalive */
export function lightenIdleConnections(broker: Aedes): void {
  installOnEachClient(broker, 'idle', lighten)
  // C19: its TCP clients' end-of-stream watch, which lighten undoes, is not made at all
  skipEndOfStreamWatch(broker)
  sweepKeepalives(broker)
  ;(broker as unknown as Emitter).on('connackSent', afterConnack as Listener)
}
