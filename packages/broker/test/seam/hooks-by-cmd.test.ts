/**
 * seam/hooks-by-cmd.ts through seam/client-hooks.ts on a stock broker (issue 15): a packet hook or
 * write hook registered with packet types is called for those packets only, one without for every
 * packet, and what the client sees is the same (the QoS 1 message is delivered and acknowledged).
 */
import { once } from 'node:events'
import { afterEach, expect, it } from 'vitest'
import * as seam from '../../src/seam/index.js'
import { closeRaw, rawClient, rawSubscribe } from '../helpers/raw-mqtt.js'
import { closeStock, stockBroker } from './stock.js'

afterEach(async () => {
  await closeRaw()
  await closeStock()
})

it('hooks given packet types see only those packets, read and written; the others see every packet', async () => {
  const read: Record<string, string[]> = { all: [], acks: [], publish: [] }
  const written: Record<string, string[]> = { all: [], publish: [] }
  const s = await stockBroker({}, (broker) => {
    seam.interceptPacketsOfEachClient<{ cmd: string }>(broker, 'limits', (p) => void read.all!.push(p.cmd))
    seam.interceptPacketsOfEachClient<{ cmd: string }>(broker, 'limits', (p) => void read.acks!.push(p.cmd), ['puback', 'pubcomp'])
    seam.interceptPacketsOfEachClient<{ cmd: string }>(broker, 'mqtt5', (p) => void read.publish!.push(p.cmd), ['publish'])
    seam.onWriteOfEachClient(broker, 'limits', (p) => void written.all!.push(p.cmd))
    seam.onWriteOfEachClient(broker, 'mqtt5', (p) => void written.publish!.push(p.cmd), ['publish'])
  })
  const sub = await rawClient(s.port, { clientId: 'by-cmd-sub', autoAck: true })
  await rawSubscribe(sub.raw, 'by/cmd', 1)
  const pub = await rawClient(s.port, { clientId: 'by-cmd-pub' })
  // Aedes' 'ack': the subscriber's PUBACK handled
  const acked = once(s.broker, 'ack')
  pub.raw.send({ cmd: 'publish', topic: 'by/cmd', payload: 'm', qos: 1, messageId: 5 })
  await pub.raw.until((ps) => ps.some((p) => p.cmd === 'puback'), 3000, 'PUBACK')
  await sub.raw.until((ps) => ps.some((p) => p.cmd === 'publish'), 3000, 'the delivery')
  pub.raw.send({ cmd: 'pingreq' })
  await pub.raw.until((ps) => ps.some((p) => p.cmd === 'pingresp'), 3000, 'PINGRESP')
  await acked
  expect(new Set(read.all)).toEqual(new Set(['connect', 'subscribe', 'publish', 'puback', 'pingreq']))
  expect(read.acks).toEqual(['puback'])
  expect(read.publish).toEqual(['publish'])
  expect(new Set(written.all)).toEqual(new Set(['connack', 'suback', 'puback', 'publish', 'pingresp']))
  expect(written.publish).toEqual(['publish'])
})
