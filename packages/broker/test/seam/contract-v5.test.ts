/**
 * Contract of seam/aedes-v5.ts, aedes-v5-packets.ts and aedes-v5-disconnect.ts (docs/internals.md
 * rows V1-V10): what aedes 2.0.0-beta.1 does for MQTT 5 clients without an option, on a stock
 * broker and MQTT.js v5 clients.
 */
import { once } from 'node:events'
import { connect as netConnect } from 'node:net'
import mqtt, { type IConnackPacket, type MqttClient } from 'mqtt'
import mqttPacket from 'mqtt-packet'
import { afterEach, describe, expect, it } from 'vitest'
import type { Aedes, AedesOptions } from 'aedes'
import * as seam from '../../src/seam/index.js'
import { closeStock, eventually, stockBroker, type Stock } from './stock.js'
import { Raw, destroyAll } from '../conformance/raw.js'

const clients: MqttClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
  await closeStock()
})

async function v5(port: number, clientId: string): Promise<{ client: MqttClient; connack: IConnackPacket }> {
  const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5, clientId, reconnectPeriod: 0 })
  clients.push(client)
  const connack = await new Promise<IConnackPacket>((resolve, reject) => {
    client.once('connect', resolve)
    client.once('error', reject)
  })
  return { client, connack }
}

/** the SUBACK's codes, failures included (MQTT.js rejects on a failure code, with the SUBACK) */
async function subackCodes(client: MqttClient, subs: Record<string, { qos: 0 | 1 | 2 }>): Promise<number[]> {
  try {
    return (await client.subscribeAsync(subs)).map((g) => g.qos)
  } catch (err) {
    return (err as { packet: { granted: number[] } }).packet.granted
  }
}

describe('seam contract: aedes 2.0.0-beta.1 and MQTT 5 clients', () => {
  it('V1 aedes lib/handlers/connect.js: the CONNACK properties are written through writeToStream, sharedSubscriptionAvailable false', async () => {
    const stock = await stockBroker()
    expect((await v5(stock.port, 'v1-stock')).connack.properties?.sharedSubscriptionAvailable).toBe(false)
    const s = await stockBroker({}, (b: Aedes) => seam.amendConnack(b, (p) => (p.sharedSubscriptionAvailable = true)))
    const { connack } = await v5(s.port, 'v1')
    expect(connack.properties?.sharedSubscriptionAvailable).toBe(true)
    expect(seam.protocolVersion(s.clients[0]!)).toBe(5)
  })

  it('V2 V3 aedes lib/handlers/subscribe.js: a v5 $share/ filter gets 0x9E before authorizeSubscribe unless the version reads 4 while the SUBSCRIBE is handled', async () => {
    const seen: string[] = []
    const authorizeSubscribe: AedesOptions['authorizeSubscribe'] = (_c, sub, cb) => (seen.push(sub.topic), cb(null, sub.topic === 'no' ? null : sub))
    const stock = await stockBroker({ authorizeSubscribe })
    const a = (await v5(stock.port, 'v3-stock')).client
    expect(await subackCodes(a, { '$share/g/t': { qos: 1 } })).toEqual([0x9e])
    expect(seen).toEqual([])
    const s = await stockBroker({ authorizeSubscribe }, (b: Aedes) => {
      seam.acceptV5SharedFilters(b)
      seam.amendSuback(b, (p) => (p.granted = p.granted!.map((g) => (g === 0x80 ? 0x87 : g))))
    })
    const b = (await v5(s.port, 'v3')).client
    expect(await subackCodes(b, { '$share/g/t': { qos: 1 }, no: { qos: 1 } })).toEqual([1, 0x87])
    expect(seen).toEqual(['$share/g/t', 'no'])
    expect(seam.protocolVersion(s.clients[0]!)).toBe(5)
  })
})

/** CONNECT (v5) and the SUBSCRIBEs in one write, before any CONNACK; the SUBACKs' codes, by packet id */
async function pipelinedSubacks(port: number, clientId: string, filters: string[]): Promise<Record<number, number[]>> {
  const socket = netConnect({ port, host: '127.0.0.1' })
  await once(socket, 'connect')
  const parser = mqttPacket.parser({ protocolVersion: 5 })
  const subacks: Record<number, number[]> = {}
  parser.on('packet', (p) => {
    if (p.cmd === 'suback') subacks[p.messageId!] = p.granted as number[]
  })
  socket.on('data', (d) => parser.parse(d))
  const bytes = [mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId, clean: true, keepalive: 30 })]
  filters.forEach((topic, i) => bytes.push(mqttPacket.generate({ cmd: 'subscribe', messageId: i + 1, subscriptions: [{ topic, qos: 1 }] }, { protocolVersion: 5 })))
  socket.write(Buffer.concat(bytes))
  await eventually(() => (Object.keys(subacks).length === filters.length ? true : undefined), 3000, 'every SUBACK')
  socket.destroy()
  return subacks
}

describe('seam contract: $share SUBSCRIBE before CONNACK', () => {
  it("V3 aedes lib/client.js dequeue: a SUBSCRIBE sent before CONNACK waits in the parser's _queue, handled by the 'connected' listener; one packet at a time, a $share/ filter passes the version check", async () => {
    const seen: string[] = []
    const authorizeSubscribe: AedesOptions['authorizeSubscribe'] = (_c, sub, cb) => (seen.push(sub.topic), cb(null, sub))
    const stock = await stockBroker({ authorizeSubscribe })
    expect(await pipelinedSubacks(stock.port, 'v3q-stock', ['plain', '$share/g/t'])).toEqual({ 1: [1], 2: [0x9e] })
    seen.length = 0
    const s = await stockBroker({ authorizeSubscribe }, (b: Aedes) => seam.acceptV5SharedFilters(b))
    expect(await pipelinedSubacks(s.port, 'v3q', ['plain', '$share/g/t', 'after'])).toEqual({ 1: [1], 2: [1], 3: [1] })
    expect(seen).toEqual(['plain', '$share/g/t', 'after'])
  })
})

describe('seam contract: the v5 Topic Aliases', () => {
  it('V8 aedes lib/client.js _topicAliases: a Map per client, used by lib/handlers/publish.js only; made on first use, an alias still resolves [MQTT-3.3.2-12]', async () => {
    const stock = await stockBroker({ topicAliasMaximum: 2 })
    await v5(stock.port, 'v8-stock')
    const aliases = (c: unknown): unknown => (c as { _topicAliases: unknown })._topicAliases
    expect(aliases(stock.clients[0])).toBeInstanceOf(Map)
    const s = await stockBroker({ topicAliasMaximum: 2 }, (b: Aedes) => seam.topicAliasesOnFirstUse(b))
    const { client: sub } = await v5(s.port, 'v8-sub')
    await sub.subscribeAsync('v8/#', { qos: 1 })
    const { client: pub } = await v5(s.port, 'v8-pub')
    // both clients share the stand-in until one sends an alias
    expect(aliases(s.clients[1])).toBe(aliases(s.clients[0]))
    const got: string[] = []
    sub.on('message', (topic, payload) => void got.push(`${topic}=${String(payload)}`))
    await pub.publishAsync('v8/t', 'first', { qos: 1, properties: { topicAlias: 1 } })
    await pub.publishAsync('', 'second', { qos: 1, properties: { topicAlias: 1 } })
    await eventually(() => (got.length === 2 ? true : undefined), 3000, 'both messages')
    expect(got).toEqual(['v8/t=first', 'v8/t=second'])
    expect(aliases(s.clients[1])).not.toBe(aliases(s.clients[0]))
    expect([...(aliases(s.clients[1]) as Map<number, string>)]).toEqual([[1, 'v8/t']])
  })
})

describe('seam contract: the v5 UNSUBACK', () => {
  it('V2 aedes lib/handlers/unsubscribe.js: the UNSUBACK of a v5 client is written through writeToStream with its reason codes in granted', async () => {
    const s = await stockBroker({}, (b: Aedes) => seam.amendUnsuback(b, (p) => (p.granted = [...p.granted!, 0x8f])))
    const { client } = await v5(s.port, 'v2u')
    await client.subscribeAsync('held', { qos: 1 })
    const unsuback = await new Promise<{ granted?: number[] }>((resolve) => {
      client.once('packetreceive', (p) => p.cmd === 'unsuback' && resolve(p as never))
      client.unsubscribe(['held', 'none'])
    })
    expect(unsuback.granted).toEqual([0x00, 0x11, 0x8f])
  })
})

describe('seam contract: the v5 subscriptions', () => {
  it('V7 aedes client.subscriptions: each filter with its Subscription Identifier (si) and No Local (nl); one delivery echoes one identifier', async () => {
    const s = await stockBroker()
    const { client } = await v5(s.port, 'v7')
    await client.subscribeAsync('v7/+', { qos: 1, nl: true, properties: { subscriptionIdentifier: 3 } })
    await client.subscribeAsync('v7/#', { qos: 1, properties: { subscriptionIdentifier: 4 } })
    await client.subscribeAsync('v7/x', { qos: 0 })
    const subs = seam.v5SubscriptionsOf(s.clients[0]!)!
    expect(Object.fromEntries(Object.entries(subs).map(([f, x]) => [f, [x.si, Boolean(x.nl)]]))).toEqual({ 'v7/+': [3, true], 'v7/#': [4, false], 'v7/x': [undefined, false] })
    const got = new Promise<unknown>((resolve) => client.once('message', (_t, _p, packet) => resolve(packet.properties?.subscriptionIdentifier)))
    const { client: pub } = await v5(s.port, 'v7p')
    await pub.publishAsync('v7/x', 'm', { qos: 1 })
    expect(typeof (await got)).toBe('number')
  })
})

describe('seam contract: subscriptions written', () => {
  it('V9 aedes lib/handlers/subscribe.js subscribeTopic: client.subscriptions[filter] is written (new, replaced, restored at CONNECT with its si) before broker.subscribe is called', async () => {
    /** at each call: the si of every filter the (only) client holds */
    const seen: Array<Record<string, number | undefined>> = []
    const s = await stockBroker({}, (b: Aedes) =>
      seam.onSubscriptionWritten(b, () => {
        const c = s.clients.at(-1)!
        seen.push(Object.fromEntries(Object.entries(seam.v5SubscriptionsOf(c) ?? {}).map(([f, x]) => [f, x.si])))
      }),
    )
    const session = { protocolVersion: 5 as const, clientId: 'v9', clean: false, reconnectPeriod: 0, properties: { sessionExpiryInterval: 60 } }
    const a = mqtt.connect(`mqtt://127.0.0.1:${s.port}`, session)
    clients.push(a)
    await new Promise((resolve) => a.once('connect', resolve))
    await a.subscribeAsync('v9/a', { qos: 1 })
    await a.subscribeAsync('v9/a', { qos: 1, properties: { subscriptionIdentifier: 9 } })
    expect(seen).toEqual([{ 'v9/a': undefined }, { 'v9/a': 9 }])
    await a.endAsync()
    await eventually(() => (s.clients.length === 1 && s.broker.connectedClients === 0 ? true : undefined), 3000, 'the first connection closed')
    seen.length = 0
    const b = mqtt.connect(`mqtt://127.0.0.1:${s.port}`, session)
    clients.push(b)
    const connack = await new Promise<IConnackPacket>((resolve) => b.once('connect', resolve))
    expect(connack.sessionPresent).toBe(true)
    expect(seen).toEqual([{ 'v9/a': 9 }])
  })
})

describe('seam contract: the v5 Client', () => {
  it('V4 aedes client.receiveMaximum: the CONNECT\'s Receive Maximum, 65535 when absent, undefined for 3.1.1', async () => {
    const s = await stockBroker()
    const a = mqtt.connect(`mqtt://127.0.0.1:${s.port}`, { protocolVersion: 5, clientId: 'v4a', reconnectPeriod: 0, properties: { receiveMaximum: 7, maximumPacketSize: 300 } })
    const b = mqtt.connect(`mqtt://127.0.0.1:${s.port}`, { protocolVersion: 5, clientId: 'v4b', reconnectPeriod: 0 })
    const c = mqtt.connect(`mqtt://127.0.0.1:${s.port}`, { protocolVersion: 4, clientId: 'v4c', reconnectPeriod: 0 })
    clients.push(a, b, c)
    await Promise.all([a, b, c].map((x) => new Promise((resolve) => x.once('connect', resolve))))
    const byId = Object.fromEntries(s.clients.map((cl) => [cl.id, seam.receiveMaximumOf(cl)]))
    expect(byId).toEqual({ v4a: 7, v4b: 65535, v4c: undefined })
  })

  it('V5 aedes client.maximumPacketSize: the CONNECT\'s Maximum Packet Size, undefined when absent and for 3.1.1', async () => {
    const s = await stockBroker()
    const a = mqtt.connect(`mqtt://127.0.0.1:${s.port}`, { protocolVersion: 5, clientId: 'v5a', reconnectPeriod: 0, properties: { maximumPacketSize: 300 } })
    const b = mqtt.connect(`mqtt://127.0.0.1:${s.port}`, { protocolVersion: 5, clientId: 'v5b', reconnectPeriod: 0 })
    const c = mqtt.connect(`mqtt://127.0.0.1:${s.port}`, { protocolVersion: 4, clientId: 'v5c', reconnectPeriod: 0 })
    clients.push(a, b, c)
    await Promise.all([a, b, c].map((x) => new Promise((resolve) => x.once('connect', resolve))))
    expect(Object.fromEntries(s.clients.map((cl) => [cl.id, seam.maximumPacketSizeOf(cl)]))).toEqual({ v5a: 300, v5b: undefined, v5c: undefined })
  })
})

describe('seam contract: server-sent DISCONNECT', () => {
  it('V6 aedes closeSameClients: the listener on $SYS/+/new/clients that closes a client id another broker took; client.disconnect writes DISCONNECT with the reason code', async () => {
    const s = await stockBroker({}, (b: Aedes) =>
      seam.onRemoteTakeover(b, (client, done) => seam.disconnectV5(client, 0x8e, done)),
    )
    const { client } = await v5(s.port, 'v6')
    // client.disconnect writes a DISCONNECT once the Client is `connected` (after its session replay)
    await eventually(() => ((s.clients[0] as unknown as { connected: boolean }).connected ? true : undefined), 3000, 'connected')
    const reason = new Promise((resolve) => client.once('disconnect', (p) => resolve(p.reasonCode)))
    // another broker announces the same client id
    s.broker.publish({ topic: '$SYS/other-node/new/clients', payload: Buffer.from('v6'), cmd: 'publish', qos: 0, dup: false, retain: false }, () => {})
    expect(await reason).toBe(0x8e)
  })

  /**
   * `id` resumes a session with 50 QoS 1 messages queued on `s`; at the broker event
   * 'connackSent' (lib/handlers/connect.js doConnack, just before it sets client.connackSent)
   * `during` runs one tick later, with the Client
   */
  async function duringReplay(s: Stock, id: string, during: (client: Record<string, unknown> & { disconnect(o: object, cb: () => void): void }) => void): Promise<Raw> {
    const sub = await Raw.open(s.port, 5)
    await sub.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })
    await sub.subscribe('v10/q', 1)
    await sub.disconnect({ reasonCode: 0 })
    for (let i = 0; i < 50; i++) s.broker.publish({ cmd: 'publish', topic: 'v10/q', payload: Buffer.from(String(i)), qos: 1, dup: false, retain: false }, () => {})
    s.broker.once('connackSent', (_p: unknown, client: Parameters<typeof during>[0]) => void setImmediate(() => during(client)))
    const c = await Raw.open(s.port, 5)
    c.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: false, keepalive: 60, clientId: id, properties: { sessionExpiryInterval: 60 } })
    await c.expect('connack')
    return c
  }

  it('V10 aedes lib/handlers/connect.js: connackSent is set once the CONNACK is written, connected only after the queue replay; lib/client.js disconnect writes nothing in between', async () => {
    const s = await stockBroker()
    const seen: unknown[] = []
    const c = await duringReplay(s, 'v10-stock', (client) => {
      seen.push(client.connackSent, client.connected, client.connecting)
      client.disconnect({ reasonCode: 0x8e }, () => {})
    })
    await c.closedBy()
    expect(seen).toEqual([true, false, true])
    expect(c.packets.some((p) => p.cmd === 'disconnect')).toBe(false)
    destroyAll()
  })

  it('V10 disconnectDuringQueueReplay: a v5 client between its CONNACK and the end of its replay gets the DISCONNECT, then the close [MQTT-3.14.0-1]', async () => {
    const s = await stockBroker({}, seam.disconnectDuringQueueReplay)
    let told = false
    const c = await duringReplay(s, 'v10', (client) => {
      told = seam.disconnectV5(client as never, 0x8e)
    })
    await c.closedBy()
    expect(told).toBe(true)
    expect(c.packets.filter((p) => p.cmd === 'disconnect').map((p) => p.reasonCode)).toEqual([0x8e])
    expect(c.packets.filter((p) => p.cmd === 'publish').length).toBeLessThan(50)
    destroyAll()
  })

  it('V6 V10 a client id another broker took during the replay: DISCONNECT 0x8E, then the close [MQTT-3.14.0-1]', async () => {
    const s = await stockBroker({}, (b: Aedes) => {
      seam.disconnectDuringQueueReplay(b)
      seam.onRemoteTakeover(b, (client, done) => seam.disconnectV5(client, 0x8e, done))
    })
    const c = await duringReplay(s, 'v10-remote', () => {
      s.broker.publish({ topic: '$SYS/other-node/new/clients', payload: Buffer.from('v10-remote'), cmd: 'publish', qos: 0, dup: false, retain: false }, () => {})
    })
    await c.closedBy()
    expect(c.packets.filter((p) => p.cmd === 'disconnect').map((p) => p.reasonCode)).toEqual([0x8e])
    expect(c.packets.filter((p) => p.cmd === 'publish').length).toBeLessThan(50)
    destroyAll()
  })
})
