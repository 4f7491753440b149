/**
 * A raw MQTT 3.1.1 client over mqtt-packet for tests that must see what mqtt.js hides: the DUP
 * bit, packet identifiers, and a client that never acknowledges. Nothing is sent unless the test
 * sends it (no PUBACK/PUBREC/PINGREQ unless asked for). Every client made here is closed by `closeRaw()`.
 */
import { connect as netConnect, type Socket } from 'node:net'
import { once } from 'node:events'
import mqttPacket from 'mqtt-packet'

export type AnyPacket = mqttPacket.Packet & Record<string, any>

export interface Raw {
  socket: Socket
  /** every packet received so far, in order */
  packets: AnyPacket[]
  /** PUBLISH packets received so far */
  publishes(): AnyPacket[]
  send(packet: Record<string, unknown>): void
  /** wait until `cond` holds over the packets received (fails after ms) */
  until(cond: (packets: AnyPacket[]) => boolean, ms?: number, what?: string): Promise<void>
  /** close the TCP connection without DISCONNECT (the session stays, unacknowledged messages stay in flight) */
  drop(): Promise<void>
  closed: boolean
}

const open = new Set<Raw>()

export interface RawOptions {
  clientId: string
  clean?: boolean
  keepalive?: number
  /** PUBACK every QoS 1 PUBLISH on arrival, as a client library does */
  autoAck?: boolean
  /** called with each packet as it is parsed, before any waiter sees it */
  onPacket?: (p: AnyPacket) => void
  /** 4 (MQTT 3.1.1, the default) or 5: packets are parsed and written at that level */
  protocolVersion?: 4 | 5
  /** MQTT 5 CONNECT properties */
  properties?: Record<string, unknown>
  username?: string
  password?: string
  /** the CONNECT's will (mqtt-packet's fields: topic, payload, qos, retain, properties) */
  will?: Record<string, unknown>
  /** packets written in the same write as the CONNECT, before any CONNACK */
  pipelined?: Array<Record<string, unknown>>
}

export async function rawClient(port: number, opts: RawOptions): Promise<{ raw: Raw; connack: AnyPacket }> {
  const socket = netConnect({ port, host: '127.0.0.1' })
  socket.on('error', () => {})
  await once(socket, 'connect')
  const protocolVersion = opts.protocolVersion ?? 4
  const parser = mqttPacket.parser({ protocolVersion })
  const packets: AnyPacket[] = []
  const waiters = new Set<() => void>()
  const wake = (): void => {
    for (const w of [...waiters]) w()
  }
  parser.on('packet', (p) => {
    packets.push(p as AnyPacket)
    opts.onPacket?.(p as AnyPacket)
    if (opts.autoAck && p.cmd === 'publish' && p.qos === 1) raw.send({ cmd: 'puback', messageId: p.messageId })
    wake()
  })
  parser.on('error', () => socket.destroy())
  socket.on('data', (d) => parser.parse(d))
  const raw: Raw = {
    socket,
    packets,
    closed: false,
    publishes: () => packets.filter((p) => p.cmd === 'publish'),
    send: (p) => void socket.write(mqttPacket.generate(p as unknown as mqttPacket.Packet, { protocolVersion })),
    until: (cond, ms = 5000, what = 'packets') =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (cond(packets)) finish()
          else if (raw.closed) finish(new Error(`connection closed while waiting for ${what}`))
        }
        const timer = setTimeout(() => finish(new Error(`timed out after ${ms} ms waiting for ${what} (${packets.length} packets)`)), ms)
        const finish = (err?: Error): void => {
          clearTimeout(timer)
          waiters.delete(check)
          if (err) reject(err)
          else resolve()
        }
        waiters.add(check)
        check()
      }),
    drop: async () => {
      if (raw.closed) return
      const closed = once(socket, 'close')
      socket.destroy()
      await closed
    },
  }
  socket.on('close', () => {
    raw.closed = true
    open.delete(raw)
    wake()
  })
  open.add(raw)
  const connect = { cmd: 'connect', protocolId: 'MQTT', protocolVersion, clean: opts.clean ?? true, keepalive: opts.keepalive ?? 0, clientId: opts.clientId, properties: opts.properties, will: opts.will, username: opts.username, password: opts.password === undefined ? undefined : Buffer.from(opts.password) }
  socket.write(Buffer.concat([connect, ...(opts.pipelined ?? [])].map((p) => mqttPacket.generate(p as unknown as mqttPacket.Packet, { protocolVersion }))))
  await raw.until((ps) => ps.some((p) => p.cmd === 'connack'), 5000, 'CONNACK')
  const connack = packets.find((p) => p.cmd === 'connack')!
  const code = protocolVersion === 5 ? connack.reasonCode : connack.returnCode
  if (code !== 0) throw new Error(`CONNECT refused: ${code}`)
  return { raw, connack }
}

/** SUBSCRIBE and wait for the SUBACK */
export async function rawSubscribe(raw: Raw, topic: string, qos: 0 | 1 | 2, messageId = 1): Promise<void> {
  raw.send({ cmd: 'subscribe', messageId, subscriptions: [{ topic, qos }] })
  await raw.until((ps) => ps.some((p) => p.cmd === 'suback' && p.messageId === messageId), 5000, 'SUBACK')
}

export async function closeRaw(): Promise<void> {
  await Promise.all([...open].map((r) => r.drop()))
}
