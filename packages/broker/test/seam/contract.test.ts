/**
 * Contract of the seam with Aedes (docs/internals.md, rows A* and C*): one test per internal
 * the seam relies on, named after it, against a stock Aedes broker and raw MQTT clients. An
 * upgrade that removes or changes one fails the test that names it. mqtt-packet: contract-parser;
 * mqemitter, aedes-persistence(-redis), qlobber, ioredis: contract-stores.
 */
import { connect as netConnect, type Socket } from 'node:net'
import { once } from 'node:events'
import mqttPacket from 'mqtt-packet'
import { afterEach, describe, expect, it } from 'vitest'
import type { Client } from 'aedes'
import { createRequire } from 'node:module'
import * as seam from '../../src/seam/index.js'
import { closeRaw, rawClient, rawSubscribe } from '../helpers/raw-mqtt.js'
import { closeStock, eventually, stockBroker } from './stock.js'

const sockets: Socket[] = []
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy()
  await closeRaw()
  await closeStock()
})

/** aedes-persistence's memory store, as Aedes builds it by default */
const memory = createRequire(import.meta.url)('aedes-persistence') as () => unknown
const last = <T>(xs: T[]): T => xs[xs.length - 1]!

describe('seam contract: the Aedes broker instance', () => {
  it('A1 aedes broker.handle: an instance property, called at call time, returning the Client of the stream', async () => {
    const seen: string[] = []
    const s = await stockBroker({}, (broker) => {
      expect(Object.hasOwn(broker, 'handle'), 'broker.handle is an own property').toBe(true)
      // registered out of order: run in CLIENT_INSTALL_ORDER
      seam.installOnEachClient(broker, 'limits', (c) => seen.push(`limits:${c.connected}`))
      seam.installOnEachClient(broker, 'dedupe', (c, stream) => seen.push(`dedupe:${c.conn === stream}`))
    })
    await rawClient(s.port, { clientId: 'a1' })
    expect(seen).toEqual(['dedupe:true', 'limits:false'])
  })

  it('A2 aedes broker.mq.emit: every publish passes it', async () => {
    const emitted: string[] = []
    const s = await stockBroker({}, (broker) =>
      seam.gateEmits(broker, (emit) => (message, cb) => {
        emitted.push((message as { topic: string }).topic)
        return emit(message, cb)
      }),
    )
    const { raw } = await rawClient(s.port, { clientId: 'a2' })
    raw.send({ cmd: 'publish', topic: 'a2/t', payload: 'x', qos: 1, messageId: 1 })
    await raw.until((ps) => ps.some((p) => p.cmd === 'puback'))
    expect(emitted).toContain('a2/t')
  })

  it('A3 aedes broker.mq.close: broker.close() closes the emitter last, and waits for it', async () => {
    let release!: () => void
    const s = await stockBroker({}, (broker) => seam.holdEmitterClose(broker, (close) => (release = close)))
    let closed = false
    s.broker.close(() => (closed = true))
    await eventually(() => release, 3000, 'mq.close called')
    expect(closed).toBe(false)
    release()
    await eventually(() => (closed ? true : undefined), 3000, 'close callback')
  })

  it('A4 aedes broker.publish: the entry of a client publish, called back when done', async () => {
    const events: string[] = []
    const s = await stockBroker({}, (broker) =>
      seam.observePublishes(broker, {
        started: () => void events.push('start'),
        finished: () => void events.push('done'),
      }),
    )
    const { raw } = await rawClient(s.port, { clientId: 'a4' })
    raw.send({ cmd: 'publish', topic: 'a4/t', payload: 'x', qos: 1, messageId: 1 })
    await raw.until((ps) => ps.some((p) => p.cmd === 'puback'))
    await eventually(() => (events.includes('done') ? true : undefined))
    expect(events.slice(0, 2)).toEqual(['start', 'done'])
  })

  it('A5 aedes broker.close publishes client.will: keepWillsOnClose leaves it unpublished', async () => {
    const willsOn = async (keep: boolean): Promise<number> => {
      const s = await stockBroker({}, (broker) => void (keep && seam.keepWillsOnClose(broker)))
      const topics: string[] = []
      const publish = s.broker.publish.bind(s.broker) as (p: { topic: string }, ...rest: unknown[]) => void
      ;(s.broker as unknown as { publish: typeof publish }).publish = (p, ...rest) => (topics.push(p.topic), publish(p, ...rest))
      await rawWill(s.port, `a5-${keep}`)
      await s.close()
      return topics.filter((t) => t === 'a5/will').length
    }
    expect(await willsOn(false), 'stock close publishes the will').toBe(1)
    expect(await willsOn(true), 'keepWillsOnClose: not published').toBe(0)
  })

  it('A6 aedes broker.clients: the Clients by id', async () => {
    const s = await stockBroker()
    await rawClient(s.port, { clientId: 'a6' })
    expect(seam.clientsOf(s.broker)['a6']).toBe(last(s.clients))
  })

  it('A7 aedes broker.persistence: the store Aedes uses (retained messages)', async () => {
    const s = await stockBroker()
    const { raw } = await rawClient(s.port, { clientId: 'a7' })
    raw.send({ cmd: 'publish', topic: 'a7/t', payload: 'kept', qos: 1, messageId: 1, retain: true })
    await raw.until((ps) => ps.some((p) => p.cmd === 'puback'))
    const topics: string[] = []
    const store = seam.persistenceOf(s.broker) as { createRetainedStream(pattern: string): AsyncIterable<{ topic: string }> }
    for await (const p of store.createRetainedStream('#')) topics.push(p.topic)
    expect(topics).toEqual(['a7/t'])
  })

  it('A8 aedes-persistence outgoingStream: what the session replay writes on CONNECT', async () => {
    const s = await stockBroker()
    seam.mapSessionReplay<{ cmd?: string; dup?: boolean }>(s.broker, (p) => (p.cmd === 'publish' ? { ...p, dup: true } : p))
    const sub = await rawClient(s.port, { clientId: 'a8', clean: false })
    await rawSubscribe(sub.raw, 'a8/t', 1)
    await sub.raw.drop()
    const pub = await rawClient(s.port, { clientId: 'a8-pub' })
    pub.raw.send({ cmd: 'publish', topic: 'a8/t', payload: 'q', qos: 1, messageId: 1 })
    await pub.raw.until((ps) => ps.some((p) => p.cmd === 'puback'))
    const again = await rawClient(s.port, { clientId: 'a8', clean: false })
    await again.raw.until((ps) => ps.some((p) => p.cmd === 'publish'))
    expect(again.raw.publishes()[0]!.dup).toBe(true)
  })

  it('A9 aedes broker.counter: the brokerCounter of the next message', async () => {
    const s = await stockBroker({}, (broker) => seam.raiseMessageCounter(broker, 1e12))
    const counters: number[] = []
    await new Promise<void>((resolve) => s.broker.subscribe('a9/t', (p, cb) => (counters.push(Number(p.brokerCounter)), cb()), resolve))
    await new Promise<void>((resolve) => s.broker.publish({ cmd: 'publish', topic: 'a9/t', payload: Buffer.from('x'), qos: 0, retain: false, dup: false }, () => resolve()))
    expect(counters[0]).toBeGreaterThan(1e12)
  })

  it('A10 aedes broker.preConnect: an instance property called before the CONNACK is written', async () => {
    let go!: () => void
    const s = await stockBroker({}, (broker) =>
      seam.wrapPreConnect(broker, (pre) => (client, packet, cb) => (go = () => pre(client, packet, cb))),
    )
    const connecting = rawClient(s.port, { clientId: 'a10' })
    await eventually(() => go, 3000, 'preConnect called')
    go()
    const { connack } = await connecting
    expect(connack.returnCode).toBe(0)
  })

  it('A28 aedes broker.authenticate: an instance property called after preConnect; an error with returnCode 3 is answered CONNACK 3, MQTT 5 0x88', async () => {
    const s = await stockBroker({}, (broker) =>
      seam.wrapAuthenticate(broker, (auth) => (client, u, p, done) =>
        client.id.startsWith('a28-no') ? done(Object.assign(new Error('store away'), { returnCode: 3 }), false) : auth(client, u, p, done),
      ),
    )
    await expect(rawClient(s.port, { clientId: 'a28-no' })).rejects.toThrow('CONNECT refused: 3')
    await expect(rawClient(s.port, { clientId: 'a28-no5', protocolVersion: 5 })).rejects.toThrow('CONNECT refused: 136')
    const { connack } = await rawClient(s.port, { clientId: 'a28-yes' })
    expect(connack.returnCode).toBe(0)
  })

  it('A29 aedes registerClient: a client closed while its CONNECT waits for the store (fetchSubs) is registered by stock Aedes when the store answers; seam skipClosedRegistrations leaves it out', async () => {
    const registered: Record<string, boolean> = {}
    for (const withSeam of [false, true]) {
      const id = withSeam ? 'a29-seam' : 'a29-stock'
      let release!: () => void
      const gate = new Promise<void>((r) => (release = r))
      let waiting: Client | undefined
      let ended = false
      const s = await stockBroker({}, (broker) => {
        const p = seam.persistenceOf(broker) as { cleanSubscriptions(c: Client): Promise<unknown> }
        const clean = p.cleanSubscriptions.bind(p)
        p.cleanSubscriptions = async (c) => {
          waiting = c
          await gate
          return clean(c)
        }
        if (withSeam) seam.skipClosedRegistrations(broker)
      })
      // the connect series ends: at its CONNACK's write to the closed connection, or (stock) at the 'client' event
      s.broker.on('clientError', (c: Client) => c.id === id && (ended = true))
      s.broker.on('client', (c: Client) => c.id === id && (ended = true))
      const sock = netConnect({ port: s.port, host: '127.0.0.1' })
      sockets.push(sock)
      sock.on('error', () => {})
      await once(sock, 'connect')
      sock.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId: id }))
      const client = await eventually(() => waiting, 3000, 'CONNECT waiting for cleanSubscriptions')
      sock.destroy()
      await eventually(() => ((client as { closed?: boolean }).closed ? true : undefined), 3000, 'the close')
      release()
      await eventually(() => (ended ? true : undefined), 3000, 'the connect series ended')
      registered[id] = seam.clientsOf(s.broker)[id] !== undefined
      expect(s.broker.connectedClients).toBe(registered[id] ? 1 : 0)
    }
    expect(registered).toEqual({ 'a29-stock': true, 'a29-seam': false })
  })

  it('A11 aedes broker.authorizeForward: looked up at call time for each delivery', async () => {
    const s = await stockBroker({}, (broker) => seam.wrapAuthorizeForward(broker, (forward) => (c, p) => (p.topic === 'a11/no' ? null : forward(c, p))))
    const sub = await rawClient(s.port, { clientId: 'a11' })
    await rawSubscribe(sub.raw, 'a11/+', 0)
    for (const t of ['a11/no', 'a11/yes']) sub.raw.send({ cmd: 'publish', topic: t, payload: 'x', qos: 0 })
    await sub.raw.until((ps) => ps.some((p) => p.cmd === 'publish'))
    expect(sub.raw.publishes().map((p) => p.topic)).toEqual(['a11/yes'])
  })
})

/** a client connected with a will on a5/will, left open (until closeRaw) */
async function rawWill(port: number, clientId: string): Promise<void> {
  const socket = netConnect({ port, host: '127.0.0.1' })
  sockets.push(socket)
  socket.on('error', () => {})
  await once(socket, 'connect')
  const will = { topic: 'a5/will', payload: Buffer.from('gone'), qos: 0 as const, retain: false }
  socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId, will }))
  // the CONNACK
  await once(socket, 'data')
}

describe('seam contract: the Aedes Client', () => {
  const connected = async (clientId: string, opts = {}): Promise<{ client: Client; raw: Awaited<ReturnType<typeof rawClient>>['raw'] }> => {
    const s = await stockBroker(opts)
    const { raw } = await rawClient(s.port, { clientId })
    return { client: last(s.clients), raw }
  }

  it('C1 aedes client.duplicates: the duplicate filter reads and writes it per broker id', async () => {
    const s = await stockBroker()
    const { raw } = await rawClient(s.port, { clientId: 'c1' })
    const client = last(s.clients) as unknown as { duplicates: Record<string, number> }
    await rawSubscribe(raw, 'c1/t', 1)
    raw.send({ cmd: 'publish', topic: 'c1/t', payload: 'x', qos: 1, messageId: 9 })
    await raw.until((ps) => ps.some((p) => p.cmd === 'publish'))
    expect(client.duplicates[s.broker.id], 'duplicates[broker.id] holds the last counter').toBeTypeOf('number')
    const passAll = new Proxy({} as Record<string, number>, { get: () => 0, set: () => true })
    seam.replaceDuplicateFilter(last(s.clients), passAll)
    expect(client.duplicates).toBe(passAll)
  })

  it('C2 aedes client.deliver0 / client.deliverQoS: the per-client deliveries subscriptions call', async () => {
    const s = await stockBroker({}, (broker) =>
      seam.installOnEachClient(broker, 'limits', (c) => {
        const d = seam.deliveryOf(c)
        seam.setDelivery(c, { deliver0: (p, cb) => (calls.push(`0:${p.topic}`), d.deliver0(p, cb)), deliverQoS: (p, cb) => (calls.push(`q:${p.topic}`), d.deliverQoS(p, cb)) })
      }),
    )
    const calls: string[] = []
    const { raw } = await rawClient(s.port, { clientId: 'c2' })
    await rawSubscribe(raw, 'c2/#', 1)
    raw.send({ cmd: 'publish', topic: 'c2/zero', payload: 'x', qos: 0 })
    raw.send({ cmd: 'publish', topic: 'c2/one', payload: 'x', qos: 1, messageId: 1 })
    await raw.until((ps) => ps.filter((p) => p.cmd === 'publish').length === 2)
    expect(calls).toContain('q:c2/one')
    expect(calls.some((c) => c.endsWith(':c2/zero'))).toBe(true)
  })

  it('C3 aedes client.subscriptions: filter -> granted QoS', async () => {
    const { client, raw } = await connected('c3')
    await rawSubscribe(raw, 'c3/#', 1)
    expect(seam.grantedSubscriptions(client)['c3/#']?.qos).toBe(1)
  })

  it('C3 aedes client.subscriptions: MQTT 5 options rh, rap, nl and the identifier si per filter', async () => {
    const s = await stockBroker()
    const { raw } = await rawClient(s.port, { clientId: 'c3v5', protocolVersion: 5 })
    raw.send({ cmd: 'subscribe', messageId: 1, properties: { subscriptionIdentifier: 7 }, subscriptions: [{ topic: 'c3/v5', qos: 1, nl: true, rap: true, rh: 2 }] })
    await raw.until((ps) => ps.some((p) => p.cmd === 'suback'))
    expect(seam.grantedSubscriptions(last(s.clients))['c3/v5']).toMatchObject({ qos: 1, nl: true, rap: true, rh: 2, si: 7 })
  })

  it('C4 aedes client._will: the CONNECT will while authenticate runs', async () => {
    let will: { topic?: string } | null = null
    const s = await stockBroker({ authenticate: (client, _u, _p, done) => ((will = seam.pendingWill(client)), done(null, true)) })
    await rawWill(s.port, 'c4')
    expect(will).toMatchObject({ topic: 'a5/will' })
  })

  it('C4 aedes client.will: the will of a connected client (moved from _will at CONNECT)', async () => {
    const s = await stockBroker()
    await rawWill(s.port, 'c4w')
    expect(seam.connectedWill(last(s.clients))).toMatchObject({ topic: 'a5/will' })
    const { client } = await connected('c4n')
    expect(seam.connectedWill(client)).toBeNull()
  })

  it('C5 aedes client._nextId: the packet id of the next QoS 1 delivery', async () => {
    const { client, raw } = await connected('c5')
    expect(seam.nextPacketId(client)).toBeTypeOf('number')
    await rawSubscribe(raw, 'c5/t', 1)
    seam.setNextPacketId(client, 4242)
    raw.send({ cmd: 'publish', topic: 'c5/t', payload: 'x', qos: 1, messageId: 1 })
    await raw.until((ps) => ps.some((p) => p.cmd === 'publish'))
    expect(raw.publishes()[0]!.messageId).toBe(4242)
  })

  it('C6 aedes client._parsingBatch / _paused / _nextBatch: the read loop', async () => {
    const { client } = await connected('c6')
    const c = client as unknown as { _parsingBatch: unknown; _nextBatch: unknown }
    expect(c._parsingBatch, '_parsingBatch').toBeTypeOf('number')
    expect(c._nextBatch, '_nextBatch').toBeTypeOf('function')
    await eventually(() => (seam.readLoopBusy(client) ? undefined : true), 3000, 'idle read loop')
  })

  it('C7 aedes client.connackSent: true once the CONNACK is written', async () => {
    const atStart: boolean[] = []
    const s = await stockBroker({}, (broker) => seam.installOnEachClient(broker, 'limits', (c) => atStart.push(seam.connackSent(c))))
    await rawClient(s.port, { clientId: 'c7' })
    expect(atStart, 'false on a new Client').toEqual([false])
    await eventually(() => (seam.connackSent(s.clients[0]!) ? true : undefined), 3000, 'connackSent true')
  })

  it('C8 aedes client._parser: the mqtt-packet parser of the connection, whose `client` is the Client (the hooks\' ctx, seam/client-hooks.ts)', async () => {
    const { client } = await connected('c8')
    const parser = seam.parserOf(client) as unknown as { parse: unknown; on: unknown; client: unknown }
    expect(parser.parse, '_parser.parse').toBeTypeOf('function')
    expect(parser.on, '_parser.on').toBeTypeOf('function')
    expect(parser.client, '_parser.client').toBe(client)
  })

  it('C11 aedes client._keepaliveInterval / _inboundInflight / version: what the admin API shows of a client', async () => {
    // _inboundInflight: aedes 1.2.0's field, put back on 2.0.0-beta.1 by U2 (aedes-fixes.ts)
    const s = await stockBroker({}, (broker) => seam.restoreAedes12Fixes(broker, { maxInflightInbound: 10 }))
    const { raw } = await rawClient(s.port, { clientId: 'c11', keepalive: 30 })
    const client = last(s.clients)
    expect(seam.clientFacts(client)).toEqual({ keepaliveS: 30, inboundInflight: 0, version: 4 })
    // a QoS 2 PUBLISH whose PUBREL has not come is in _inboundInflight
    raw.send({ cmd: 'publish', topic: 'c11/t', payload: 'x', qos: 2, messageId: 7 })
    await raw.until((ps) => ps.some((p) => p.cmd === 'pubrec'))
    expect(seam.clientFacts(client).inboundInflight).toBe(1)
  })

  it('C9 aedes client "connected" listener: handles the packets queued before CONNACK', async () => {
    const wrapped: string[] = []
    const s = await stockBroker({}, (broker) =>
      seam.installOnEachClient(broker, 'limits', (c) => seam.wrapQueuedPacketHandling(c, (l) => (...a) => (wrapped.push('dequeue'), l(...a)))),
    )
    const { raw } = await rawClient(s.port, { clientId: 'c9' })
    await eventually(() => (wrapped.length > 0 ? true : undefined), 3000, 'the wrapped listener called')
    expect(wrapped).toEqual(['dequeue'])
    raw.send({ cmd: 'pingreq' })
    await raw.until((ps) => ps.some((p) => p.cmd === 'pingresp'))
  })

  it('C10 aedes calls persistence.delWill on CONNECT before client.brokerId is set', async () => {
    const persistence = memory() as unknown as { delWill(c: { brokerId?: string }, cb?: unknown): unknown }
    const onConnect: boolean[] = []
    const delWill = persistence.delWill.bind(persistence)
    persistence.delWill = (c, cb) => (onConnect.push(seam.isDelWillOnConnect(c)), delWill(c, cb))
    const s = await stockBroker({ persistence })
    await rawClient(s.port, { clientId: 'c10' })
    expect(onConnect[0]).toBe(true)
  })
})
