/**
 * Contract of seam/aedes-republish.ts (docs/internals.md row A26), on a stock broker: the id a
 * QoS 1/2 message gets as its publish starts (broker.publish, broker.counter, aedes-packet), and a
 * message published again with its own ids, emitted and queued again, without the `published`
 * hook and the 'publish' event it had the first time (cluster/replica-acks.ts, after a failover).
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Aedes } from 'aedes'
import * as seam from '../../src/seam/index.js'
import { closeRaw, rawClient } from '../helpers/raw-mqtt.js'
import { closeStock, eventually, stockBroker } from './stock.js'

afterEach(async () => {
  await closeRaw()
  await closeStock()
})

type Delivered = { topic: string; brokerId: string; brokerCounter: number; qos: number }
/** the messages the broker emits to a subscription of `topic` (broker.subscribe, public) */
async function emitted(broker: Aedes, topic: string): Promise<Delivered[]> {
  const got: Delivered[] = []
  await new Promise<void>((resolve) => broker.subscribe(topic, (p, cb) => (got.push(p as unknown as Delivered), cb()), resolve))
  return got
}
const key = (p: Delivered): string => `${p.brokerId}:${p.brokerCounter}`
const publishOf = (broker: Aedes, packet: object): Promise<void> =>
  new Promise((resolve, reject) => broker.publish(packet as never, (err?: Error | null) => (err ? reject(err) : resolve())))

describe('seam contract: a message published again', () => {
  it('A26 aedes broker.publish / broker.counter: a QoS 1/2 publish starts with its message id (broker.id:broker.counter + 1, or its own), ends once', async () => {
    const events: string[] = []
    const s = await stockBroker({}, (broker) =>
      seam.watchQoSPublishes(broker, { started: (id) => void events.push(`start ${id}`), finished: (id) => void events.push(`end ${id}`) }),
    )
    const got = await emitted(s.broker, 'a26/#')
    const { raw } = await rawClient(s.port, { clientId: 'a26' })
    raw.send({ cmd: 'publish', topic: 'a26/client', payload: 'x', qos: 1, messageId: 1 })
    raw.send({ cmd: 'publish', topic: 'a26/zero', payload: 'x', qos: 0 })
    await raw.until((ps) => ps.some((p) => p.cmd === 'puback'))
    await publishOf(s.broker, { cmd: 'publish', topic: 'a26/own', payload: Buffer.from('y'), qos: 2, retain: false, dup: false, brokerId: 'other', brokerCounter: 7 })
    await eventually(() => (got.length === 3 && events.length === 4 ? true : undefined), 3000, 'three messages, two QoS 1/2 publishes done')
    const client = got.find((p) => p.topic === 'a26/client')!
    const own = got.find((p) => p.topic === 'a26/own')!
    expect(key(own), 'a packet with its ids keeps them (aedes-packet)').toBe('other:7')
    expect(events, 'broker.id:broker.counter + 1 named the Packet broker.publish made; QoS 0 not watched').toEqual([`start ${key(client)}`, `end ${key(client)}`, 'start other:7', 'end other:7'])
  })

  it('A26 aedes broker.published / the publish event: skipped for a message published again, which is emitted again with its ids', async () => {
    let hooks = 0
    let events = 0
    let republish!: seam.Republish
    const s = await stockBroker({ published: (p, _c, done) => (p.topic === 'a26/again' && hooks++, done()) }, (broker) => {
      broker.on('publish', (p) => void (p.topic === 'a26/again' && events++))
      republish = seam.watchQoSPublishes(broker, { started: () => {}, finished: () => {} })
    })
    const got = await emitted(s.broker, 'a26/again')
    await publishOf(s.broker, { cmd: 'publish', topic: 'a26/again', payload: Buffer.from('z'), qos: 1, retain: false, dup: false })
    expect([hooks, events], 'the first publish: the published hook and the publish event once').toEqual([1, 1])
    await new Promise<void>((resolve, reject) => republish(got[0]!, (err) => (err ? reject(err) : resolve())))
    await new Promise((r) => setImmediate(r))
    expect(got.map(key), 'emitted again, same message id').toEqual([key(got[0]!), key(got[0]!)])
    expect([hooks, events], 'broker.published (read at call time with the packet given to publish) and the publish event skipped').toEqual([1, 1])
    // anything else published meanwhile still runs them
    await publishOf(s.broker, { cmd: 'publish', topic: 'a26/again', payload: Buffer.from('w'), qos: 1, retain: false, dup: false })
    expect([hooks, events]).toEqual([2, 2])
  })
})
