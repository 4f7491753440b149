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
 * - slow consumers and the byte accounting of what waits for each client:
 *   limits/delivery.ts; reads in small chunks: broker/backpressure.ts.
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
import { boundReads, type ReadLoop } from '../broker/backpressure.js'
import { guardDelivery, type AedesClientInternals as AedesDeliveryInternals, type DeliveryOptions } from './delivery.js'
import { packetViolation, type ParsedPacket } from './packet-check.js'

export interface GuardOptions extends DeliveryOptions {
  maxPacketSize: number
}

/** the parts of Aedes' Client (lib/client.js) the parser guards touch (delivery.ts: the delivery ones) */
interface AedesClientInternals {
  id: string | null
  conn: NodeJS.ReadableStream & { read(size?: number): unknown; readableLength?: number; destroy(err?: Error): void }
  _parser: ParserInternals
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

/** wrap broker.handle so every new connection gets the guards */
export function guardBroker(broker: Aedes, opts: GuardOptions): void {
  const handle = broker.handle
  broker.handle = (stream, req) => {
    const client = handle(stream, req)
    const internals = client as unknown as AedesClientInternals
    guardParser(internals, opts)
    guardDelivery(client as unknown as AedesDeliveryInternals, opts)
    boundReads(client as unknown as ReadLoop)
    return client
  }
}
