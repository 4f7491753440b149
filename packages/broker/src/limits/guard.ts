/**
 * Per-connection guards Aedes 1.2 does not have, installed on each Client as
 * Aedes creates it (broker.handle is wrapped, so TCP, WebSocket and TLS
 * listeners all get them):
 *
 * - max packet size: mqtt-packet's parser buffers a whole packet before
 *   parsing it and accepts any remaining length up to 256 MiB, so one header
 *   could make the node hold 256 MiB per connection. The remaining length is
 *   checked as soon as it is decoded and a larger packet closes the
 *   connection before its body is buffered.
 * - well-formed UTF-8 [MQTT-1.5.3-1] and no U+0000 [MQTT-1.5.3-2] in every
 *   string field (topics, client id, username): mqtt-packet decodes invalid
 *   bytes to U+FFFD silently. Only strings that contain U+FFFD or U+0000 after
 *   decoding are re-checked byte by byte, so the common path costs one scan.
 * - slow consumers: Aedes hands each delivery to mqemitter, which waits for
 *   the subscriber's socket to drain before it finishes the message; one
 *   subscriber that stops reading holds emitter slots until they run out and
 *   every client on the node stalls (for up to drainTimeout). Here delivery
 *   returns at once; a client counts as slow when more than `maxQueued`
 *   messages wait for it and its socket has not drained for a second, or
 *   when `maxQueuedBytes` bytes are buffered for its socket. Beyond that QoS 0 messages
 *   are dropped and counted (culex_messages_dropped_total) and a QoS 1/2
 *   subscriber is disconnected: a persistent session keeps those messages in
 *   the session store and gets them on reconnect.
 * - packet fields: every packet leaving the parser is checked
 *   (limits/packet-check.ts) before Aedes handles it; a malformed one closes
 *   the connection [MQTT-4.8.0-1] and counts in
 *   culex_client_errors_total{reason="malformed_packet"}.
 * - containment: the parser, the handling of packets queued before CONNACK
 *   and each delivery run inside a try/catch that closes only that client
 *   (limits/client-faults.ts).
 */
import { isUtf8 } from 'node:buffer'
import type { Aedes } from 'aedes'
import type { Logger } from '../log.js'
import type { HotCounters } from '../ops/metrics.js'
import type { ClientFaults } from './client-faults.js'
import { packetViolation, type ParsedPacket } from './packet-check.js'

export interface GuardOptions {
  maxPacketSize: number
  maxQueued: number
  maxQueuedBytes: number
  counters: HotCounters
  log: Logger
  faults: ClientFaults
}

/** how long a socket may stay backed up with max_queued messages waiting before its client counts as slow */
const STUCK_MS = 1000
/** waiting messages beyond max_queued * HARD_FACTOR count as slow at once */
const HARD_FACTOR = 50

type Callback = (err?: Error | null) => void
type Deliver = (packet: { qos: number; topic: string }, cb: Callback) => void

/** the parts of Aedes' Client (lib/client.js) the guards touch */
interface AedesClientInternals {
  id: string | null
  conn: NodeJS.ReadableStream & NodeJS.WritableStream & { writableLength: number; destroy(err?: Error): void }
  _parser: ParserInternals
  deliver0: Deliver
  deliverQoS: Deliver
  listeners(event: string): Array<(...args: unknown[]) => void>
  removeListener(event: string, fn: (...args: unknown[]) => void): void
  once(event: string, fn: (...args: unknown[]) => void): void
}

/** the parts of mqtt-packet's Parser (parser.js) the guards touch */
interface ParserInternals {
  packet: ParsedPacket
  settings: { protocolVersion?: number }
  parse(buf: Buffer): number
  on(event: 'error', fn: (err: Error) => void): void
  _newPacket(): boolean
  _list: { toString(enc: 'utf8', start: number, end: number): string; slice(start: number, end: number): Buffer; length: number }
  _pos: number
  _parseLength(): boolean
  _parseNum(): number
  _parseString(): string | null
  _emitError(err: Error): void
  culexMaxPacketSize?: number
}

function guardedParseLength(this: ParserInternals, original: () => boolean): boolean {
  const ok = original.call(this)
  if (ok && this.packet.length > this.culexMaxPacketSize!) {
    this._emitError(new Error(`packet of ${this.packet.length} bytes is larger than max_packet_size ${this.culexMaxPacketSize}`))
    return false
  }
  return ok
}

/** mqtt-packet 9's _parseString plus the UTF-8 checks [MQTT-1.5.3-1] [MQTT-1.5.3-2]; null = malformed (the parser then closes) */
function guardedParseString(this: ParserInternals): string | null {
  const length = this._parseNum()
  const end = length + this._pos
  if (length === -1 || end > this._list.length || end > this.packet.length) return null
  const result = this._list.toString('utf8', this._pos, end)
  if (result.indexOf('\u0000') !== -1) return null
  if (result.indexOf('\uFFFD') !== -1 && !isUtf8(this._list.slice(this._pos, end))) return null
  this._pos += length
  return result
}

/**
 * The check of each parsed packet: mqtt-packet's `_newPacket` emits 'packet'
 * (to Aedes); it runs only for a packet that passes. `_pos` is how far the
 * fields went into the packet body.
 */
function checkedNewPacket(this: ParserInternals, original: () => boolean): boolean {
  const why = packetViolation(this.packet, this._pos, this.settings?.protocolVersion)
  if (why === undefined) return original.call(this)
  // [MQTT-4.8.0-1] Aedes closes the connection on a parser error; the packet is never emitted
  this._emitError(new Error(`malformed packet: ${why}`))
  return false
}

function guardParser(client: AedesClientInternals, opts: GuardOptions): void {
  const parser = client._parser
  const parseLength = parser._parseLength
  parser.culexMaxPacketSize = opts.maxPacketSize
  parser._parseLength = function () {
    return guardedParseLength.call(this, parseLength)
  }
  parser._parseString = guardedParseString
  const newPacket = parser._newPacket
  parser._newPacket = function () {
    return checkedNewPacket.call(this, newPacket)
  }
  let malformed = false
  parser.on('error', () => {
    if (malformed) return
    malformed = true
    opts.counters.clientErrors.malformed_packet++
  })
  // bytes -> packets -> Aedes' handlers run synchronously inside parse (lib/client.js nextBatch, enqueue)
  parser.parse = opts.faults.guard(client, 'packet handling', parser.parse, 0)
  // packets that arrived before CONNACK are handled by Aedes' 'connected' listener (lib/client.js dequeue)
  for (const listener of client.listeners('connected')) {
    client.removeListener('connected', listener)
    client.once('connected', opts.faults.guard(client, 'queued packet handling', listener, undefined))
  }
}

function guardDelivery(client: AedesClientInternals, opts: GuardOptions): void {
  const { maxQueued, maxQueuedBytes, counters, log, faults } = opts
  const conn = client.conn
  const deliver0 = client.deliver0
  const deliverQoS = client.deliverQoS
  let waiting = 0
  let cut = false
  // The node-wide total (counters.queuedDeliveries) drives the publish gate
  // (broker/backpressure.ts) and cluster back-pressure (cluster/bus.ts). It
  // counts only clients that read: a closed client's remainder leaves it at
  // once, and so does a stuck one's (below), so that one subscriber that
  // reads nothing can neither drift the total nor hold every publisher.
  let detached = false
  let counted = true
  const setCounted = (on: boolean): void => {
    if (on === counted || detached) return
    counted = on
    counters.queuedDeliveries += on ? waiting : -waiting
  }
  // one function per client, not per message: Aedes calls it once per delivery when the write is done
  const written: Callback = () => {
    if (detached) return
    waiting--
    if (counted) counters.queuedDeliveries--
  }
  const track = (): void => {
    if (detached) return
    waiting++
    if (counted) counters.queuedDeliveries++
  }
  // A client is slow only when its socket stays backed up: more than
  // `maxQueued` messages wait AND the socket has not drained for
  // STUCK_MS. A burst handed over in one turn (a batch from the Redis
  // emitter, say) to a client that reads is not a slow consumer: its socket
  // drains, which resets the clock. Bytes are bounded at once. The clock is a
  // timer, not only a check at the next delivery: while the publish gate
  // holds the publishers, no further delivery may come to notice it.
  let stuckTimer: NodeJS.Timeout | undefined
  const needsDrain = (): boolean => (conn as unknown as { writableNeedDrain: boolean }).writableNeedDrain
  const stuck = (): void => {
    stuckTimer = undefined
    if (needsDrain()) setCounted(false)
  }
  conn.on('drain', () => {
    clearTimeout(stuckTimer)
    stuckTimer = undefined
    setCounted(true)
  })
  conn.once('close', () => {
    clearTimeout(stuckTimer)
    if (counted) counters.queuedDeliveries -= waiting
    detached = true
    waiting = 0
  })
  const full = (): boolean => {
    if (conn.writableLength >= maxQueuedBytes) return true
    if (waiting < maxQueued) return false
    // far beyond the limit: cut whatever the cause, memory comes first
    if (waiting >= maxQueued * HARD_FACTOR) return true
    // the socket drains: the client reads, the node itself is behind (a burst)
    if (!needsDrain()) return false
    if (!counted) return true // stuck for STUCK_MS already
    stuckTimer ??= setTimeout(stuck, STUCK_MS)
    return false
  }

  const guarded0: Deliver = (packet, cb) => {
    if (full()) {
      counters.droppedQos0++
    } else {
      track()
      try {
        deliver0(packet, written)
      } catch (err) {
        // the emitter's loop serves every subscriber: this one's fault stays with it
        faults.fault(client, err, 'delivery')
      }
    }
    setImmediate(cb)
  }
  client.deliver0 = guarded0
  client.deliverQoS = (packet, cb) => {
    if (packet.qos === 0) return guarded0(packet, cb)
    if (full()) {
      if (!cut) {
        cut = true
        log.warn({ client: client.id, waiting, max_queued: maxQueued }, 'slow consumer: disconnecting a QoS 1/2 subscriber over its queue limit')
        conn.destroy()
      }
    } else {
      track()
      try {
        deliverQoS(packet, written)
      } catch (err) {
        faults.fault(client, err, 'delivery')
      }
    }
    setImmediate(cb)
  }
}

/** wrap broker.handle so every new connection gets the guards */
export function guardBroker(broker: Aedes, opts: GuardOptions): void {
  const handle = broker.handle
  broker.handle = (stream, req) => {
    const client = handle(stream, req)
    const internals = client as unknown as AedesClientInternals
    guardParser(internals, opts)
    guardDelivery(internals, opts)
    return client
  }
}
