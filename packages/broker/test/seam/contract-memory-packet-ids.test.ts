/**
 * Contract of seam/memory-packet-ids.ts (docs/internals.md row P10) with aedes 2.0.0-beta.1 and
 * aedes-persistence 11's memory store: each test first shows the stock behaviour the seam corrects
 * (when that expectation fails, upstream changed it: revisit the row), then the seam's version on
 * a stock broker. A persistent session's new PUBLISH never takes a packet id still in flight
 * [MQTT-2.3.1-2] [MQTT-2.2.1-4]. The counter is set through the seam here to reach the id in
 * flight at once; test/node/packet-id-wrap.test.ts takes it round the real way.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Aedes } from 'aedes'
import * as seam from '../../src/seam/index.js'
import { closeRaw, rawClient, rawSubscribe, type Raw } from '../helpers/raw-mqtt.js'
import { coreOf, type QueueCore } from './memory-queue.js'
import { closeStock, stockBroker, type Stock } from './stock.js'

afterEach(async () => {
  await closeRaw()
  await closeStock()
})

const queued = async (core: QueueCore, id: string): Promise<string[]> => {
  const out: string[] = []
  for await (const p of core.outgoingStream({ id })) out.push(`${p.cmd} ${p.messageId} ${String(p.payload)}`)
  return out
}
const settle = async (raw: Raw): Promise<void> => {
  raw.send({ cmd: 'pingreq' })
  await raw.until((ps) => ps.some((p) => p.cmd === 'pingresp'), 3000, 'PINGRESP')
}

/**
 * a persistent session holds 'held' (QoS 1, no PUBACK); its Client's counter is put back on that
 * id (what 65,534 more deliveries would do); 'next' goes out and is acknowledged
 */
async function heldThenNext(s: Stock, clientId: string): Promise<{ held: number; next: number; counter: number | undefined; queue: string[] }> {
  const sub = await rawClient(s.port, { clientId, clean: false })
  await rawSubscribe(sub.raw, 't', 1)
  const pub = await rawClient(s.port, { clientId: `${clientId}-pub` })
  const client = s.clients.find((c) => c.id === clientId)!
  // a new Client's counter starts at random: here at 100
  seam.setNextPacketId(client, 100)
  pub.raw.send({ cmd: 'publish', topic: 't', payload: 'held', qos: 1, messageId: 1 })
  await sub.raw.until((ps) => ps.some((p) => p.cmd === 'publish'), 3000, 'held')
  const held = sub.raw.publishes()[0]!.messageId as number
  expect(held).toBe(100)
  // lib/qos-packet.js takes `_nextId` and counts on, from 1 again after 65535
  seam.setNextPacketId(client, 65535)
  pub.raw.send({ cmd: 'publish', topic: 't', payload: 'wrap', qos: 1, messageId: 2 })
  await sub.raw.until((ps) => ps.filter((p) => p.cmd === 'publish').length === 2, 3000, 'wrap')
  expect(sub.raw.publishes()[1]!.messageId).toBe(65535)
  expect(seam.nextPacketId(client)).toBe(1)
  sub.raw.send({ cmd: 'puback', messageId: 65535 })
  seam.setNextPacketId(client, held)
  pub.raw.send({ cmd: 'publish', topic: 't', payload: 'next', qos: 1, messageId: 3 })
  await sub.raw.until((ps) => ps.filter((p) => p.cmd === 'publish').length === 3, 3000, 'next')
  const next = sub.raw.publishes()[2]!.messageId as number
  const counter = seam.nextPacketId(client)
  sub.raw.send({ cmd: 'puback', messageId: next })
  await settle(sub.raw)
  return { held, next, counter, queue: await queued(coreOf(s.broker), clientId) }
}

describe('seam contract: packet ids in flight in aedes-persistence memory (P10)', () => {
  it('P10 stock: the counter hands out the id in flight, and its PUBACK clears the older message from the memory store', async () => {
    const s = await stockBroker()
    const r = await heldThenNext(s, 'p9-stock')
    expect(r.next, 'stock reuses the id in flight (if not: upstream fixed it, drop P10)').toBe(r.held)
    expect(r.queue).toEqual([`publish ${r.held} next`])
    // the store itself: two entries of one id, the first one cleared
    const core = coreOf(s.broker)
    for (const n of [1, 2]) {
      const packet = { cmd: 'publish', topic: 't', payload: String(n), qos: 1, brokerId: 'node', brokerCounter: n }
      await core.outgoingEnqueueCombi([{ clientId: 'p9-core', qos: 1 }], packet)
      await core.outgoingUpdate({ id: 'p9-core' }, { ...packet, messageId: 7 })
    }
    await core.outgoingClearMessageId({ id: 'p9-core' }, { messageId: 7 })
    expect(await queued(core, 'p9-core')).toEqual(['publish 7 2'])
  })

  it('P10 with the seam the next PUBLISH skips the id in flight, the counter moves past it, each PUBACK clears its own message', async () => {
    const s = await stockBroker({}, (b) => expect(seam.skipPacketIdsInFlight(b)).toBe(true))
    const r = await heldThenNext(s, 'p9-fixed')
    expect(r.next).toBe((r.held % 65535) + 1)
    expect(r.counter).toBe((r.next % 65535) + 1)
    expect(r.queue).toEqual([`publish ${r.held} held`])
    // not on a broker with another persistence (cluster mode: cluster/session-queue.ts)
    expect(seam.skipPacketIdsInFlight({ persistence: { asyncPersistence: {} } } as unknown as Aedes)).toBe(false)
  })

  it('P10 with the seam a stored message given back keeps its id (replay), a PUBREL keeps its message id, a PUBCOMP frees it', async () => {
    const s = await stockBroker({}, (b) => {
      seam.keepStoredPubrelsApart(b)
      seam.skipPacketIdsInFlight(b)
    })
    const core = coreOf(s.broker)
    const client = { id: 'p9-core' }
    const packets = [1, 2].map((n) => ({ cmd: 'publish', topic: 't', payload: String(n), qos: 2, brokerId: 'node', brokerCounter: n }))
    for (const p of packets) await core.outgoingEnqueueCombi([{ clientId: client.id, qos: 2 }], p)
    await core.outgoingUpdate(client, { ...packets[0], messageId: 7 })
    // lib/handlers/connect.js emptyQueue's QoSPacket of a sent message: its own id, kept
    const replayed = { ...packets[0], messageId: 7 }
    await core.outgoingUpdate(client, replayed)
    expect(replayed.messageId).toBe(7)
    // lib/handlers/pubrec.js PubRel: the id stays with its message
    await core.outgoingUpdate(client, { cmd: 'pubrel', messageId: 7, reasonCode: 0 })
    const second = { ...packets[1], messageId: 7 }
    await core.outgoingUpdate(client, second)
    expect(second.messageId).toBe(8)
    expect(await queued(core, client.id)).toEqual(['pubrel 7 undefined', 'publish 8 2'])
    // PUBCOMP 7: the id is free again
    await core.outgoingClearMessageId(client, { messageId: 7 })
    const third = { cmd: 'publish', topic: 't', payload: '3', qos: 2, brokerId: 'node', brokerCounter: 3 }
    await core.outgoingEnqueueCombi([{ clientId: client.id, qos: 2 }], third)
    const sent = { ...third, messageId: 7 }
    await core.outgoingUpdate(client, sent)
    expect(sent.messageId).toBe(7)
    expect(await queued(core, client.id)).toEqual(['publish 8 2', 'publish 7 3'])
  })
})
