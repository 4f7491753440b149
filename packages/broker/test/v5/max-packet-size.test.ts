/**
 * A v5 client's Maximum Packet Size: the node never sends it a larger PUBLISH [MQTT-3.1.2-24]; the
 * message is discarded for that client as if it had been sent [MQTT-3.1.2-25] (not queued, not
 * replayed later), counted in culex_messages_dropped_total{reason="too_large_for_client"}, and the
 * client stays connected (aedes#1125). Other subscribers get it.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { closeAllClients, collect, mqttConnect } from '../helpers/cluster-mqtt.js'
import { startTestNode, waitFor } from '../helpers/node.js'

let node: CulexNode
let url: string
beforeAll(async () => {
  node = await startTestNode()
  url = `mqtt://127.0.0.1:${node.ports.mqtt}`
})
afterAll(async () => {
  await closeAllClients()
  await node.close()
})

async function tooLarge(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.ports.http}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith('culex_messages_dropped_total{reason="too_large_for_client"}'))
  return Number(line?.split(' ')[1] ?? NaN)
}

const big = 'x'.repeat(300)

it('a v5 subscriber with Maximum Packet Size 256 gets the small messages only, stays connected; a 3.1.1 subscriber gets all [MQTT-3.1.2-24] [MQTT-3.1.2-25]', async () => {
  const small5 = await mqttConnect(url, { protocolVersion: 5, clientId: 'mps-5', properties: { maximumPacketSize: 256 } })
  const all4 = await mqttConnect(url, { protocolVersion: 4, clientId: 'mps-4' })
  const got5 = collect(small5)
  const got4 = collect(all4)
  await small5.subscribeAsync('mps/t', { qos: 1 })
  await all4.subscribeAsync('mps/t', { qos: 1 })
  const before = await tooLarge()
  const pub = await mqttConnect(url, { protocolVersion: 5, clientId: 'mps-pub' })
  await pub.publishAsync('mps/t', 'a', { qos: 1 })
  await pub.publishAsync('mps/t', big, { qos: 0 })
  await pub.publishAsync('mps/t', big, { qos: 1 })
  // properties count: a small payload with a large user property is too large as well
  await pub.publishAsync('mps/t', 'p', { qos: 1, properties: { userProperties: { k: 'y'.repeat(300) } } })
  await pub.publishAsync('mps/t', 'b', { qos: 1 })
  await waitFor(() => got4.length === 5 && got5.length === 2, 5000, 'five messages at the 3.1.1 subscriber, two at the v5 one')
  expect(got5.map((g) => g.payload)).toEqual(['a', 'b'])
  expect(small5.connected).toBe(true)
  expect((await tooLarge()) - before).toBe(3)
})

it('a too large message queued for an offline v5 session is not sent when it returns, and not kept [MQTT-3.1.2-25]', async () => {
  const opts = { protocolVersion: 5 as const, clientId: 'mps-away', clean: false, properties: { maximumPacketSize: 256, sessionExpiryInterval: 300 } }
  const away = await mqttConnect(url, opts)
  await away.subscribeAsync('mps/q', { qos: 1 })
  await away.endAsync()
  const pub = await mqttConnect(url, { protocolVersion: 5, clientId: 'mps-qpub' })
  await pub.publishAsync('mps/q', big, { qos: 1 })
  await pub.publishAsync('mps/q', 'small', { qos: 1 })
  const before = await tooLarge()
  const back = await mqttConnect(url, opts)
  const got = collect(back)
  await waitFor(() => got.length === 1, 5000, 'the small message')
  expect(got.map((g) => g.payload)).toEqual(['small'])
  expect((await tooLarge()) - before).toBe(1)
  await back.endAsync()
  // nothing left in the session: a marker published now is the first thing the next connection gets
  await pub.publishAsync('mps/q', 'marker', { qos: 1 })
  const again = await mqttConnect(url, opts)
  const got2 = collect(again)
  await waitFor(() => got2.length === 1, 5000, 'the marker')
  expect(got2.map((g) => g.payload)).toEqual(['marker'])
})
