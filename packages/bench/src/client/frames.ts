/**
 * The load client's reader of what the broker sends. The packets of the measured path (PUBLISH,
 * PUBACK, PUBREC, PUBREL, PUBCOMP) are decoded here, straight from the received bytes, with the
 * same code for MQTT 3.1.1 and 5 (an MQTT 5 property section is stepped over: the bench reads
 * no property; an ack's reason code is not read either, as before). Every other packet
 * (CONNACK, SUBACK, PINGRESP, DISCONNECT...) is handed whole to mqtt-packet's parser.
 *
 * Why (issue 11): mqtt-packet's stream parser (its `bl` buffer list, a Packet object and a
 * `debug` call or more per packet step) cost the generator about a third of its busy time, and
 * more per MQTT 5 packet than per 3.1.1 one (it parses and builds an object for every property
 * section, reads and checks each v5 ack's reason code), so the load generator's own v5 cost was
 * inside every v5 rate. A bench measures the broker.
 */

/** what a reader hands on */
export interface FrameSink {
  /** a PUBLISH: its topic, payload (a view of the received bytes), QoS and packet id (0 at QoS 0) */
  publish(topic: string, payload: Buffer, qos: number, messageId: number): void
  /** a PUBACK (4), PUBREC (5), PUBREL (6) or PUBCOMP (7) of `messageId` */
  ack(type: number, messageId: number): void
  /** any other packet, whole (fixed header included) */
  other(packet: Buffer): void
  /** bytes that are not MQTT (the connection should be closed) */
  malformed(err: Error): void
}

const PUBLISH = 3
const PUBACK = 4
const PUBCOMP = 7

export class FrameReader {
  /** bytes of a packet not complete yet, in arrival order */
  private held: Buffer[] = []
  private heldBytes = 0
  /** bytes the held packet needs in all (0 = its length is not known yet) */
  private need = 0
  private failed = false

  constructor(
    private readonly v5: boolean,
    private readonly sink: FrameSink,
  ) {}

  push(chunk: Buffer): void {
    if (this.failed) return
    let buf = chunk
    if (this.held.length > 0) {
      this.held.push(chunk)
      this.heldBytes += chunk.length
      if (this.need > 0 && this.heldBytes < this.need) return
      buf = Buffer.concat(this.held, this.heldBytes)
      this.held = []
      this.heldBytes = 0
    }
    let pos = 0
    const n = buf.length
    while (pos < n) {
      // the remaining length: 1 to 4 bytes, 7 bits each
      let i = pos + 1
      let length = 0
      let shift = 0
      let complete = false
      while (i < n && shift <= 21) {
        const byte = buf[i++]!
        length += (byte & 0x7f) * 2 ** shift
        shift += 7
        if ((byte & 0x80) === 0) {
          complete = true
          break
        }
      }
      if (!complete) {
        if (shift > 21) {
          this.fail(new Error('malformed remaining length'))
          return
        }
        this.hold(buf.subarray(pos), 0)
        return
      }
      const end = i + length
      if (end > n) {
        this.hold(buf.subarray(pos), end - pos)
        return
      }
      if (!this.frame(buf, pos, i, end)) return
      pos = end
    }
  }

  private hold(rest: Buffer, need: number): void {
    // a copy: the rest of a large chunk is not kept alive by a small packet's head
    const copy = Buffer.from(rest)
    this.held = [copy]
    this.heldBytes = copy.length
    this.need = need
  }

  private fail(err: Error): false {
    this.failed = true
    this.sink.malformed(err)
    return false
  }

  /** one whole packet: its first byte at `start`, its variable header at `body`, up to `end` */
  private frame(buf: Buffer, start: number, body: number, end: number): boolean {
    const first = buf[start]!
    const type = first >> 4
    if (type === PUBLISH) {
      const qos = (first >> 1) & 3
      if (qos === 3 || end - body < 2) return this.fail(new Error('malformed PUBLISH'))
      let p = body + 2 + ((buf[body]! << 8) | buf[body + 1]!)
      if (p > end) return this.fail(new Error('malformed PUBLISH topic'))
      const topic = buf.toString('utf8', body + 2, p)
      let id = 0
      if (qos > 0) {
        if (p + 2 > end) return this.fail(new Error('malformed PUBLISH packet id'))
        id = (buf[p]! << 8) | buf[p + 1]!
        p += 2
      }
      if (this.v5) {
        // the property section: its length, then as many bytes
        let props = 0
        let shift = 0
        let byte = 0x80
        while ((byte & 0x80) !== 0) {
          if (p >= end || shift > 21) return this.fail(new Error('malformed PUBLISH properties'))
          byte = buf[p++]!
          props += (byte & 0x7f) * 2 ** shift
          shift += 7
        }
        p += props
        if (p > end) return this.fail(new Error('malformed PUBLISH properties'))
      }
      this.sink.publish(topic, buf.subarray(p, end), qos, id)
      return !this.failed
    }
    if (type >= PUBACK && type <= PUBCOMP) {
      if (end - body < 2) return this.fail(new Error('malformed acknowledgement'))
      this.sink.ack(type, (buf[body]! << 8) | buf[body + 1]!)
      return !this.failed
    }
    this.sink.other(buf.subarray(start, end))
    return !this.failed
  }
}
