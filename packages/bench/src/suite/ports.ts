/** Free loopback ports and readiness probes. */
import net from 'node:net'
import { sleep } from '../engine/limit.js'

/**
 * `n` distinct free ports on 127.0.0.1. They come from below the kernel's ephemeral range
 * (32768-60999 on Linux): a port probed by binding port 0 comes from that range, which every
 * outgoing connection and every process started with port 0 also draws from, so it can be taken
 * before the broker we start binds it. Random ports in 20000-32000, checked free, do not race
 * with those.
 */
export async function freePorts(n: number): Promise<number[]> {
  const ports: number[] = []
  while (ports.length < n) {
    const port = 20000 + Math.floor(Math.random() * 12000)
    if (!ports.includes(port) && (await bindable(port))) ports.push(port)
  }
  return ports
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer()
    s.once('error', () => resolve(false))
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)))
  })
}

function tryConnect(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host })
    const done = (ok: boolean): void => {
      sock.destroy()
      resolve(ok)
    }
    sock.setTimeout(1000, () => done(false))
    sock.once('connect', () => done(true))
    sock.once('error', () => done(false))
  })
}

/** Resolves once something accepts TCP connections on host:port. */
export async function waitForPort(port: number, timeoutMs: number, alive: () => boolean, host = '127.0.0.1'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (!alive()) throw new Error('process exited before it listened')
    if (await tryConnect(port, host)) return
    await sleep(100)
  }
  throw new Error(`nothing listening on ${host}:${port} after ${timeoutMs} ms`)
}

/** Resolves once GET url answers 200. */
export async function waitForHttpOk(url: string, timeoutMs: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  while (Date.now() < deadline) {
    if (!alive()) throw new Error('process exited before it was ready')
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) })
      if (res.status === 200) return
      last = `HTTP ${res.status}`
    } catch (e) {
      last = (e as Error).message
    }
    await sleep(100)
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms (${last})`)
}

/** Resolves once a Redis server answers PING. */
export async function waitForRedis(port: number, timeoutMs: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (!alive()) throw new Error('redis-server exited')
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect({ port, host: '127.0.0.1' })
      let buf = ''
      sock.setTimeout(1000, () => sock.destroy())
      sock.on('connect', () => sock.write('PING\r\n'))
      sock.on('data', (d) => {
        buf += d.toString()
        if (buf.includes('\r\n')) {
          sock.destroy()
          resolve(buf.startsWith('+PONG'))
        }
      })
      sock.on('error', () => resolve(false))
      sock.on('close', () => resolve(false))
    })
    if (ok) return
    await sleep(100)
  }
  throw new Error(`redis on port ${port} did not answer PING after ${timeoutMs} ms`)
}
