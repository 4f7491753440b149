/**
 * Pre-generated MQTT 3.1.1 / 5.0 packets. mqtt-packet builds each packet kind once;
 * the hot path copies the template and patches the packet id and payload
 * header, which is several times cheaper than generating every packet.
 */
import { generate } from 'mqtt-packet'
import type { Protocol, QoS } from '../options.js'
import { HEADER_SIZE, writeHeader, type PayloadHeader } from '../payload.js'

export class PublishTemplate {
  private readonly template: Buffer
  /** offset of the payload in the packet */
  readonly payloadOffset: number
  /** offset of the 2-byte packet id, -1 for QoS 0 */
  readonly idOffset: number

  constructor(
    readonly topic: string,
    readonly qos: QoS,
    readonly size: number,
    readonly protocol: Protocol = 4,
  ) {
    if (size < HEADER_SIZE) throw new RangeError(`--size must be at least ${HEADER_SIZE} bytes (the bench header)`)
    this.template = generate({
      cmd: 'publish',
      topic,
      qos,
      dup: false,
      retain: false,
      payload: Buffer.alloc(size),
      ...(qos > 0 ? { messageId: 1 } : {}),
    }, { protocolVersion: protocol }) // MQTT 5: an empty property section before the payload
    this.payloadOffset = this.template.length - size
    // the packet id comes just before the payload, or (MQTT 5) before the 1-byte empty property length
    this.idOffset = qos > 0 ? this.payloadOffset - 2 - (protocol === 5 ? 1 : 0) : -1
  }

  /** A fresh packet with the given id (ignored at QoS 0) and payload header. */
  build(messageId: number, h: PayloadHeader): Buffer {
    const b = Buffer.allocUnsafe(this.template.length)
    this.template.copy(b)
    if (this.idOffset >= 0) b.writeUInt16BE(messageId, this.idOffset)
    writeHeader(b, this.payloadOffset, h)
    return b
  }
}

type AckKind = 'puback' | 'pubrec' | 'pubrel' | 'pubcomp'
const ACK_TEMPLATES: Record<AckKind, Buffer> = {
  puback: generate({ cmd: 'puback', messageId: 1 }),
  pubrec: generate({ cmd: 'pubrec', messageId: 1 }),
  pubrel: generate({ cmd: 'pubrel', messageId: 1 }),
  pubcomp: generate({ cmd: 'pubcomp', messageId: 1 }),
}

export function ackPacket(kind: AckKind, messageId: number): Buffer {
  const t = ACK_TEMPLATES[kind]
  const b = Buffer.allocUnsafe(t.length)
  t.copy(b)
  b.writeUInt16BE(messageId, t.length - 2)
  return b
}

export const PINGREQ = generate({ cmd: 'pingreq' })
export const DISCONNECT = generate({ cmd: 'disconnect' })
