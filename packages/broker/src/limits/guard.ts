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
 */
import { isUtf8 } from 'node:buffer'
import type { Aedes } from 'aedes'
import { boundReads } from '../broker/backpressure.js'
import { guardDelivery, type AedesClientInternals, type DeliveryOptions } from './delivery.js'

export interface GuardOptions extends DeliveryOptions {
  maxPacketSize: number
}

/** the parts of mqtt-packet's Parser (parser.js) the guards touch */
interface ParserInternals {
  packet: { length: number }
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

function guardParser(parser: ParserInternals, maxPacketSize: number): void {
  const parseLength = parser._parseLength
  parser.culexMaxPacketSize = maxPacketSize
  parser._parseLength = function () {
    return guardedParseLength.call(this, parseLength)
  }
  parser._parseString = guardedParseString
}

/** wrap broker.handle so every new connection gets the guards */
export function guardBroker(broker: Aedes, opts: GuardOptions): void {
  const handle = broker.handle
  broker.handle = (stream, req) => {
    const client = handle(stream, req)
    const internals = client as unknown as AedesClientInternals & { _parser: ParserInternals }
    guardParser(internals._parser, opts.maxPacketSize)
    guardDelivery(internals, opts)
    boundReads(internals.conn)
    return client
  }
}
