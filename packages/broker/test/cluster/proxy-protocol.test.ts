/**
 * The PROXY protocol gate of a node (listeners/proxy-protocol.ts): a v1/v2 header is believed
 * only from trusted_proxies and refused from anyone else; the real address becomes
 * client.connDetails. In-process node, trusted_proxies = 127.0.0.1, "others" = 127.0.0.2.
 */
import { connect as netConnect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import mqttPacket from 'mqtt-packet'
import { MqttClient } from 'mqtt'
import { WebSocket, createWebSocketStream } from 'ws'
import { loadConfig, startNode, type CulexNode } from '../../src/main.js'
import { parseProxyHeader, trustList } from '../../src/listeners/proxy-protocol.js'
import { waitFor } from '../helpers/cluster-procs.js'

let node: CulexNode
const seen = new Map<string, Record<string, unknown> | null>()

beforeAll(async () => {
  node = await startNode(
    loadConfig({
      flags: { host: '127.0.0.1', mqtt_port: 0, ws_port: 0, http_port: 0, log_level: 'silent', trusted_proxies: '127.0.0.1', allow_anonymous: true },
    }),
  )
  node.broker.on('client', (c) => seen.set(c.id, (c as unknown as { connDetails: Record<string, unknown> | null }).connDetails))
})

afterAll(async () => {
  await node.close()
})

function v1(src: string, sport: number, dst = '127.0.0.1', dport = 1883): Buffer {
  return Buffer.from(`PROXY TCP4 ${src} ${dst} ${sport} ${dport}\r\n`)
}

const SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])
function v2(src: string, sport: number, opts: { local?: boolean; six?: boolean } = {}): Buffer {
  if (opts.local) return Buffer.concat([SIG, Buffer.from([0x20, 0x00, 0x00, 0x00])])
  if (opts.six) {
    const addr = Buffer.alloc(36)
    addr.write('20010db8000000000000000000000042', 0, 'hex')
    addr.write('00000000000000000000000000000001', 16, 'hex')
    addr.writeUInt16BE(sport, 32)
    addr.writeUInt16BE(1883, 34)
    return Buffer.concat([SIG, Buffer.from([0x21, 0x21, 0x00, 36]), addr])
  }
  const addr = Buffer.alloc(12)
  src.split('.').forEach((o, i) => addr.writeUInt8(Number(o), i))
  ;[127, 0, 0, 1].forEach((o, i) => addr.writeUInt8(o, 4 + i))
  addr.writeUInt16BE(sport, 8)
  addr.writeUInt16BE(1883, 10)
  return Buffer.concat([SIG, Buffer.from([0x21, 0x11, 0x00, 12]), addr])
}

const connectPacket = (clientId: string): Buffer =>
  mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 30 })

/** open a raw TCP connection from `from`, send the chunks (one write each); resolves 'connack' or 'closed' */
async function rawConnect(from: string, chunks: Buffer[]): Promise<'connack' | 'closed'> {
  const socket: Socket = netConnect({ host: '127.0.0.1', port: node.ports.mqtt, localAddress: from })
  await new Promise<void>((r) => socket.once('connect', () => r()))
  const result = new Promise<'connack' | 'closed'>((resolve) => {
    socket.on('data', (d) => {
      if (d[0] === 0x20) resolve('connack')
    })
    socket.on('close', () => resolve('closed'))
    socket.on('error', () => resolve('closed'))
  })
  for (const c of chunks) {
    socket.write(c)
    await new Promise((r) => setTimeout(r, 15))
  }
  const r = await Promise.race([result, new Promise<'closed'>((res) => setTimeout(() => res('closed'), 3000))])
  socket.destroy()
  return r
}

describe('PROXY protocol gate', () => {
  it('believes a v1 header from a trusted proxy: client.connDetails carries the real address', async () => {
    expect(await rawConnect('127.0.0.1', [Buffer.concat([v1('203.0.113.7', 40000), connectPacket('pp-v1')])])).toBe('connack')
    expect(seen.get('pp-v1')).toMatchObject({ ipAddress: '203.0.113.7', port: 40000, ipFamily: 4, isProxy: 1, isWebsocket: false })
  })

  it('believes a v2 header (IPv4 and IPv6) from a trusted proxy, even split over several TCP segments', async () => {
    const h = v2('198.51.100.9', 5555)
    expect(await rawConnect('127.0.0.1', [h.subarray(0, 3), h.subarray(3, 14), Buffer.concat([h.subarray(14), connectPacket('pp-v2')])])).toBe('connack')
    expect(seen.get('pp-v2')).toMatchObject({ ipAddress: '198.51.100.9', port: 5555, isProxy: 2 })
    expect(await rawConnect('127.0.0.1', [v2('', 6666, { six: true }), connectPacket('pp-v2-6')])).toBe('connack')
    expect(seen.get('pp-v2-6')).toMatchObject({ ipAddress: '2001:db8:0:0:0:0:0:42', port: 6666, ipFamily: 6 })
  })

  it('a v2 LOCAL header (the proxy\'s own connection) keeps the socket address', async () => {
    expect(await rawConnect('127.0.0.1', [v2('', 0, { local: true }), connectPacket('pp-local')])).toBe('connack')
    expect(seen.get('pp-local')).toBeNull()
  })

  it('refuses a PROXY header (v1 or v2) from an address not in trusted_proxies: closed before any CONNACK', async () => {
    expect(await rawConnect('127.0.0.2', [Buffer.concat([v1('10.9.9.9', 1234), connectPacket('pp-forged-v1')])])).toBe('closed')
    expect(await rawConnect('127.0.0.2', [Buffer.concat([v2('10.9.9.9', 1234), connectPacket('pp-forged-v2')])])).toBe('closed')
    // even the bare v2 signature is enough to refuse
    expect(await rawConnect('127.0.0.2', [SIG.subarray(0, 12)])).toBe('closed')
    expect(seen.has('pp-forged-v1')).toBe(false)
    expect(seen.has('pp-forged-v2')).toBe(false)
  })

  it('plain MQTT without a header works from anyone, trusted or not', async () => {
    expect(await rawConnect('127.0.0.2', [connectPacket('pp-plain-other')])).toBe('connack')
    expect(await rawConnect('127.0.0.1', [connectPacket('pp-plain-proxy')])).toBe('connack')
    expect(seen.get('pp-plain-other')).toBeNull()
  })

  it('closes a malformed header from a trusted proxy', async () => {
    expect(await rawConnect('127.0.0.1', [Buffer.from('PROXY TCP4 not-an-ip 127.0.0.1 1 2\r\n'), connectPacket('pp-bad')])).toBe('closed')
  })

  it('the WebSocket listener takes a v2 header before the HTTP upgrade (what HAProxy sends on 8443)', async () => {
    const open = (from: string, header: Buffer, clientId: string): Promise<boolean> => {
      const ws = new WebSocket(`ws://127.0.0.1:${node.ports.ws}/mqtt`, 'mqtt', {
        createConnection: () => {
          const s = netConnect({ host: '127.0.0.1', port: node.ports.ws, localAddress: from })
          s.write(header)
          return s
        },
      })
      const client = new MqttClient(() => createWebSocketStream(ws) as never, { clientId, reconnectPeriod: 0, protocolVersion: 4 })
      return new Promise<boolean>((resolve) => {
        client.once('connect', () => resolve(true))
        client.once('error', () => resolve(false))
        client.once('close', () => resolve(false))
        setTimeout(() => resolve(false), 3000)
      }).finally(() => client.end(true))
    }
    expect(await open('127.0.0.1', v2('192.0.2.44', 7777), 'pp-ws')).toBe(true)
    expect(seen.get('pp-ws')).toMatchObject({ ipAddress: '192.0.2.44', port: 7777, isProxy: 2, isWebsocket: true })
    expect(await open('127.0.0.2', v2('192.0.2.45', 7778), 'pp-ws-forged')).toBe(false)
    await waitFor(() => true)
    expect(seen.has('pp-ws-forged')).toBe(false)
  })

  it('parses only complete, well-formed headers and matches trusted_proxies by address or subnet', () => {
    expect(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4'))).toEqual({ kind: 'more' })
    expect(parseProxyHeader(Buffer.from([0x10, 0x00]))).toEqual({ kind: 'none' })
    expect(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n'))).toMatchObject({ kind: 'header', version: 1, length: 15 })
    expect(parseProxyHeader(Buffer.from(`PROXY TCP4 1.2.3.4 5.6.7.8 1 ${'9'.repeat(120)}`))).toMatchObject({ kind: 'invalid' })
    const trusted = trustList(['10.0.0.0/8', '127.0.0.1', '::1'])
    expect(['10.1.2.3', '::ffff:127.0.0.1', '::1'].map(trusted)).toEqual([true, true, true])
    expect(['11.0.0.1', '127.0.0.2', undefined].map(trusted)).toEqual([false, false, false])
    expect(() => trustList(['not-an-ip'])).toThrow(/trusted_proxies/)
  })
})
