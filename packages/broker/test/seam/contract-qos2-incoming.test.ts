/**
 * Contract of seam/aedes-qos2-incoming.ts (docs/internals.md row A25) with aedes 2.0.0-beta.1:
 * lib/handlers/publish.js asks `persistence.incomingGetPacket` with the PUBLISH (`cmd` 'publish')
 * for QoS 2 only, stores with `incomingStorePacket` after a "not found", and handles the PUBLISHes
 * of one read at once, so a copy with the same packet id in the same read is published again
 * (when that expectation fails, upstream changed it: revisit the row); lib/handlers/pubrel.js asks
 * with the PUBREL. Then the seam on a stock broker: the copy is published once [MQTT-4.3.3-2].
 */
import mqttPacket from 'mqtt-packet'
import { afterEach, describe, expect, it } from 'vitest'
import type { Aedes } from 'aedes'
import * as seam from '../../src/seam/index.js'
import { closeRaw, rawClient, rawSubscribe } from '../helpers/raw-mqtt.js'
import { closeStock, stockBroker } from './stock.js'

afterEach(async () => {
  await closeRaw()
  await closeStock()
})

interface Store {
  incomingGetPacket(client: { id: string }, packet: { cmd?: string; messageId?: number }): Promise<unknown>
  incomingStorePacket(client: { id: string }, packet: { cmd?: string; messageId?: number }): Promise<void>
}

/** a PUBLISH QoS 2 and its DUP 1 copy in one write, PUBREL after both PUBRECs, a QoS 0 marker: the copies delivered and the store calls seen */
async function round(before?: (b: Aedes) => void): Promise<{ delivered: number; calls: string[] }> {
  const calls: string[] = []
  const s = await stockBroker({}, (b) => {
    // recorded beneath the seam, as Aedes' handlers call the store
    const store = seam.persistenceOf(b) as Store
    const get = store.incomingGetPacket.bind(store)
    const put = store.incomingStorePacket.bind(store)
    store.incomingGetPacket = (c, p) => (calls.push(`get ${p.cmd} ${p.messageId}`), get(c, p))
    store.incomingStorePacket = (c, p) => (calls.push(`store ${p.cmd} ${p.messageId}`), put(c, p))
    before?.(b)
  })
  const sub = await rawClient(s.port, { clientId: 'a25-sub' })
  await rawSubscribe(sub.raw, 'a25/#', 0)
  const pub = await rawClient(s.port, { clientId: 'a25-pub' })
  // QoS 0 and 1 never reach the incoming store
  pub.raw.send({ cmd: 'publish', topic: 'a25/q0', payload: 'q0', qos: 0 })
  pub.raw.send({ cmd: 'publish', topic: 'a25/q1', payload: 'q1', qos: 1, messageId: 6 })
  const publish = { cmd: 'publish', topic: 'a25/m', payload: 'm', qos: 2, messageId: 7, retain: false } as const
  pub.raw.socket.write(Buffer.concat([mqttPacket.generate({ ...publish, dup: false }), mqttPacket.generate({ ...publish, dup: true })]))
  await pub.raw.until((ps) => ps.filter((p) => p.cmd === 'pubrec').length === 2, 3000, 'two PUBRECs')
  pub.raw.send({ cmd: 'pubrel', messageId: 7 })
  await pub.raw.until((ps) => ps.some((p) => p.cmd === 'pubcomp'), 3000, 'PUBCOMP')
  pub.raw.send({ cmd: 'publish', topic: 'a25/end', payload: 'end', qos: 0 })
  await sub.raw.until((ps) => ps.some((p) => p.topic === 'a25/end'), 3000, 'marker')
  return { delivered: sub.raw.publishes().filter((p) => p.topic === 'a25/m').length, calls }
}

describe('seam contract: inbound QoS 2 check and store (A25)', () => {
  it('A25 stock aedes: both copies of one read are checked before either is stored, and both are published', async () => {
    const { delivered, calls } = await round()
    expect(calls).toEqual(['get publish 7', 'get publish 7', 'store publish 7', 'store publish 7', 'get pubrel 7'])
    expect(delivered).toBe(2)
  })

  it('A25 [MQTT-4.3.3-2] with checkQoS2OncePerPacketId: the copy waits for the first store, is found and is not published again', async () => {
    const { delivered, calls } = await round((b) => seam.checkQoS2OncePerPacketId(b))
    expect(calls).toEqual(['get publish 7', 'store publish 7', 'get publish 7', 'get pubrel 7'])
    expect(delivered).toBe(1)
  })
})
