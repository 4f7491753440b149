/** Free loopback ports and readiness probes. */
import net from 'node:net'
import { sleep } from '../engine/limit.js'

/** `n` distinct free ports on 127.0.0.1 (bound to port 0 together, then released). */
export async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = []
  try {
    for (let i = 0; i < n; i++) {
      const s = net.createServer()
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject)
        s.listen(0, '127.0.0.1', () => resolve())
      })
      servers.push(s)
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port)
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  }
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
