/**
 * PUBACK, PUBREC, PUBREL and PUBCOMP as Aedes writes them, encoded here in one buffer and one
 * `stream.write` instead of by mqtt-packet 9's writeToStream `confirmation` (3 writes for MQTT
 * 3.1.1, 5 for an MQTT 5 ack without a reason code: header, length, packet id, reason code as a
 * `Buffer.from([...])`, property length as another), each through every write wrapper (issue 11:
 * the v5 PUBACK doubled the writes per QoS 1 message). Row M12 in docs/internals.md;
 * test/seam/contract-acks.test.ts compares the bytes with mqtt-packet's `generate`.
 *
 * mqtt-packet's rules: MQTT 5 without properties writes the reason code and an empty property
 * section unless the reason code is 0, which is omitted with the properties (§3.4.2.1, §3.5.2.1,
 * §3.6.2.1, §3.7.2.1: "can be omitted if the Reason Code is 0x00 (Success) and there are no
 * Properties", a Remaining Length of 2). One difference: an ack without a reason code (Aedes'
 * PubAck, PubRec, PubRel, PubComp: every success) is that success, so it goes out as the 2-byte
 * form too, as Mosquitto writes it, where mqtt-packet writes `40 04 id id 00 00` (issue 11: 2
 * bytes more per v5 ack, and a reason code and a property section for every v5 client to read,
 * where a 3.1.1 client reads the same 4 bytes as now). A reason code on a 3.1.1 ack is ignored.
 * Anything else (properties, a DUP PUBREL, a packet id or reason code out of range) is left to
 * mqtt-packet.
 */

const FIRST: Record<string, number> = {
  puback: 0x40,
  pubrec: 0x50,
  // [MQTT-3.6.1-1] PUBREL's fixed header flags are 0010
  pubrel: 0x62,
  pubcomp: 0x70,
}

interface Ack {
  cmd: string
  messageId?: unknown
  reasonCode?: unknown
  properties?: unknown
  dup?: unknown
}

/**
 * Write the ack to `stream`; undefined (nothing written) when it is left to mqtt-packet. Returns
 * true as mqtt-packet's `confirmation` does, whatever the write returned (Aedes waits for
 * 'drain' on false: an ack never did that before, it does not now).
 */
export function writeAck(packet: Ack, stream: { write(chunk: Buffer): boolean }, opts?: { protocolVersion?: number }): boolean | undefined {
  const size = ackSize(packet, opts)
  if (size === 0) return undefined
  const buf = Buffer.allocUnsafe(size)
  putAck(buf, 0, packet, size)
  stream.write(buf)
  return true
}

/**
 * Write `packets` (acks, in order) to `stream` in one buffer and one `stream.write` when writeAck
 * encodes each of them (the PUBACKs a cluster bus batch releases together to one publisher,
 * broker/puback-after-publish.ts: one chunk for the socket instead of one per PUBACK); false
 * (nothing written) when one of them is left to mqtt-packet. The bytes are writeAck's, one after
 * the other.
 */
export function writeAcks(packets: readonly Ack[], stream: { write(chunk: Buffer): boolean }, opts?: { protocolVersion?: number }): boolean {
  let total = 0
  for (let i = 0; i < packets.length; i++) {
    const size = ackSize(packets[i]!, opts)
    if (size === 0) return false
    total += size
  }
  const buf = Buffer.allocUnsafe(total)
  let o = 0
  for (let i = 0; i < packets.length; i++) {
    const size = ackSize(packets[i]!, opts)
    putAck(buf, o, packets[i]!, size)
    o += size
  }
  stream.write(buf)
  return true
}

/** the bytes of the ack as writeAck writes it: 4 or 6, 0 when it is left to mqtt-packet */
function ackSize(packet: Ack, opts?: { protocolVersion?: number }): number {
  if (FIRST[packet.cmd] === undefined) return 0
  const id = packet.messageId
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 65_535) return 0
  if (opts !== undefined && opts.protocolVersion === 5) {
    if (packet.properties !== undefined || (packet.dup && packet.cmd === 'pubrel')) return 0
    const rc = packet.reasonCode
    if (rc !== undefined && !(typeof rc === 'number' && Number.isInteger(rc) && rc >= 0 && rc <= 255)) return 0
    // no reason code: Aedes' success ack, as 0x00 (the 2-byte form)
    return rc !== undefined && rc !== 0 ? 6 : 4
  }
  if (packet.dup && packet.cmd === 'pubrel') return 0
  return 4
}

/** the ack at `o` of `buf` (`size` from ackSize): header, remaining length, packet id[, reason code, empty properties] */
function putAck(buf: Buffer, o: number, packet: Ack, size: number): void {
  const id = packet.messageId as number
  buf[o] = FIRST[packet.cmd]!
  buf[o + 1] = size - 2
  buf[o + 2] = id >> 8
  buf[o + 3] = id & 0xff
  if (size === 6) {
    buf[o + 4] = packet.reasonCode as number
    // an empty property section
    buf[o + 5] = 0
  }
}
