/**
 * Issue 16: one malformed packet from a client used to end the node process.
 * A packet whose fields are missing or out of range is a protocol violation
 * that closes its own connection [MQTT-4.8.0-1] before Aedes handles it; the
 * node and every other client carry on. Against the built CLI (a crash is an
 * exit of that process), over TCP and WebSocket.
 */
import mqttPacket from 'mqtt-packet'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { collect } from '../helpers/node.js'
import { connect, spawnNode, stopAll, waitFor, type SpawnedNode } from '../helpers/security-node.js'
import { closesWithin, nextPacket, openRaw, type RawConn, type Transport } from '../helpers/fuzz/conn.js'

/** the packet of the issue: QoS 1 PUBLISH to fz/a whose remaining length leaves one byte for the two-byte packet id */
const ISSUE_16 = Buffer.from('33070004667a2f6178', 'hex')
const hex = (s: string): Buffer => Buffer.from(s.replace(/ /g, ''), 'hex')
const gen = (p: Record<string, unknown>): Buffer => mqttPacket.generate(p as unknown as mqttPacket.Packet)
const CONNECT = { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60 }

let node: SpawnedNode
beforeAll(async () => {
  node = await spawnNode({ max_connects_per_s_per_ip: 0 })
})
afterAll(stopAll)

const portOf = (t: Transport): number => (t === 'tcp' ? node.ports.mqtt : node.ports.ws)
const urlOf = (t: Transport): string => (t === 'tcp' ? `mqtt://127.0.0.1:${node.ports.mqtt}` : `ws://127.0.0.1:${node.ports.ws}/mqtt`)

async function clientErrors(reason: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.ports.http}/metrics`)).text()
  const m = new RegExp(`^culex_client_errors_total\\{reason="${reason}"\\} (\\S+)$`, 'm').exec(text)
  if (!m) throw new Error(`culex_client_errors_total{reason="${reason}"} not in /metrics`)
  return Number(m[1])
}

/** a raw connection that got CONNACK 0; records whether any packet came back after that */
async function rawConnected(t: Transport): Promise<RawConn & { after: string[] }> {
  const c = Object.assign(await openRaw(t, portOf(t)), { after: [] as string[] })
  c.write(gen({ ...CONNECT, clientId: `raw-${Math.random().toString(16).slice(2)}` }))
  expect((await nextPacket(c, 'connack'))?.returnCode).toBe(0)
  c.onPacket = (p) => c.after.push(p.cmd)
  return c
}

describe('issue 16: a malformed packet closes only its own connection', () => {
  it.each<Transport>(['tcp', 'ws'])(
    '[MQTT-2.3.1-1] [MQTT-4.8.0-1] the 9-byte QoS 1 PUBLISH with half a packet id (%s): closed, not handled; the node and a QoS 1 client carry on',
    async (t) => {
      const good = await connect(urlOf(t), { clientId: `good-${t}` })
      await good.subscribeAsync('fz/a', { qos: 1 })
      const got = collect(good)
      const before = await clientErrors('malformed_packet')

      const bad = await rawConnected(t)
      bad.write(ISSUE_16)
      expect(await closesWithin(bad, 3000)).toBe(true)
      expect(bad.after).toEqual([]) // no PUBACK for it

      await good.publishAsync('fz/a', 'after', { qos: 1 })
      await waitFor(() => got.length > 0, 5000, 'the well-behaved client receives')
      expect(got.map((m) => m.payload)).toEqual(['after']) // the malformed PUBLISH was never delivered
      expect(good.connected).toBe(true)
      expect(node.exited()).toBe(false)
      expect(await clientErrors('malformed_packet')).toBe(before + 1)
      expect(await clientErrors('exception')).toBe(0)
    },
  )

  const topic = hex('0004 667a2f61') // "fz/a"
  const malformed: Array<[string, Buffer]> = [
    ['PUBLISH QoS 2 without packet id [MQTT-2.3.1-1]', Buffer.concat([hex('3406'), topic])],
    ['PUBLISH QoS 1 with packet id 0 [MQTT-2.3.1-1]', Buffer.concat([hex('3208'), topic, hex('0000')])],
    ['PUBLISH QoS 1 whose packet id runs into the next packet', Buffer.concat([hex('3206'), topic, hex('c000')])],
    ['PUBLISH QoS 0 with DUP set [MQTT-3.3.1-2]', Buffer.concat([hex('3806'), topic])],
    ['PUBACK without packet id', hex('4000')],
    ['PUBACK with packet id 0 [MQTT-2.3.1-1]', hex('40020000')],
    ['PUBACK with remaining length 3', hex('4003000100')],
    ['PUBREC without packet id', hex('5000')],
    ['PUBREL with one byte of packet id', hex('620101')],
    ['PUBCOMP whose packet id runs into the next packet', hex('7000 c000')],
    ['SUBSCRIBE without packet id', hex('8200')],
    ['SUBSCRIBE without a topic filter [MQTT-3.8.3-3]', hex('82020001')],
    ['SUBSCRIBE with packet id 0 [MQTT-2.3.1-1]', Buffer.concat([hex('82090000'), topic, hex('01')])],
    ['UNSUBSCRIBE without a topic filter [MQTT-3.10.3-2]', hex('a2020001')],
    ['UNSUBSCRIBE with packet id 0 [MQTT-2.3.1-1]', Buffer.concat([hex('a2080000'), topic])],
    ['PINGREQ with a payload', hex('c00100')],
    ['DISCONNECT with a payload', hex('e00100')],
    ['CONNACK from a client', hex('20020000')],
    ['SUBACK from a client', hex('9003000100')],
    ['PINGRESP from a client', hex('d000')],
  ]
  it.each(malformed)('[MQTT-4.8.0-1] after CONNECT, %s: connection closed, no reply', async (_name, bytes) => {
    const c = await rawConnected('tcp')
    c.write(bytes)
    expect(await closesWithin(c, 3000)).toBe(true)
    expect(c.after).toEqual([])
  })

  const willQos3 = gen({ ...CONNECT, clientId: 'w3', will: { topic: 'w', payload: Buffer.from('x'), qos: 1, retain: false } })
  willQos3[9] = willQos3[9]! | 0x18 // connect flags: Will QoS bits 11
  const trailing = Buffer.concat([gen({ ...CONNECT, clientId: 'tr' }), hex('0000')])
  trailing[1] = trailing[1]! + 2
  it.each([
    ['Will QoS 3 [MQTT-3.1.2-14]', willQos3],
    ['bytes after the payload', trailing],
  ])('[MQTT-4.8.0-1] CONNECT with %s: closed without CONNACK', async (_name, bytes) => {
    const c = await openRaw('tcp', node.ports.mqtt)
    const got: string[] = []
    c.onPacket = (p) => got.push(p.cmd)
    c.write(bytes)
    expect(await closesWithin(c, 3000)).toBe(true)
    expect(got).toEqual([])
  })

  it('well-formed edge values still work: packet id 65535, QoS 2 flow, two filters, empty payload, PINGREQ', async () => {
    const c = await rawConnected('tcp')
    const replies: mqttPacket.Packet[] = []
    c.onPacket = (p) => replies.push(p)
    c.write(gen({ cmd: 'subscribe', messageId: 65535, subscriptions: [{ topic: 'edge/#', qos: 0 }, { topic: 'edge2', qos: 2 }] }))
    c.write(gen({ cmd: 'publish', topic: 'edge/a', payload: Buffer.alloc(0), qos: 1, messageId: 65535 }))
    c.write(gen({ cmd: 'publish', topic: 'edge/b', payload: Buffer.from('q2'), qos: 2, messageId: 1 }))
    c.write(gen({ cmd: 'pubrel', messageId: 1 }))
    c.write(gen({ cmd: 'unsubscribe', messageId: 7, unsubscriptions: ['edge2'] }))
    c.write(gen({ cmd: 'pingreq' }))
    const by = (cmd: string): Record<string, any> | undefined => replies.find((p) => p.cmd === cmd)
    const publishes = (): number => replies.filter((p) => p.cmd === 'publish').length
    // Aedes handles the packets of one read concurrently: wait for every reply, in any order
    await waitFor(() => ['suback', 'puback', 'pubrec', 'pubcomp', 'unsuback', 'pingresp'].every((c) => by(c)) && publishes() >= 2, 5000, 'every reply')
    expect(by('suback')).toMatchObject({ messageId: 65535, granted: [0, 2] })
    expect(by('puback')).toMatchObject({ messageId: 65535 })
    expect(by('pubrec')).toMatchObject({ messageId: 1 })
    expect(by('pubcomp')).toMatchObject({ messageId: 1 })
    expect(by('unsuback')).toMatchObject({ messageId: 7 })
    expect(publishes()).toBe(2) // both messages came back on edge/#
    expect(c.isClosed()).toBe(false)
    c.destroy()
  })

  it('[MQTT-4.7.3-1] a clean:false SUBSCRIBE with a valid and an empty filter closes the connection and leaves the session resumable (found by the fuzzer)', async () => {
    const clientId = `empty-${Math.random().toString(16).slice(2)}`
    const c = await openRaw('tcp', node.ports.mqtt)
    c.write(gen({ ...CONNECT, clean: false, clientId }))
    expect((await nextPacket(c, 'connack'))?.returnCode).toBe(0)
    c.write(gen({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'ok/a', qos: 1 }, { topic: '', qos: 1 }] }))
    expect(await closesWithin(c, 3000)).toBe(true)
    // before: Aedes stored both filters for the valid one, and every later CONNECT failed restoring ''
    for (let i = 0; i < 2; i++) {
      const back = await openRaw('tcp', node.ports.mqtt)
      back.write(gen({ ...CONNECT, clean: false, clientId }))
      expect((await nextPacket(back, 'connack'))?.returnCode).toBe(0)
      back.write(gen({ cmd: 'disconnect' }))
      await closesWithin(back, 3000)
    }
  })
})
