/**
 * MQTT 5 client packets the beta answered differently (broker/mqtt5-packets.ts), on a real node:
 * - a DISCONNECT raising a Session Expiry of 0 is a Protocol Error: DISCONNECT 0x82, the will is
 *   published, the session ends [MQTT-3.14.2-2] (v5);
 * - an UNSUBSCRIBE with an invalid filter gets 0x8F for it and keeps the connection (v5); a
 *   3.1.1 client's connection is closed, unchanged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { closeRaw, rawClient, rawSubscribe } from '../helpers/raw-mqtt.js'
import { startTestNode } from '../helpers/node.js'

let node: CulexNode
beforeAll(async () => {
  node = await startTestNode()
})
afterAll(async () => {
  await closeRaw()
  await node.close()
})

describe('DISCONNECT [MQTT-3.14.2-2] (v5)', () => {
  it('a non-zero Session Expiry on DISCONNECT after 0 on CONNECT: DISCONNECT 0x82, the will published, the session ended', async () => {
    const { raw: watcher } = await rawClient(node.ports.mqtt, { clientId: 'cp-watch', protocolVersion: 5 })
    await rawSubscribe(watcher, 'cp/will', 1)
    const will = { topic: 'cp/will', payload: Buffer.from('gone'), qos: 1, retain: false }
    const { raw } = await rawClient(node.ports.mqtt, { clientId: 'cp-exp', protocolVersion: 5, will })
    await rawSubscribe(raw, 'cp/held', 1)
    raw.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 60 } })
    await raw.until((ps) => ps.some((p) => p.cmd === 'disconnect'), 5000, 'DISCONNECT from the server')
    expect(raw.packets.find((p) => p.cmd === 'disconnect')!.reasonCode).toBe(0x82)
    await raw.until(() => raw.closed, 5000, 'the connection closed')
    await watcher.until((ps) => ps.some((p) => p.cmd === 'publish' && p.topic === 'cp/will'), 5000, 'the will')
    expect(watcher.publishes().map((p) => p.payload.toString())).toEqual(['gone'])
    const back = await rawClient(node.ports.mqtt, { clientId: 'cp-exp', protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 60 } })
    expect(back.connack.sessionPresent).toBe(false)
  })

  it('the same DISCONNECT after a non-zero Session Expiry on CONNECT is normal: no will, no server DISCONNECT', async () => {
    const { raw: watcher } = await rawClient(node.ports.mqtt, { clientId: 'cp-watch2', protocolVersion: 5 })
    await rawSubscribe(watcher, 'cp/will2', 1)
    const will = { topic: 'cp/will2', payload: Buffer.from('gone'), qos: 1, retain: false }
    const { raw } = await rawClient(node.ports.mqtt, { clientId: 'cp-exp2', protocolVersion: 5, will, properties: { sessionExpiryInterval: 10 } })
    raw.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 60 } })
    await raw.until(() => raw.closed, 5000, 'the connection closed')
    // a marker published after the close arrives after any will would have
    const { raw: pub } = await rawClient(node.ports.mqtt, { clientId: 'cp-pub2', protocolVersion: 5 })
    pub.send({ cmd: 'publish', topic: 'cp/will2', payload: 'marker', qos: 1, messageId: 1 })
    await watcher.until((ps) => ps.some((p) => p.cmd === 'publish'), 5000, 'the marker')
    expect(watcher.publishes().map((p) => p.payload.toString())).toEqual(['marker'])
    expect(raw.packets.map((p) => p.cmd)).toEqual(['connack'])
  })
})

describe('UNSUBSCRIBE with an invalid Topic Filter', () => {
  it('v5: UNSUBACK 0x8F for the invalid filters, 0x00 / 0x11 for the others, the connection stays [MQTT-4.7.1-2] [MQTT-4.8.2-1] (v5)', async () => {
    const { raw } = await rawClient(node.ports.mqtt, { clientId: 'cp-unsub', protocolVersion: 5 })
    await rawSubscribe(raw, 'cp/a', 1)
    raw.send({ cmd: 'unsubscribe', messageId: 7, unsubscriptions: ['cp/#/x', 'cp/a', 'cp/none', '$share//t', 'cp/x+'] })
    await raw.until((ps) => ps.some((p) => p.cmd === 'unsuback'), 5000, 'UNSUBACK')
    expect(raw.packets.find((p) => p.cmd === 'unsuback')!.granted).toEqual([0x8f, 0x00, 0x11, 0x8f, 0x8f])
    // the connection stays: a second UNSUBSCRIBE is answered, cp/a is gone (0x11 for a valid filter now)
    raw.send({ cmd: 'unsubscribe', messageId: 8, unsubscriptions: ['cp/a'] })
    raw.send({ cmd: 'pingreq' })
    await raw.until((ps) => ps.some((p) => p.cmd === 'pingresp'), 5000, 'PINGRESP')
    expect(raw.packets.filter((p) => p.cmd === 'unsuback').map((p) => p.granted)).toEqual([[0x8f, 0x00, 0x11, 0x8f, 0x8f], [0x11]])
    expect(raw.closed).toBe(false)
  })

  it('v5: an UNSUBSCRIBE whose only filter is invalid gets UNSUBACK [0x8F] (v5)', async () => {
    const { raw } = await rawClient(node.ports.mqtt, { clientId: 'cp-unsub1', protocolVersion: 5 })
    raw.send({ cmd: 'unsubscribe', messageId: 3, unsubscriptions: ['a/#/b'] })
    await raw.until((ps) => ps.some((p) => p.cmd === 'unsuback'), 5000, 'UNSUBACK')
    expect(raw.packets.find((p) => p.cmd === 'unsuback')!.granted).toEqual([0x8f])
    expect(raw.closed).toBe(false)
  })

  it('3.1.1: the connection is closed, no UNSUBACK (unchanged)', async () => {
    const { raw } = await rawClient(node.ports.mqtt, { clientId: 'cp-unsub4' })
    raw.send({ cmd: 'unsubscribe', messageId: 3, unsubscriptions: ['cp/a', 'a/#/b'] })
    await raw.until(() => raw.closed, 5000, 'the connection closed')
    expect(raw.packets.map((p) => p.cmd)).toEqual(['connack'])
  })
})

describe('$share SUBSCRIBE sent before CONNACK', () => {
  it('v5: handled like any other $share SUBSCRIBE: SUBACK with the granted QoS (not 0x9E), and the member gets the group\'s messages (v5)', async () => {
    const { raw } = await rawClient(node.ports.mqtt, {
      clientId: 'cp-pipe',
      protocolVersion: 5,
      pipelined: [
        { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$share/g/cp/pipe', qos: 1 }] },
        { cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: 'cp/plain', qos: 0 }, { topic: '$share/g/cp/pipe2', qos: 0 }] },
      ],
    })
    await raw.until((ps) => ps.filter((p) => p.cmd === 'suback').length === 2, 5000, 'two SUBACKs')
    expect(raw.packets.filter((p) => p.cmd === 'suback').map((p) => [p.messageId, p.granted])).toEqual([
      [1, [1]],
      [2, [0, 0]],
    ])
    const { raw: pub } = await rawClient(node.ports.mqtt, { clientId: 'cp-pipe-pub', protocolVersion: 5 })
    pub.send({ cmd: 'publish', topic: 'cp/pipe', payload: 'to the group', qos: 0 })
    await raw.until((ps) => ps.some((p) => p.cmd === 'publish'), 5000, 'the group\'s message')
    expect(raw.publishes()[0]!.payload.toString()).toBe('to the group')
  })
})
