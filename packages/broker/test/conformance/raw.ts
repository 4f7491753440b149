/**
 * A raw MQTT client for byte-level conformance checks, speaking protocol level 4 (3.1.1) or 5
 * (`Raw.open(port, 5)`, used by test/conformance-v5): writes packets (objects encoded by
 * mqtt-packet for that level, or exact bytes), and records every packet the server sends, its raw
 * bytes too, and when the server closed the connection. No retries, no automatic acks: what a
 * client library hides is visible here.
 */
import { createConnection, type Socket } from 'node:net'
import { once } from 'node:events'
import mqttPacket, { type Packet } from 'mqtt-packet'

/** a parsed packet; `frame` holds its exact bytes */
export type Any = Packet & Record<string, unknown> & { frame: Buffer }

/** length of the packet at the start of buf (fixed header included), if its header is complete */
function frameLength(buf: Buffer): number | undefined {
  let len = 0
  for (let i = 1, mul = 1; i < 5; i++, mul *= 128) {
    if (i >= buf.length) return undefined
    len += (buf[i]! & 0x7f) * mul
    if ((buf[i]! & 0x80) === 0) return i + 1 + len
  }
  return Infinity
}

const open = new Set<Raw>()

export class Raw {
  readonly packets: Any[] = []
  /** raw bytes received */
  bytes = Buffer.alloc(0)
  closed = false
  private read = 0
  private readonly parser: ReturnType<typeof mqttPacket.parser>
  private readonly closedP: Promise<void>

  private constructor(
    readonly sock: Socket,
    /** the protocol level packets are encoded and parsed for: 4 (MQTT 3.1.1) or 5 */
    readonly version: 4 | 5,
  ) {
    this.parser = mqttPacket.parser({ protocolVersion: version })
    open.add(this)
    let frame: Buffer = Buffer.alloc(0)
    this.parser.on('packet', (p: Packet) => {
      ;(p as Any).frame = frame
      this.packets.push(p as Any)
    })
    this.parser.on('error', () => {})
    let pending = Buffer.alloc(0)
    sock.on('data', (d: Buffer) => {
      this.bytes = Buffer.concat([this.bytes, d])
      pending = Buffer.concat([pending, d])
      // one whole packet at a time, so each parsed packet gets its exact bytes (`frame`)
      for (;;) {
        const len = frameLength(pending)
        if (len === undefined || pending.length < len) break
        frame = pending.subarray(0, len)
        pending = pending.subarray(len)
        this.parser.parse(frame)
      }
    })
    sock.on('error', () => {})
    this.closedP = once(sock, 'close').then(() => {
      this.closed = true
      open.delete(this)
    })
  }

  static async open(port: number, version: 4 | 5 = 4): Promise<Raw> {
    const sock = createConnection(port, '127.0.0.1')
    await once(sock, 'connect')
    sock.setNoDelay(true)
    return new Raw(sock, version)
  }

  /** send a packet object or exact bytes */
  send(p: Buffer | Record<string, unknown>): void {
    if (this.sock.destroyed) return
    this.sock.write(Buffer.isBuffer(p) ? p : mqttPacket.generate(p as unknown as Packet, { protocolVersion: this.version }))
  }

  /** the next packet not read yet (waits up to ms) */
  async next(ms = 3000): Promise<Any> {
    const end = Date.now() + ms
    while (this.read >= this.packets.length) {
      if (this.closed) throw new Error(`connection closed; waited for a packet after ${this.packets.map((p) => p.cmd).join(',') || 'nothing'}`)
      if (Date.now() > end) throw new Error(`no packet within ${ms} ms (got ${this.packets.map((p) => p.cmd).join(',') || 'nothing'})`)
      await new Promise((r) => setTimeout(r, 5))
    }
    return this.packets[this.read++]!
  }

  /** the next packet, which must be `cmd` */
  async expect(cmd: string, ms = 3000): Promise<Any> {
    const p = await this.next(ms)
    if (p.cmd !== cmd) throw new Error(`expected ${cmd}, got ${JSON.stringify(p)}`)
    return p
  }

  /** resolves once the server closed the connection; fails after ms */
  async closedBy(ms = 3000): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      this.closedP,
      new Promise((_r, reject) => (timer = setTimeout(() => reject(new Error(`server did not close the connection within ${ms} ms`)), ms))),
    ])
    clearTimeout(timer)
  }

  /** CONNECT (at this client's protocol level), then the CONNACK */
  async connect(opts: Record<string, unknown> = {}): Promise<Any> {
    this.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: this.version, clean: true, keepalive: 60, clientId: '', ...opts })
    return this.expect('connack')
  }

  /** SUBSCRIBE one filter (with v5 subscription options if given), then the SUBACK */
  async subscribe(topic: string, qos = 0, messageId = 1, options: Record<string, unknown> = {}): Promise<Any> {
    this.send({ cmd: 'subscribe', messageId, subscriptions: [{ topic, qos, ...options }] })
    return this.expect('suback')
  }

  /** a full publish flow as the client: QoS 1 waits for PUBACK, QoS 2 for PUBREC, PUBREL, PUBCOMP */
  async publish(topic: string, payload: string | Buffer, qos: 0 | 1 | 2 = 0, retain = false, messageId = 1, properties?: Record<string, unknown>): Promise<void> {
    this.send({ cmd: 'publish', topic, payload, qos, retain, dup: false, ...(qos ? { messageId } : {}), ...(properties ? { properties } : {}) })
    if (qos === 1) await this.expect('puback')
    if (qos === 2) {
      await this.expect('pubrec')
      this.send({ cmd: 'pubrel', messageId })
      await this.expect('pubcomp')
    }
  }

  /** DISCONNECT (v5: with a reason code and properties if given) and wait for the server to close */
  async disconnect(fields: Record<string, unknown> = {}): Promise<void> {
    this.send({ cmd: 'disconnect', ...fields })
    await this.closedBy()
  }

  /**
   * Every packet up to the first PUBLISH on `topic`, which is left out: publish a marker there
   * after the messages that must not arrive, then check what came before it (no sleep).
   */
  async until(topic: string, ms = 3000): Promise<Any[]> {
    const out: Any[] = []
    for (;;) {
      const p = await this.next(ms)
      if (p.cmd === 'publish' && p.topic === topic) return out
      out.push(p)
    }
  }

  /** packets received since the last read, without waiting */
  unread(): Any[] {
    const out = this.packets.slice(this.read)
    this.read = this.packets.length
    return out
  }

  /** wait `ms` and return what arrived meanwhile (for statements about what must NOT be sent) */
  async quiet(ms = 300): Promise<Any[]> {
    await new Promise((r) => setTimeout(r, ms))
    return this.unread()
  }

  destroy(): void {
    this.sock.destroy()
  }
}

export function destroyAll(): void {
  for (const r of open) r.destroy()
  open.clear()
}

/** one MQTT string: 2-byte length then bytes */
export function str(s: string | Buffer): Buffer {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s, 'utf8')
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b])
}

/** a packet from its first byte and body (remaining length < 128) */
export function pkt(first: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts)
  if (body.length > 127) throw new Error('pkt(): body too long for a one-byte length')
  return Buffer.concat([Buffer.from([first, body.length]), body])
}

/** CONNECT bytes: protocol name, level, flags, keepalive, then the payload fields given */
export function connectBytes(o: { name?: string; level?: number; flags?: number; keepalive?: number; payload?: Buffer[] } = {}): Buffer {
  const ka = o.keepalive ?? 60
  return pkt(0x10, str(o.name ?? 'MQTT'), Buffer.from([o.level ?? 4, o.flags ?? 0x02, ka >> 8, ka & 0xff]), ...(o.payload ?? [str('')]))
}
