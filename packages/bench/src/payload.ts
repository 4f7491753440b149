/**
 * Benchmark payload layout. Every message a load publisher sends starts with
 * a fixed 24-byte header, then zero padding up to the requested size:
 *
 *   0  u16  magic 0xCB42
 *   2  u8   layout version (1)
 *   3  u8   flags (bit 0: probe, not counted)
 *   4  u32  run id (ignore messages from other runs)
 *   8  u32  publisher id
 *  12  u32  sequence number (0, 1, 2, ... per publisher)
 *  16  u64  send time, process.hrtime.bigint() nanoseconds (CLOCK_MONOTONIC,
 *           shared by every thread and process on the host)
 */
export const HEADER_SIZE = 24
export const MAGIC = 0xcb42
export const LAYOUT_VERSION = 1
export const FLAG_PROBE = 1

export interface PayloadHeader {
  flags: number
  runId: number
  pubId: number
  seq: number
  sendNs: bigint
}

/** Writes the header at `offset` of `buf` (which must have room for it). */
export function writeHeader(buf: Buffer, offset: number, h: PayloadHeader): void {
  buf.writeUInt16BE(MAGIC, offset)
  buf.writeUInt8(LAYOUT_VERSION, offset + 2)
  buf.writeUInt8(h.flags, offset + 3)
  buf.writeUInt32BE(h.runId >>> 0, offset + 4)
  buf.writeUInt32BE(h.pubId >>> 0, offset + 8)
  buf.writeUInt32BE(h.seq >>> 0, offset + 12)
  buf.writeBigUInt64BE(h.sendNs, offset + 16)
}

/** A full payload of `size` bytes (>= HEADER_SIZE). */
export function encodePayload(size: number, h: PayloadHeader): Buffer {
  if (size < HEADER_SIZE) throw new RangeError(`payload size must be at least ${HEADER_SIZE} bytes`)
  const buf = Buffer.alloc(size)
  writeHeader(buf, 0, h)
  return buf
}

/** Reads a header, or null when the payload is not a culex-bench payload. */
export function decodePayload(buf: Buffer): PayloadHeader | null {
  if (buf.length < HEADER_SIZE) return null
  if (buf.readUInt16BE(0) !== MAGIC || buf.readUInt8(2) !== LAYOUT_VERSION) return null
  return {
    flags: buf.readUInt8(3),
    runId: buf.readUInt32BE(4),
    pubId: buf.readUInt32BE(8),
    seq: buf.readUInt32BE(12),
    sendNs: buf.readBigUInt64BE(16),
  }
}
