/**
 * A raw MQTT connection to a node over TCP or WebSocket: bytes out exactly as
 * given, the node's packets parsed as they come back. Used by the fuzzer and
 * the malformed-packet tests.
 */
import { connect as netConnect } from 'node:net'
import mqttPacket from 'mqtt-packet'
import { WebSocket } from 'ws'

export type Transport = 'tcp' | 'ws'
export type ServerPacket = mqttPacket.Packet & Record<string, any>

export interface RawConn {
  write(bytes: Buffer): void
  /** called for each packet the node sends */
  onPacket: (p: ServerPacket) => void
  readonly closed: Promise<void>
  isClosed(): boolean
  destroy(): void
}

/**
 * connect to a node's MQTT port (tcp) or WebSocket port (ws, path /mqtt); rejects when it cannot.
 * `protocolVersion`: how the node's packets are read (5: with properties and reason codes)
 */
export function openRaw(transport: Transport, port: number, timeoutMs = 5000, protocolVersion: 4 | 5 = 4): Promise<RawConn> {
  return new Promise((resolve, reject) => {
    const parser = mqttPacket.parser({ protocolVersion })
    let closed = false
    let markClosed!: () => void
    const closedP = new Promise<void>((r) => (markClosed = r))
    const close = (): void => {
      if (closed) return
      closed = true
      clearTimeout(timer)
      markClosed()
      reject(new Error('closed before it opened'))
    }
    const conn: RawConn = {
      write: () => {},
      onPacket: () => {},
      closed: closedP,
      isClosed: () => closed,
      destroy: () => {},
    }
    parser.on('packet', (p) => conn.onPacket(p as ServerPacket))
    const timer = setTimeout(() => {
      conn.destroy()
      reject(new Error(`${transport} connect to ${port} timed out`))
    }, timeoutMs)
    if (transport === 'tcp') {
      const s = netConnect({ port, host: '127.0.0.1', noDelay: true })
      s.on('error', () => {})
      s.on('close', close)
      s.on('data', (d) => parser.parse(d))
      parser.on('error', () => s.destroy())
      conn.write = (b) => void (closed || s.write(b))
      conn.destroy = () => s.destroy()
      s.once('connect', () => {
        clearTimeout(timer)
        resolve(conn)
      })
    } else {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/mqtt`, 'mqtt')
      ws.binaryType = 'nodebuffer'
      ws.on('error', () => {})
      ws.on('close', close)
      ws.on('message', (d) => parser.parse(d as Buffer))
      parser.on('error', () => ws.terminate())
      conn.write = (b) => void (closed || ws.readyState !== WebSocket.OPEN || ws.send(b))
      conn.destroy = () => ws.terminate()
      ws.once('open', () => {
        clearTimeout(timer)
        resolve(conn)
      })
    }
  })
}

/** the next packet of type `cmd` on `conn` (undefined when it closes first or after `ms`) */
export function nextPacket(conn: RawConn, cmd: string, ms = 3000): Promise<ServerPacket | undefined> {
  return new Promise((resolve) => {
    const prev = conn.onPacket
    const done = (p: ServerPacket | undefined): void => {
      clearTimeout(timer)
      conn.onPacket = prev
      resolve(p)
    }
    const timer = setTimeout(() => done(undefined), ms)
    conn.onPacket = (p) => {
      prev(p)
      if (p.cmd === cmd) done(p)
    }
    void conn.closed.then(() => done(undefined))
  })
}

/** whether `conn` closes within `ms` */
export async function closesWithin(conn: RawConn, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const closed = await Promise.race([conn.closed.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))])
  clearTimeout(timer)
  return closed
}
