/**
 * The seam to mqtt-packet 9's parser buffer (docs/internals.md, row M14): the parser's `_list`, a
 * `bl` BufferList (parser.js `_resetState`), replaced on each connection's parser by a ReadBuffer
 * with the part of bl's interface parser.js uses (`length`, `append`, `consume`, `readUInt8`,
 * `readUInt16BE`, `readUInt32BE`, `slice`, `toString`) and `get`, which seam M13's property
 * parser reads (mqtt-parse-props.ts). test/seam/contract-parser.test.ts checks that
 * parser.js uses no other method and parses through it as through bl.
 *
 * Why (issue 15): the read loop hands the parser what the socket holds as one Buffer (Aedes
 * lib/client.js nextBatch: `conn.read(null)`), mostly whole packets. bl keeps a list of buffers
 * and makes a new Buffer (a `subarray`) of the first one on every `consume`: three per packet
 * (header, length, body), plus a `slice` per read of a field. Here a read is an offset into one
 * Buffer: nothing is made per packet but the payload and the topic, as before (the payload is a
 * view of the read Buffer with bl too). Bytes of a packet not complete yet are kept as a list and
 * joined once, when the parser reads them (what bl's `slice` copies across buffers), so a large
 * packet arriving in many reads is copied once, not once per read. It is also smaller per
 * connection than bl's BufferListStream (a Duplex with its states and `_events`).
 * Upstream could do the same in parser.js (no issue found).
 */

import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const EMPTY = Buffer.alloc(0)

export class ReadBuffer {
  /** bytes of the buffer: `buf` from `off`, then `more` */
  length = 0
  private buf: Buffer = EMPTY
  private off = 0
  /** buffers appended while bytes were left, joined at the next read */
  private more: Buffer[] | null = null

  append(b: Buffer): this {
    if (b.length === 0) return this
    if (this.length === 0) {
      this.buf = b
      this.off = 0
    } else (this.more ??= []).push(b)
    this.length += b.length
    return this
  }

  consume(bytes: number): this {
    bytes = Math.trunc(bytes)
    if (Number.isNaN(bytes) || bytes <= 0) return this
    if (bytes >= this.length) {
      this.buf = EMPTY
      this.off = 0
      this.more = null
      this.length = 0
      return this
    }
    this.flat()
    this.off += bytes
    this.length -= bytes
    return this
  }

  /** the byte at `index`, undefined outside the bytes (bl's `get`; read by seam M13, mqtt-parse-props.ts) */
  get(index: number): number | undefined {
    if (!(index >= 0) || index >= this.length) return undefined
    if (this.off + index < this.buf.length) return this.buf[this.off + index]
    return this.flat()[this.off + index]
  }

  readUInt8(offset: number): number {
    return this.at(offset, 1).readUInt8(this.off + offset)
  }

  readUInt16BE(offset: number): number {
    return this.at(offset, 2).readUInt16BE(this.off + offset)
  }

  readUInt32BE(offset: number): number {
    return this.at(offset, 4).readUInt32BE(this.off + offset)
  }

  /** bytes start..end (bl's bounds: clamped to 0..length), a view of the read Buffer */
  slice(start = 0, end = this.length): Buffer {
    if (!(start >= 0)) start = 0
    if (end > this.length) end = this.length
    if (start >= this.length || end <= start) return EMPTY
    const buf = this.flat()
    return start === 0 && end === this.length && this.off === 0 ? buf : buf.subarray(this.off + start, this.off + end)
  }

  toString(encoding?: BufferEncoding, start = 0, end = this.length): string {
    return this.slice(start, end).toString(encoding)
  }

  /** the buffer holding bytes offset..offset+size (a read past the end throws RangeError, as bl's does) */
  private at(offset: number, size: number): Buffer {
    if (offset < 0 || offset + size > this.length) throw new RangeError(`offset ${offset} out of range of ${this.length} bytes`)
    return this.off + offset + size <= this.buf.length ? this.buf : this.flat()
  }

  /** join the bytes left and the buffers appended since, once */
  private flat(): Buffer {
    if (this.more) {
      this.buf = Buffer.concat([this.buf.subarray(this.off), ...this.more])
      this.off = 0
      this.more = null
    }
    return this.buf
  }
}

/** the parser of one connection reads through a ReadBuffer (its `_list`; a parser made by parsersWithReadBuffer has one already) */
export function readThroughBuffer(parser: { _list: unknown }): void {
  if (!(parser._list instanceof ReadBuffer)) parser._list = new ReadBuffer()
}

type ParserClass = new () => { parser(opt?: unknown): unknown; packet: unknown; error: unknown; _list: unknown; _stateCounter: number }
let factoryInstalled = false

/**
 * M14, at construction: mqtt-packet's `parser()` export called without options (how Aedes'
 * lib/client.js constructor makes each connection's parser; read at call time on the module's
 * exports) makes a parser whose `_resetState` (parser.js: a new Packet, no error, `_list = bl()`,
 * state 0; run by `parser()` and after an error) gives it a ReadBuffer instead of bl's
 * BufferListStream, which readThroughBuffer replaced right after (a Duplex stream with its two
 * states built for nothing on every CONNECT: ~1.1 KB and 2-3 µs, issue 15). A call with options
 * (MQTT.js clients in the same process) gets mqtt-packet's own parser. Once per process.
 */
export function parsersWithReadBuffer(): void {
  if (factoryInstalled) return
  factoryInstalled = true
  const mqtt = require('mqtt-packet') as { parser: (opt?: unknown) => unknown }
  const Parser = require('mqtt-packet/parser.js') as ParserClass
  const Packet = require('mqtt-packet/packet.js') as new () => unknown
  class ReadBufferParser extends Parser {
    _resetState(): void {
      this.packet = new Packet()
      this.error = null
      this._list = new ReadBuffer()
      this._stateCounter = 0
    }
  }
  const own = mqtt.parser
  mqtt.parser = function parser(opt?: unknown): unknown {
    return opt === undefined ? new ReadBufferParser().parser() : own(opt)
  }
}
