/**
 * Byte transports for the load clients: TCP (net), TLS (tls) and WebSocket
 * (ws). Writes made in one tick are batched: corked sockets are flushed with
 * one writev, WebSocket writes go out as one binary frame (MQTT over
 * WebSocket allows several packets per frame).
 */
import net from 'node:net'
import tls from 'node:tls'
import { EventEmitter } from 'node:events'
import WebSocket from 'ws'
import type { Target } from '../targets.js'

export interface TransportOptions {
  target: Target
  ca?: string
  insecure?: boolean
  localAddress?: string
  connectTimeoutMs: number
}

export interface Transport extends EventEmitter {
  /** bytes handed to write() that the kernel has not taken yet */
  readonly buffered: number
  write(buf: Buffer): void
  end(): void
  destroy(): void
  // events: 'data' (Buffer), 'drain', 'close' (Error | undefined)
}

class SocketTransport extends EventEmitter implements Transport {
  private corked = false
  private closed = false
  constructor(private readonly socket: net.Socket) {
    super()
    socket.setNoDelay(true)
    socket.on('data', (b: Buffer) => this.emit('data', b))
    socket.on('drain', () => this.emit('drain'))
    socket.on('error', (err) => this.finish(err))
    socket.on('close', () => this.finish(undefined))
  }
  get buffered(): number {
    return this.socket.writableLength
  }
  write(buf: Buffer): void {
    if (this.closed) return
    if (!this.corked) {
      this.corked = true
      this.socket.cork()
      process.nextTick(() => {
        this.corked = false
        this.socket.uncork()
      })
    }
    this.socket.write(buf)
  }
  end(): void {
    this.socket.end()
  }
  destroy(): void {
    this.socket.destroy()
  }
  private finish(err: Error | undefined): void {
    if (this.closed) return
    this.closed = true
    this.emit('close', err)
  }
}

const WS_LOW_WATER = 64 * 1024

class WsTransport extends EventEmitter implements Transport {
  private pending: Buffer[] = []
  private pendingBytes = 0
  private inFlightBytes = 0
  private closed = false
  private wantDrain = false
  constructor(private readonly ws: WebSocket) {
    super()
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
      this.emit('data', Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data))
    })
    ws.on('error', (err) => this.finish(err))
    ws.on('close', () => this.finish(undefined))
  }
  get buffered(): number {
    return this.pendingBytes + this.inFlightBytes
  }
  write(buf: Buffer): void {
    if (this.closed) return
    if (this.pending.length === 0) process.nextTick(() => this.flush())
    this.pending.push(buf)
    this.pendingBytes += buf.length
  }
  private flush(): void {
    if (this.pending.length === 0 || this.closed) return
    const frame = this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending, this.pendingBytes)
    this.pending = []
    this.pendingBytes = 0
    this.inFlightBytes += frame.length
    this.wantDrain = true
    this.ws.send(frame, { binary: true, compress: false }, () => {
      this.inFlightBytes -= frame.length
      if (this.wantDrain && this.buffered < WS_LOW_WATER) {
        this.wantDrain = false
        this.emit('drain')
      }
    })
  }
  end(): void {
    this.flush()
    this.ws.close()
  }
  destroy(): void {
    this.ws.terminate()
  }
  private finish(err: Error | undefined): void {
    if (this.closed) return
    this.closed = true
    this.emit('close', err)
  }
}

/** Opens a transport; rejects on error or after connectTimeoutMs. */
export function openTransport(o: TransportOptions): Promise<Transport> {
  const { target } = o
  return new Promise((resolve, reject) => {
    let settled = false
    let cleanup: () => void = () => {}
    const fail = (err: Error): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      cleanup()
      reject(err)
    }
    const timer = setTimeout(() => fail(new Error(`connect timeout after ${o.connectTimeoutMs} ms`)), o.connectTimeoutMs)
    const done = (t: Transport): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(t)
    }
    if (target.protocol === 'mqtt' || target.protocol === 'mqtts') {
      const base = { host: target.host, port: target.port, ...(o.localAddress ? { localAddress: o.localAddress } : {}) }
      const socket =
        target.protocol === 'mqtt'
          ? net.connect(base)
          : tls.connect({
              ...base,
              servername: net.isIP(target.host) ? undefined : target.host,
              ...(o.ca ? { ca: o.ca } : {}),
              rejectUnauthorized: !o.insecure,
            })
      cleanup = () => socket.destroy()
      socket.once('error', fail)
      socket.once(target.protocol === 'mqtt' ? 'connect' : 'secureConnect', () => {
        socket.removeListener('error', fail)
        done(new SocketTransport(socket))
      })
    } else {
      const url = `${target.protocol}://${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}${target.path}`
      const ws = new WebSocket(url, ['mqtt'], {
        perMessageDeflate: false,
        handshakeTimeout: o.connectTimeoutMs,
        ...(o.localAddress ? { localAddress: o.localAddress } : {}),
        ...(o.ca ? { ca: o.ca } : {}),
        rejectUnauthorized: !o.insecure,
      })
      cleanup = () => ws.terminate()
      ws.once('error', fail)
      ws.once('open', () => {
        ws.removeListener('error', fail)
        done(new WsTransport(ws))
      })
    }
  })
}
