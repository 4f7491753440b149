/**
 * MQTT 5 enhanced authentication (AUTH, §4.12) is not offered: a CONNECT with an Authentication
 * Method gets CONNACK 0x8C Bad authentication method and its connection is closed
 * [MQTT-3.2.2-7]; an AUTH packet from a connected client closes that client. No crash, no hang:
 * the node serves the next client.
 */
import { connect as netConnect } from 'node:net'
import { once } from 'node:events'
import mqttPacket from 'mqtt-packet'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { CulexNode } from '../../src/main.js'
import { closeAllClients, mqttConnect } from '../helpers/cluster-mqtt.js'
import { startTestNode } from '../helpers/node.js'
import { closeRaw, rawClient } from '../helpers/raw-mqtt.js'

let node: CulexNode
beforeAll(async () => {
  node = await startTestNode()
})
afterAll(async () => {
  await closeAllClients()
  await closeRaw()
  await node.close()
})

it('a CONNECT with an Authentication Method gets CONNACK 0x8C and the connection is closed [MQTT-3.2.2-7]', async () => {
  const socket = netConnect({ port: node.ports.mqtt, host: '127.0.0.1' })
  socket.on('error', () => {})
  await once(socket, 'connect')
  const parser = mqttPacket.parser({ protocolVersion: 5 })
  const packets: mqttPacket.Packet[] = []
  parser.on('packet', (p) => packets.push(p))
  socket.on('data', (d) => parser.parse(d))
  const closed = once(socket, 'close')
  socket.write(
    mqttPacket.generate(
      { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 0, clientId: 'auth-scram', properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: Buffer.from('n,,n=user,r=abc') } },
      { protocolVersion: 5 },
    ),
  )
  await closed
  expect(packets.map((p) => [p.cmd, (p as mqttPacket.IConnackPacket).reasonCode])).toEqual([['connack', 0x8c]])
  // the node serves the next client
  const next = await mqttConnect(`mqtt://127.0.0.1:${node.ports.mqtt}`, { protocolVersion: 5, clientId: 'auth-next' })
  expect(next.connected).toBe(true)
})

it('an AUTH packet from a connected v5 client closes that client; the node carries on', async () => {
  const { raw } = await rawClient(node.ports.mqtt, { clientId: 'auth-packet', protocolVersion: 5 })
  raw.send({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'SCRAM-SHA-256' } })
  await raw.until(() => raw.closed, 5000, 'closed')
  const next = await mqttConnect(`mqtt://127.0.0.1:${node.ports.mqtt}`, { protocolVersion: 5, clientId: 'auth-next2' })
  await next.publishAsync('auth/t', 'x', { qos: 1 })
})
