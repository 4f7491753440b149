/**
 * MQTT 5 as a user meets it: through the real HAProxy of `culex cluster up --nodes 3` (TCP 1883,
 * TLS 8883, secure WebSockets 8443 roles, on free loopback ports), with MQTT.js `protocolVersion: 5`.
 * HAProxy balances by least connections, so the clients of a test sit on all three nodes (checked
 * with `culex cluster status --json`): publish properties cross nodes unchanged, subscription options
 * hold, a session with an expiry survives a reconnect through the balancer, a takeover from another
 * node gets DISCONNECT 0x8E, shared subscriptions spread once per message, and 3.1.1 clients on the
 * same topics see no change.
 */
import { readFileSync } from 'node:fs'
import type { IClientOptions } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { killAll, waitFor } from '../helpers/cluster-procs.js'
import { closeAllClients, collect, connackOf, mqttConnect, publishPackets } from '../helpers/cluster-mqtt.js'
import { clusterUp, type UpCluster } from '../helpers/cluster-up.js'

let cluster: UpCluster
let ca: Buffer
const url = { tcp: '', tls: '', wss: '' }

beforeAll(async () => {
  cluster = await clusterUp(3)
  ca = readFileSync(cluster.state().certs.ca)
  url.tcp = `mqtt://127.0.0.1:${cluster.ports.mqtt}`
  url.tls = `mqtts://127.0.0.1:${cluster.ports.tls}`
  url.wss = `wss://127.0.0.1:${cluster.ports.wss}/mqtt`
}, 120_000)

afterAll(async () => {
  await closeAllClients()
  await cluster?.down()
  await killAll()
}, 60_000)

const v5 = (o: IClientOptions = {}): IClientOptions => ({ protocolVersion: 5, ca, ...o })
let n = 0
const topic = (name: string): string => `v5ha/${name}/${++n}`


async function clientsPerNode(): Promise<number[]> {
  const p = cluster.cli(['cluster', 'status', '--dir', cluster.dir, '--json'])
  await p.exited
  return (JSON.parse(p.text()) as { nodes: Array<{ clients: number }> }).nodes.map((x) => x.clients)
}

describe('MQTT 5 through HAProxy on three nodes', () => {
  it('publish properties reach v5 subscribers on every node over TCP, TLS and WSS unchanged [MQTT-3.3.2-4] [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20] (v5); a 3.1.1 subscriber gets the payload', async () => {
    const t = topic('props')
    const subs = await Promise.all([url.tcp, url.tls, url.wss, url.tcp, url.tls, url.wss].map((u) => mqttConnect(u, v5())))
    const old = await mqttConnect(url.tcp, { ca })
    const got = subs.map(publishPackets)
    const oldGot = collect(old)
    await Promise.all([...subs, old].map((s) => s.subscribeAsync(t, { qos: 1 })))
    const pub = await mqttConnect(url.tcp, v5())
    // seven subscribers and a publisher by least connections: every node holds some
    await waitFor(async () => (await clientsPerNode()).filter((c) => c > 0).length === 3, 10_000, 'clients on all three nodes')
    const properties = {
      payloadFormatIndicator: true,
      contentType: 'application/json; charset=utf-8',
      responseTopic: `${t}/reply`,
      correlationData: Buffer.from([0x00, 0xff, 0x10, 0x00]),
      userProperties: { trace: 'ü-1', tag: ['a', 'b'] },
      messageExpiryInterval: 120,
    }
    await pub.publishAsync(t, '{"v":5}', { qos: 1, properties })
    await waitFor(() => got.every((g) => g.length === 1) && oldGot.length === 1, 10_000, 'every subscriber got the message')
    for (const [i, g] of got.entries()) {
      const p = g[0]!.properties!
      expect(g[0]!.payload.toString(), `subscriber ${i}`).toBe('{"v":5}')
      expect(p, `subscriber ${i}`).toMatchObject({ payloadFormatIndicator: true, contentType: properties.contentType, responseTopic: properties.responseTopic, userProperties: properties.userProperties })
      expect(Buffer.from(p.correlationData!).equals(properties.correlationData), `subscriber ${i} correlation data`).toBe(true)
      // the remaining interval, not more than was asked [MQTT-3.3.2-6] (v5)
      expect(p.messageExpiryInterval).toBeGreaterThan(100)
      expect(p.messageExpiryInterval).toBeLessThanOrEqual(120)
    }
    expect(oldGot).toEqual([{ topic: t, payload: '{"v":5}', qos: 1, retain: false }])
  })

  it('No Local keeps a client\'s own messages from it [MQTT-3.8.3-3]; Retain As Published keeps RETAIN 1 on a live delivery [MQTT-3.3.1-12]; Retain Handling 2 sends no retained message at subscribe (v5)', async () => {
    const t = topic('opts')
    const self = await mqttConnect(url.tcp, v5())
    const mine = publishPackets(self)
    await self.subscribeAsync(t, { qos: 1, nl: true })
    const other = await mqttConnect(url.wss, v5())
    const others = publishPackets(other)
    await other.subscribeAsync(t, { qos: 1, rap: true })
    await self.publishAsync(t, 'retained by self', { qos: 1, retain: true })
    await other.publishAsync(t, 'from other', { qos: 1 })
    await waitFor(() => mine.length === 1 && others.length === 2, 10_000, 'deliveries')
    expect(mine.map((p) => p.payload.toString())).toEqual(['from other'])
    expect(others.map((p) => [p.payload.toString(), p.retain])).toEqual([
      ['retained by self', true],
      ['from other', false],
    ])
    // later subscribers: Retain Handling 2 gets no retained message [MQTT-3.3.1-11], 0 gets it [MQTT-3.3.1-9] (v5)
    const none = await mqttConnect(url.tls, v5())
    const noneGot = publishPackets(none)
    await none.subscribeAsync(t, { qos: 1, rh: 2 })
    const some = await mqttConnect(url.tls, v5())
    const someGot = publishPackets(some)
    await some.subscribeAsync(t, { qos: 1, rh: 0 })
    await waitFor(() => someGot.length === 1, 10_000, 'the retained message for Retain Handling 0')
    expect(someGot[0]).toMatchObject({ retain: true })
    // a marker after both subscriptions: when it reaches `none`, a retained message would have come first
    await other.publishAsync(t, 'marker', { qos: 1 })
    await waitFor(() => noneGot.length === 1, 10_000, 'the marker')
    expect(noneGot.map((p) => p.payload.toString())).toEqual(['marker'])
  })

  it('a session with an expiry interval comes back through the balancer with its QoS 1 messages [MQTT-3.1.2-23]; a takeover from another connection gets DISCONNECT 0x8E (v5)', async () => {
    const t = topic('session')
    const opts = v5({ clientId: `v5ha-session-${n}`, clean: false, properties: { sessionExpiryInterval: 300 } })
    const first = await mqttConnect(url.tcp, opts)
    await first.subscribeAsync(t, { qos: 1 })
    await first.endAsync()
    const pub = await mqttConnect(url.wss, v5())
    for (let i = 0; i < 20; i++) await pub.publishAsync(t, `m${i}`, { qos: 1 })
    const back = await mqttConnect(url.tls, opts)
    expect(connackOf(back).sessionPresent).toBe(true)
    const got = collect(back)
    await waitFor(() => got.length === 20, 10_000, 'the queued messages')
    expect(got.map((g) => g.payload)).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`))
    // the same client id again, on whatever node HAProxy picks: the old connection is told why
    const reason = new Promise<number | undefined>((resolve) => back.once('disconnect', (p) => resolve(p.reasonCode)))
    await mqttConnect(url.wss, opts)
    expect(await reason).toBe(0x8e)
  })

  it('a $share group of v5 members on different nodes gets each message once; a plain v5 subscriber gets all', async () => {
    const t = topic('share')
    const members = await Promise.all([url.tcp, url.tls, url.wss].map((u) => mqttConnect(u, v5())))
    const shares = members.map(collect)
    await Promise.all(members.map((m) => m.subscribeAsync(`$share/g1/${t}`, { qos: 1 })))
    const all = await mqttConnect(url.tcp, v5())
    const allGot = collect(all)
    await all.subscribeAsync(t, { qos: 1 })
    const pub = await mqttConnect(url.tls, v5())
    for (let i = 0; i < 60; i++) await pub.publishAsync(t, `s${i}`, { qos: 1 })
    await waitFor(() => allGot.length === 60 && shares.flat().length === 60, 15_000, 'the group and the plain subscriber')
    expect(shares.flat().map((g) => g.payload).sort()).toEqual(allGot.map((g) => g.payload).sort())
    expect(new Set(shares.flat().map((g) => g.payload)).size).toBe(60)
  })
})
