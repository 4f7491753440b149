/**
 * Half-open connections (listeners/tcp.ts, listeners/tls.ts: `allowHalfOpen`): the peer's FIN no
 * longer closes the server's side by itself; Aedes closes the connection (through seam row A19's
 * gate) and a socket not yet handed to Aedes is destroyed. Each kind of FIN still gets its socket
 * closed by the server (the client's socket sees 'close'), a FIN without DISCONNECT still has the
 * will published [MQTT-3.1.2-8], a DISCONNECT before it still discards the will [MQTT-3.14.4-3],
 * and nothing is left over: no client (`broker.connectedClients`, culex_clients_connected) and
 * no socket (max_connections: as many new connections as the cap are accepted afterwards).
 */
import { connect as netConnect, type Socket } from 'node:net'
import { once } from 'node:events'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Raw, destroyAll } from '../conformance/raw.js'
import { makeCerts, type TestCerts } from '../helpers/security-certs.js'
import { startTestNode, stopAll, tempDir } from '../helpers/security-node.js'
import { waitFor } from '../helpers/wait.js'
import type { CulexNode } from '../../src/main.js'

const MAX_CONNECTIONS = 4
let certs: TestCerts
let node: CulexNode
let sub: Raw

beforeAll(async () => {
  certs = makeCerts(tempDir())
  node = await startTestNode({
    tls_port: 0,
    tls_cert: certs.serverCert,
    tls_key: certs.serverKey,
    trusted_proxies: ['127.0.0.1'],
    max_connections: MAX_CONNECTIONS,
    // far above the bounds below: a close seen in time is not the connect timeout's
    connect_timeout_ms: 30_000,
  })
  sub = await Raw.open(node.ports.mqtt, 4)
  await sub.connect({ clientId: 'will-watch' })
  await sub.subscribe('will/#', 0)
})

afterAll(async () => {
  destroyAll()
  await stopAll()
})

/** a socket to `port` that sends `bytes` (if any), then its FIN; resolves once the server closed it too */
async function finAfter(port: number, bytes?: Buffer): Promise<void> {
  const s: Socket = netConnect({ port, host: '127.0.0.1' })
  s.on('error', () => {})
  await once(s, 'connect')
  if (bytes) s.write(bytes)
  s.end()
  await closedWithin(s)
}

/** the client's socket (allowHalfOpen false: it closes once the server's FIN came too) closed within `ms` */
async function closedWithin(s: { once(e: 'close', f: () => void): unknown }, ms = 3000): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    new Promise<void>((r) => s.once('close', () => r())),
    new Promise((_r, reject) => (timer = setTimeout(() => reject(new Error(`server did not close within ${ms} ms`)), ms))),
  ])
  clearTimeout(timer)
}

/** the next will the watcher gets */
async function nextWill(): Promise<string> {
  const p = await sub.expect('publish', 3000)
  return `${p.topic} ${String(p.payload)}`
}

describe('half-open connections: a FIN is answered by the server closing its side, once, without leaks', () => {
  it('[MQTT-3.1.2-8] MQTT 3.1.1 and 5 over TCP: FIN without DISCONNECT: the server closes the connection and publishes the will', async () => {
    for (const version of [4, 5] as const) {
      const c = await Raw.open(node.ports.mqtt, version)
      await c.connect({ clientId: `fin-${version}`, will: { topic: `will/fin-${version}`, payload: Buffer.from('gone'), qos: 0, retain: false } })
      c.sock.end()
      await c.closedBy()
      expect(await nextWill()).toBe(`will/fin-${version} gone`)
    }
  })

  it('[MQTT-3.14.4-3] MQTT 3.1.1 and 5 over TCP: DISCONNECT then FIN at once: closed, the will discarded', async () => {
    for (const version of [4, 5] as const) {
      const c = await Raw.open(node.ports.mqtt, version)
      await c.connect({ clientId: `disc-${version}`, will: { topic: `will/disc-${version}`, payload: Buffer.from('must not come'), qos: 0, retain: false } })
      c.send({ cmd: 'disconnect' })
      c.sock.end()
      await c.closedBy()
    }
    // a marker after the two closes: no will before it
    const m = await Raw.open(node.ports.mqtt, 4)
    await m.connect({ clientId: 'marker' })
    await m.publish('will/marker', 'mark')
    m.destroy()
    expect(await nextWill()).toBe('will/marker mark')
  })

  it('a FIN before CONNECT, in the middle of a PROXY header, and during a TLS handshake: closed at once, not at connect_timeout_ms', async () => {
    await finAfter(node.ports.mqtt)
    await finAfter(node.ports.mqtt, Buffer.from([0x10, 0x20, 0x00]))
    await finAfter(node.ports.mqtt, Buffer.from('PROXY TCP4 127.0.0.1 '))
    await finAfter(node.ports.tls!)
    await finAfter(node.ports.ws)
  })

  it('[MQTT-3.1.2-8] TLS and WebSocket: FIN (TLS close_notify, WebSocket close) without DISCONNECT: closed, will published', async () => {
    for (const [name, url] of [['tls', `mqtts://127.0.0.1:${node.ports.tls}`], ['ws', `ws://127.0.0.1:${node.ports.ws}/mqtt`]] as const) {
      const c = mqtt.connect(url, { clientId: `fin-${name}`, rejectUnauthorized: false, reconnectPeriod: 0, will: { topic: `will/fin-${name}`, payload: Buffer.from('gone'), qos: 0, retain: false } })
      await new Promise((resolve, reject) => c.once('connect', resolve).once('error', reject))
      // the client's end of the stream without DISCONNECT (mqtt.js end() would send one)
      c.stream.end()
      await closedWithin(c)
      expect(await nextWill()).toBe(`will/fin-${name} gone`)
    }
  })

  it('afterwards no client and no socket is left: connectedClients and culex_clients_connected count only the watcher, and max_connections new connections are all accepted', async () => {
    await waitFor(() => node.broker.connectedClients === 1, 3000, 'only the watcher connected')
    const metrics = await (await fetch(`http://127.0.0.1:${node.ports.http}/metrics`)).text()
    expect(/^culex_clients_connected (\d+)$/m.exec(metrics)?.[1]).toBe('1')
    sub.destroy()
    await waitFor(() => node.broker.connectedClients === 0, 3000, 'no client connected')
    const all = await Promise.all(
      Array.from({ length: MAX_CONNECTIONS }, async (_, i) => {
        const c = await Raw.open(node.ports.mqtt, 4)
        return (await c.connect({ clientId: `after-${i}` })).returnCode
      }),
    )
    expect(all).toEqual(Array(MAX_CONNECTIONS).fill(0))
  })
})
