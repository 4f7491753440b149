/**
 * Hostile input against a real node (the built CLI, as deployed), each case
 * while a well-behaved client keeps publishing QoS 1 to itself on the same
 * node: it must lose nothing and stay connected.
 */
import { randomBytes } from 'node:crypto'
import mqttPacket from 'mqtt-packet'
import { connect as netConnect } from 'node:net'
import { once } from 'node:events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Canary, connackOf, connect, metric, rawConnected, rawSocket, sleep, spawnNode, stopAll, suback, waitFor, type SpawnedNode } from '../helpers/security-node.js'

/**
 * How long a case waits for the node to close a connection (or for a packet that must not come):
 * a bound, not a sleep (closedWithin returns at the close), generous for a loaded machine
 */
const CLOSE_MS = 5000

let node: SpawnedNode
let url: string
let canary: Canary
let watcherGot: string[]

beforeAll(async () => {
  node = await spawnNode({
    connect_timeout_ms: 1000,
    max_packet_size: 65536,
    max_topic_length: 128,
    max_topic_levels: 8,
    max_inflight: 10,
    max_queued_bytes: 1048576,
    max_connects_per_s_per_ip: 0,
  })
  url = `mqtt://127.0.0.1:${node.ports.mqtt}`
  canary = await Canary.start(url)
  // a subscriber to everything: no malformed publish may ever reach it
  const watcher = await connect(url, { clientId: 'watcher' })
  await watcher.subscribeAsync('#', { qos: 0 })
  watcherGot = []
  watcher.on('message', (t) => {
    if (!t.startsWith('canary/')) watcherGot.push(t)
  })
})

afterAll(async () => {
  try {
    // the well-behaved client lived through every case
    if (canary) expect((await canary.finish()).lost).toBe(0)
  } finally {
    await stopAll()
  }
})

async function healthy(): Promise<void> {
  const before = canary.got.size
  await waitFor(() => canary.got.size >= before + 3, 10_000, 'canary still round-trips')
  expect(canary.connected).toBe(true)
  expect(node.exited()).toBe(false)
}

/** PUBLISH bytes with a raw topic (to send what a correct encoder refuses to write) */
function rawPublish(topic: Buffer, payload = Buffer.from('x')): Buffer {
  const body = Buffer.concat([Buffer.from([topic.length >> 8, topic.length & 255]), topic, payload])
  return Buffer.concat([Buffer.from([0x30, body.length]), body])
}

describe('hostile input', () => {
  it('survives random bytes on 100 connections', async () => {
    for (let batch = 0; batch < 10; batch++) {
      await Promise.all(
        Array.from({ length: 10 }, async () => {
          const s = netConnect({ port: node.ports.mqtt, host: '127.0.0.1' })
          s.on('error', () => {})
          await once(s, 'connect')
          s.write(randomBytes(1 + Math.floor(Math.random() * 2048)))
          await Promise.race([once(s, 'close'), sleep(1500)])
          s.destroy()
        }),
      )
    }
    await healthy()
  })

  it('closes a connection whose packet announces a remaining length beyond max_packet_size before buffering its body', async () => {
    const raw = await rawConnected(node.ports.mqtt)
    // PUBLISH, remaining length 268435455 (the MQTT maximum)
    raw.write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]))
    expect(await raw.closedWithin(CLOSE_MS)).toBe(true)
    const raw2 = await rawConnected(node.ports.mqtt)
    raw2.write(Buffer.concat([Buffer.from([0x30, 0x81, 0x80, 0x04]), Buffer.alloc(1000)])) // 65537 bytes announced
    expect(await raw2.closedWithin(CLOSE_MS)).toBe(true)
    await healthy()
  })

  it('[MQTT-3.3.2-2] closes a connection that publishes to a topic with + or #, delivering nothing', async () => {
    for (const topic of ['a/+/b', 'a/#', '#']) {
      const raw = await rawConnected(node.ports.mqtt)
      raw.write(rawPublish(Buffer.from(topic)))
      expect(await raw.closedWithin(CLOSE_MS)).toBe(true)
    }
    await healthy()
    expect(watcherGot).toEqual([])
  })

  it('[MQTT-1.5.3-1] [MQTT-1.5.3-2] closes a connection that sends invalid UTF-8 or U+0000 in a topic, delivering nothing', async () => {
    for (const topic of [Buffer.from([0x61, 0x2f, 0xff, 0xfe]), Buffer.from([0x61, 0xed, 0xa0, 0x80]), Buffer.from([0x61, 0x00, 0x62])]) {
      const raw = await rawConnected(node.ports.mqtt)
      raw.write(rawPublish(topic))
      expect(await raw.closedWithin(CLOSE_MS)).toBe(true)
    }
    // a CONNECT with an invalid UTF-8 client id gets no CONNACK
    const raw = await rawSocket(node.ports.mqtt)
    const id = Buffer.from([0xc3, 0x28])
    const body = Buffer.concat([Buffer.from([0, 4]), Buffer.from('MQTT'), Buffer.from([4, 2, 0, 30, 0, id.length]), id])
    raw.write(Buffer.concat([Buffer.from([0x10, body.length]), body]))
    expect(await raw.next('connack', CLOSE_MS)).toBeUndefined()
    expect(raw.closed).toBe(true)
    // well-formed non-ASCII topics still work
    const ok = await connect(url)
    const got: string[] = []
    ok.on('message', (t) => got.push(t))
    await ok.subscribeAsync('unicode/ü/€/𝄞', { qos: 1 })
    await ok.publishAsync('unicode/ü/€/𝄞', 'x', { qos: 1 })
    await waitFor(() => got.length === 1, 2000, 'non-ASCII topic round trip')
    await healthy()
    expect(watcherGot.filter((t) => !t.startsWith('unicode/'))).toEqual([])
  })

  it('[MQTT-3.1.0-1] closes a connection whose first packet is not CONNECT', async () => {
    const raw = await rawSocket(node.ports.mqtt)
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '#', qos: 0 }] })
    expect(await raw.closedWithin(CLOSE_MS)).toBe(true)
    const raw2 = await rawSocket(node.ports.mqtt)
    raw2.write(rawPublish(Buffer.from('before/connect')))
    expect(await raw2.closedWithin(CLOSE_MS)).toBe(true)
    await healthy()
    expect(watcherGot).not.toContain('before/connect')
  })

  it('[MQTT-3.1.0-2] closes a connection that sends a second CONNECT', async () => {
    const raw = await rawConnected(node.ports.mqtt, { clientId: 'twice' })
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId: 'twice' })
    expect(await raw.closedWithin(CLOSE_MS)).toBe(true)
    await healthy()
  })

  it('[MQTT-3.8.3-4] closes a connection that subscribes with QoS 3', async () => {
    const raw = await rawConnected(node.ports.mqtt)
    const topic = Buffer.from('a/b')
    const body = Buffer.concat([Buffer.from([0, 7, 0, topic.length]), topic, Buffer.from([3])])
    raw.write(Buffer.concat([Buffer.from([0x82, body.length]), body]))
    expect(await raw.next('suback', CLOSE_MS)).toBeUndefined()
    expect(raw.closed).toBe(true)
    await healthy()
  })

  it('closes a socket that opens and sends nothing after connect_timeout_ms, and one that stops halfway through CONNECT', async () => {
    const idle = await rawSocket(node.ports.mqtt)
    const t0 = Date.now()
    expect(await idle.closedWithin(10_000)).toBe(true)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(800)
    const half = await rawSocket(node.ports.mqtt)
    half.write(Buffer.from([0x10, 0x20, 0x00, 0x04, 0x4d])) // the first bytes of a CONNECT
    expect(await half.closedWithin(10_000)).toBe(true)
    await healthy()
  })

  it('enforces max_topic_length and max_topic_levels: publish closes, subscribe gets 0x80 or closes', async () => {
    const c = await connect(url)
    expect(await suback(c, ['x'.repeat(129), 'ok/topic'])).toEqual([128, 1])
    const raw = await rawConnected(node.ports.mqtt)
    raw.write(rawPublish(Buffer.from('y'.repeat(129))))
    expect(await raw.closedWithin(CLOSE_MS)).toBe(true)
    const raw2 = await rawConnected(node.ports.mqtt)
    raw2.write(rawPublish(Buffer.from('1/2/3/4/5/6/7/8/9')))
    expect(await raw2.closedWithin(CLOSE_MS)).toBe(true)
    await healthy()
    expect(watcherGot).toEqual(expect.not.arrayContaining(['y'.repeat(129), '1/2/3/4/5/6/7/8/9']))
  })

  it('closes a client with more than max_inflight inbound QoS 2 messages awaiting PUBREL', async () => {
    const raw = await rawConnected(node.ports.mqtt)
    for (let i = 1; i <= 11; i++) raw.send({ cmd: 'publish', topic: 'q2/flood', payload: Buffer.from('x'), qos: 2, messageId: i })
    expect(await raw.closedWithin(CLOSE_MS)).toBe(true)
    await healthy()
  })

  it('keeps memory bounded while a subscriber that never reads gets 10,000 messages, dropping QoS 0 (counted)', async () => {
    const slow = await rawConnected(node.ports.mqtt, { clientId: 'slowpoke' })
    slow.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'firehose/#', qos: 0 }] })
    await slow.next('suback')
    slow.socket.pause() // never read again
    const dropped0 = await metric(node.ports.http, 'culex_messages_dropped_total')
    const pub = await connect(url)
    const payload = Buffer.alloc(4096, 7)
    const rss: number[] = [await metric(node.ports.http, 'process_resident_memory_bytes')]
    for (let half = 0; half < 2; half++) {
      for (let i = 0; i < 5_000; i++) {
        pub.publish('firehose/data', payload, { qos: 0 })
        if (i % 200 === 199) await sleep(5) // let the publisher's own socket drain
      }
      await pub.publishAsync('firehose/end', 'x', { qos: 1 })
      await sleep(300)
      rss.push(await metric(node.ports.http, 'process_resident_memory_bytes'))
    }
    const dropped = (await metric(node.ports.http, 'culex_messages_dropped_total')) - dropped0
    const mb = (n: number): number => Math.round(n / 1048576)
    console.log(`slow subscriber: ${dropped} of 10000 dropped; RSS ${rss.map(mb).join(' -> ')} MB`)
    // 40 MB went to a subscriber that reads nothing. Unbounded, each 20 MB would wait in the node;
    // bounded, at most max_queued_bytes (1 MB) waits for it (plus kernel buffers), whatever the volume
    expect(dropped).toBeGreaterThan(5000)
    // the process as a whole: the second 20 MB did not stay (garbage not yet collected on a loaded
    // machine counts too, up to 13 MB seen at load 22, so the bound is what unbounded would add)
    expect(rss[2]! - rss[1]!).toBeLessThan(20 * 1048576)
    expect(rss[2]! - rss[0]!).toBeLessThan(64 * 1048576)
    await healthy()
    slow.destroy()
  })
})

describe('slow QoS 1 subscriber', () => {
  it('disconnects a QoS 1 subscriber that reads nothing once max_queued_bytes wait for it, and logs it', async () => {
    const slow = await rawConnected(node.ports.mqtt, { clientId: 'slow-qos1' })
    slow.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'firehose1/#', qos: 1 }] })
    await slow.next('suback')
    slow.socket.pause()
    const connected0 = await metric(node.ports.http, 'culex_clients_connected')
    const pub = await connect(url)
    const payload = Buffer.alloc(4096, 1)
    for (let i = 0; i < 3000; i += 100) {
      await Promise.all(Array.from({ length: 100 }, () => pub.publishAsync('firehose1/data', payload, { qos: 1 })))
    }
    await waitFor(async () => (await metric(node.ports.http, 'culex_clients_connected')) === connected0, 10_000, 'slow subscriber disconnected')
    expect(node.out.join('')).toMatch(/"client":"slow-qos1".*slow consumer/)
    await healthy()
    slow.destroy()
  })
})

/**
 * the most connects 5/s with a burst of 10 lets through in `ms` (the test's own measure, longer than
 * the node's): 13 when they all came within about half a second, as on a quiet machine
 */
const rateBound = (ms: number): number => Math.max(13, 10 + Math.ceil((5 * ms) / 1000) + 1)

describe('connection limits', () => {
  it('refuses sockets beyond max_connections, idle ones included, without affecting a connected client', async () => {
    const small = await spawnNode({ max_connections: 10 })
    const c = await Canary.start(`mqtt://127.0.0.1:${small.ports.mqtt}`)
    const sockets = await Promise.all(
      Array.from({ length: 15 }, async () => {
        const s = netConnect({ port: small.ports.mqtt, host: '127.0.0.1' })
        s.on('error', () => {})
        await once(s, 'connect')
        return s
      }),
    )
    // the canary holds one of the 10: the node closes 6 at once (the 9 it took stay open, idle, until connect_timeout_ms)
    const refused = (): number => sockets.filter((s) => s.destroyed || s.readableEnded).length
    await waitFor(() => refused() >= 6, 10_000, 'six sockets refused')
    expect(refused()).toBe(6)
    for (const s of sockets) s.destroy()
    // room again once they are gone: a CONNECT gets in as soon as the node has seen the closes
    let code: number | 'closed' = 'closed'
    await waitFor(async () => (code = (await connackOf(small.ports.mqtt)).code) === 0, 10_000, 'a connection accepted again')
    expect(code).toBe(0)
    const result = await c.finish()
    expect(result.lost).toBe(0)
    expect(c.connected).toBe(true)
  })

  it('refuses connects beyond max_connects_per_s_per_ip from one address, not from others', async () => {
    const small = await spawnNode({ max_connects_per_s_per_ip: 5 })
    const c = await Canary.start(`mqtt://127.0.0.1:${small.ports.mqtt}`)
    const t0 = Date.now()
    const results = await Promise.all(Array.from({ length: 30 }, () => connackOf(small.ports.mqtt, { localAddress: '127.0.0.3' })))
    const accepted = results.filter((r) => r.code === 0).length
    // a burst of 2 x 5/s, then about 5 per second (over however long a loaded machine took for the 30)
    expect(accepted).toBeGreaterThanOrEqual(8)
    expect(accepted).toBeLessThanOrEqual(rateBound(Date.now() - t0))
    expect(results.filter((r) => r.code === 'closed').length).toBe(30 - accepted)
    // another address is not affected
    expect((await connackOf(small.ports.mqtt, { localAddress: '127.0.0.4' })).code).toBe(0)
    const result = await c.finish()
    expect(result.lost).toBe(0)
  })

  it('limits the real client address a trusted proxy reports with PROXY protocol, not the proxy\'s own', async () => {
    const small = await spawnNode({ max_connects_per_s_per_ip: 5, trusted_proxies: '127.0.0.1' })
    const connect = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId: '' } as mqttPacket.Packet)
    const viaProxy = async (client: string): Promise<boolean> => {
      const raw = await rawSocket(small.ports.mqtt)
      raw.write(Buffer.concat([Buffer.from(`PROXY TCP4 ${client} 127.0.0.1 40000 1883\r\n`), connect]))
      const ack = await raw.next('connack', 2000)
      raw.destroy()
      return ack?.returnCode === 0
    }
    const t0 = Date.now()
    const results = await Promise.all(Array.from({ length: 30 }, () => viaProxy('203.0.113.7')))
    const accepted = results.filter(Boolean).length
    expect(accepted).toBeGreaterThanOrEqual(8)
    expect(accepted).toBeLessThanOrEqual(rateBound(Date.now() - t0))
    // other clients behind the same proxy are not affected
    expect(await viaProxy('203.0.113.8')).toBe(true)
    expect((await connackOf(small.ports.mqtt)).code).toBe(0)
  })
})
