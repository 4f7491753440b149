/**
 * A minimal MQTT 3.1.1 / 5.0 client on raw transports, built for load: no
 * reconnects, no queues, no promises on the hot path. Publishers keep a
 * bounded in-flight window of QoS 1/2 publishes; subscribers acknowledge
 * QoS 1 (PUBACK) and QoS 2 (PUBREC/PUBCOMP, delivering each packet id once).
 */
import { EventEmitter } from 'node:events'
import { generate, parser, type Packet } from 'mqtt-packet'
import type { Protocol, QoS } from '../options.js'
import type { PayloadHeader } from '../payload.js'
import { parseTarget, type Target } from '../targets.js'
import { openTransport, type Transport } from './transport.js'
import { ackPacket, DISCONNECT, PINGREQ, type PublishTemplate } from './packets.js'
import { FrameReader } from './frames.js'

export interface ClientOptions {
  url: string | Target
  clientId: string
  keepaliveS: number
  /** 4 = MQTT 3.1.1 (default), 5 = MQTT 5.0 */
  protocol?: Protocol
  clean?: boolean
  username?: string
  password?: string
  ca?: string
  insecure?: boolean
  localAddress?: string
  connectTimeoutMs?: number
}

export type MessageHandler = (topic: string, payload: Buffer, qos: QoS) => void

const CONNACK_CODES: Record<number, string> = {
  1: 'unacceptable protocol version',
  2: 'identifier rejected',
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized',
}

/** MQTT 5 CONNACK reason codes a load client may meet */
const CONNACK_REASONS_V5: Record<number, string> = {
  0x80: 'unspecified error',
  0x84: 'unsupported protocol version',
  0x85: 'client identifier not valid',
  0x86: 'bad user name or password',
  0x87: 'not authorized',
  0x88: 'server unavailable',
  0x89: 'server busy',
  0x8c: 'bad authentication method',
  0x97: 'quota exceeded',
}

// publisher-side packet id states
const FREE = 0
const WAIT_PUBACK = 1
const WAIT_PUBREC = 2
const WAIT_PUBCOMP = 3
const WAIT_SUBACK = 4

// packet types (the high nibble of the first byte)
const PUBACK = 4
const PUBREC = 5
const PUBREL = 6
const PUBCOMP = 7

export class RawClient extends EventEmitter {
  /** QoS 1/2 publishes sent and not yet acknowledged */
  inflight = 0
  closed = false
  /** true once close() was called (a close before that is a drop) */
  closing = false
  onMessage: MessageHandler | null = null
  /** called each time a QoS 1/2 publish completes */
  onAck: (() => void) | null = null
  private readonly ids = new Uint8Array(65536)
  private readonly awaitingRel = new Uint8Array(65536)
  private nextId = 1
  private readonly subacks = new Map<number, { resolve: (granted: number[]) => void; reject: (e: Error) => void }>()
  private connack: { resolve: () => void; reject: (e: Error) => void } | null = null
  private pingTimer: NodeJS.Timeout | null = null

  private constructor(
    private readonly transport: Transport,
    readonly protocol: Protocol,
  ) {
    super()
    const p = parser({ protocolVersion: protocol })
    const fail = (err: Error): void => {
      this.emit('protocol-error', err)
      this.transport.destroy()
    }
    p.on('packet', (pk: Packet) => this.onPacket(pk))
    p.on('error', fail)
    // PUBLISH and its acks decoded by the reader, the same way for both versions; the rest by mqtt-packet (frames.ts)
    const reader = new FrameReader(protocol === 5, {
      publish: (topic, payload, qos, id) => this.onPublish(topic, payload, qos as QoS, id),
      ack: (type, id) => this.onAckPacket(type, id),
      other: (packet) => p.parse(packet),
      malformed: fail,
    })
    transport.on('data', (b: Buffer) => reader.push(b))
    transport.on('drain', () => this.emit('drain'))
    transport.on('close', (err?: Error) => this.onClose(err))
  }

  static async connect(o: ClientOptions): Promise<RawClient> {
    const target = typeof o.url === 'string' ? parseTarget(o.url) : o.url
    const timeout = o.connectTimeoutMs ?? 10_000
    const transport = await openTransport({
      target,
      connectTimeoutMs: timeout,
      ...(o.ca ? { ca: o.ca } : {}),
      ...(o.insecure ? { insecure: true } : {}),
      ...(o.localAddress ? { localAddress: o.localAddress } : {}),
    })
    const c = new RawClient(transport, o.protocol ?? 4)
    const username = o.username ?? target.username
    const password = o.password ?? target.password
    await c.handshake(
      {
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: c.protocol,
        clientId: o.clientId,
        clean: o.clean ?? true,
        keepalive: o.keepaliveS,
        ...(username !== undefined ? { username } : {}),
        ...(password !== undefined ? { password: Buffer.from(password) } : {}),
      },
      timeout,
    )
    if (o.keepaliveS > 0) {
      c.pingTimer = setInterval(() => c.transport.write(PINGREQ), (o.keepaliveS * 1000) / 2)
      c.pingTimer.unref()
    }
    return c
  }

  get buffered(): number {
    return this.transport.buffered
  }

  private handshake(connect: Packet, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.transport.destroy()
        reject(new Error(`no CONNACK within ${timeoutMs} ms`))
      }, timeoutMs)
      this.connack = {
        resolve: () => {
          clearTimeout(timer)
          resolve()
        },
        reject: (e) => {
          clearTimeout(timer)
          this.transport.destroy()
          reject(e)
        },
      }
      this.transport.write(generate(connect, { protocolVersion: this.protocol }))
    })
  }

  subscribe(filter: string, qos: QoS, timeoutMs = 10_000): Promise<number> {
    const id = this.allocId(WAIT_SUBACK)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.subacks.delete(id)
        reject(new Error(`no SUBACK for "${filter}" within ${timeoutMs} ms`))
      }, timeoutMs)
      this.subacks.set(id, {
        resolve: (granted) => {
          clearTimeout(timer)
          const g = granted[0] ?? 0x80
          if (g >= 0x80) reject(new Error(`subscription to "${filter}" refused`))
          else resolve(g)
        },
        reject: (e) => {
          clearTimeout(timer)
          reject(e)
        },
      })
      this.transport.write(generate({ cmd: 'subscribe', messageId: id, subscriptions: [{ topic: filter, qos }] }, { protocolVersion: this.protocol }))
    })
  }

  /** Publishes one message; QoS 1/2 take a slot of the in-flight window until acknowledged. */
  publish(tpl: PublishTemplate, h: PayloadHeader): void {
    const id = tpl.qos === 0 ? 0 : this.allocId(tpl.qos === 1 ? WAIT_PUBACK : WAIT_PUBREC)
    if (tpl.qos > 0) this.inflight++
    this.transport.write(tpl.build(id, h))
  }

  private allocId(state: number): number {
    for (let i = 0; i < 65535; i++) {
      const id = this.nextId
      this.nextId = id === 65535 ? 1 : id + 1
      if (this.ids[id] === FREE) {
        this.ids[id] = state
        return id
      }
    }
    throw new Error('no free packet id')
  }

  private complete(id: number): void {
    this.ids[id] = FREE
    this.inflight--
    this.onAck?.()
  }

  private onPublish(topic: string, payload: Buffer, qos: QoS, id: number): void {
    if (qos === 1) this.transport.write(ackPacket('puback', id))
    else if (qos === 2) {
      this.transport.write(ackPacket('pubrec', id))
      if (this.awaitingRel[id]) return // already delivered, waiting for PUBREL
      this.awaitingRel[id] = 1
    }
    this.onMessage?.(topic, payload, qos)
  }

  /** PUBACK 4, PUBREC 5, PUBREL 6, PUBCOMP 7 (an MQTT 5 reason code is not read) */
  private onAckPacket(type: number, id: number): void {
    switch (type) {
      case PUBACK:
        if (this.ids[id] === WAIT_PUBACK) this.complete(id)
        return
      case PUBREC:
        if (this.ids[id] === WAIT_PUBREC || this.ids[id] === WAIT_PUBCOMP) {
          this.ids[id] = WAIT_PUBCOMP
          this.transport.write(ackPacket('pubrel', id))
        }
        return
      case PUBREL:
        this.awaitingRel[id] = 0
        this.transport.write(ackPacket('pubcomp', id))
        return
      case PUBCOMP:
        if (this.ids[id] === WAIT_PUBCOMP) this.complete(id)
        return
    }
  }

  /** the packets frames.ts hands to mqtt-packet */
  private onPacket(pk: Packet): void {
    switch (pk.cmd) {
      case 'suback': {
        const id = pk.messageId ?? 0
        const s = this.subacks.get(id)
        if (s) {
          this.subacks.delete(id)
          this.ids[id] = FREE
          s.resolve(pk.granted as number[])
        }
        return
      }
      case 'connack': {
        const code = pk.returnCode ?? pk.reasonCode ?? 0
        const c = this.connack
        this.connack = null
        if (!c) return
        if (code === 0) c.resolve()
        else {
          const name = (this.protocol === 5 ? CONNACK_REASONS_V5 : CONNACK_CODES)[code]
          c.reject(new Error(`connection refused: ${name ?? `code 0x${code.toString(16)}`}`))
        }
        return
      }
      default:
        return
    }
  }

  private onClose(err?: Error): void {
    if (this.closed) return
    this.closed = true
    if (this.pingTimer) clearInterval(this.pingTimer)
    const e = err ?? new Error('connection closed')
    this.connack?.reject(e)
    this.connack = null
    for (const s of this.subacks.values()) s.reject(e)
    this.subacks.clear()
    this.emit('close', err)
  }

  /** Sends DISCONNECT and closes; resolves once closed (forcibly after timeoutMs). */
  close(timeoutMs = 2000): Promise<void> {
    this.closing = true
    if (this.closed) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.transport.destroy()
        resolve()
      }, timeoutMs)
      this.once('close', () => {
        clearTimeout(timer)
        resolve()
      })
      this.transport.write(DISCONNECT)
      process.nextTick(() => this.transport.end())
    })
  }

  destroy(): void {
    this.closing = true
    this.transport.destroy()
  }
}
