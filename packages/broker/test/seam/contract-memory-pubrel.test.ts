/**
 * Contract of seam/memory-pubrel.ts (docs/internals.md row P8) with aedes 2.0.0-beta.1 and
 * aedes-persistence 11's memory store: each test first shows the stock behaviour the seam corrects
 * (when that expectation fails, upstream changed it: revisit the row), then the seam's version on
 * a stock broker. A persistent session with two QoS 2 messages past PUBREC gets a PUBREL for each,
 * with its own packet id, live and on reconnect [MQTT-4.3.3-*] [MQTT-4.4.0-1].
 */
import mqttPacket from 'mqtt-packet'
import { afterEach, describe, expect, it } from 'vitest'
import type { Aedes } from 'aedes'
import * as seam from '../../src/seam/index.js'
import { closeRaw, rawClient, rawSubscribe, type AnyPacket } from '../helpers/raw-mqtt.js'
import { coreOf, type Queued, type QueueCore } from './memory-queue.js'
import { closeStock, stockBroker } from './stock.js'

afterEach(async () => {
  await closeRaw()
  await closeStock()
})

const queued = async (core: QueueCore, id: string): Promise<Array<[string, number | undefined]>> => {
  const out: Array<[string, number | undefined]> = []
  for await (const p of core.outgoingStream({ id })) out.push([p.cmd, p.messageId])
  return out
}

/** two QoS 2 messages sent with ids 10 and 11 (as deliverQoS stores them), then a PUBREC's PubRel for each */
async function twoPubrecs(core: QueueCore, id: string): Promise<void> {
  const client = { id }
  for (const n of [1, 2]) {
    const packet = { cmd: 'publish', topic: 't', payload: Buffer.from(String(n)), qos: 2, brokerId: 'node', brokerCounter: n }
    await core.outgoingEnqueueCombi([{ clientId: id, qos: 2 }], packet)
    await core.outgoingUpdate(client, { ...packet, messageId: 9 + n })
  }
  // lib/handlers/pubrec.js PubRel: cmd, messageId, reasonCode
  await core.outgoingUpdate(client, { cmd: 'pubrel', messageId: 10, reasonCode: 0 })
  await core.outgoingUpdate(client, { cmd: 'pubrel', messageId: 11, reasonCode: 0 })
}

/** a persistent session with three QoS 2 messages, PUBRECs for the first two in one read; the PUBRELs, then those resent on reconnect */
async function roundOnStock(broker: (b: Aedes) => void): Promise<{ ids: number[]; live: AnyPacket[]; resent: AnyPacket[] }> {
  const s = await stockBroker({}, broker)
  const sub = await rawClient(s.port, { clientId: 'p8', clean: false })
  await rawSubscribe(sub.raw, 'p8', 2)
  const pub = await rawClient(s.port, { clientId: 'p8-pub' })
  // QoS 2 PUBLISHes (stock Aedes forwards on receipt; their PUBRECs are not awaited)
  for (let i = 0; i < 3; i++) pub.raw.send({ cmd: 'publish', topic: 'p8', payload: String(i), qos: 2, messageId: i + 1 })
  await sub.raw.until((ps) => ps.filter((p) => p.cmd === 'publish').length === 3, 3000, 'three PUBLISHes')
  const ids = sub.raw.publishes().map((p) => p.messageId as number)
  sub.raw.socket.write(Buffer.concat(ids.slice(0, 2).map((messageId) => mqttPacket.generate({ cmd: 'pubrec', messageId }))))
  await sub.raw.until((ps) => ps.filter((p) => p.cmd === 'pubrel').length === 2, 3000, 'two PUBRELs')
  const live = sub.raw.packets.filter((p) => p.cmd === 'pubrel')
  await sub.raw.drop()
  const back = await rawClient(s.port, { clientId: 'p8', clean: false })
  await back.raw.until((ps) => ps.filter((p) => p.cmd === 'publish' || p.cmd === 'pubrel').length >= 3, 3000, 'three packets resent')
  back.raw.send({ cmd: 'pingreq' })
  await back.raw.until((ps) => ps.some((p) => p.cmd === 'pingresp'), 3000, 'PINGRESP')
  return { ids, live, resent: back.raw.packets.filter((p) => p.cmd === 'publish' || p.cmd === 'pubrel') }
}
const brief = (ps: AnyPacket[]): string[] => ps.map((p) => `${p.cmd} ${p.messageId}${p.cmd === 'publish' ? ` ${String(p.payload)}` : ''}`)

describe('seam contract: stored PUBRELs of aedes-persistence memory (P8)', () => {
  it('P8 lib/handlers/pubrec.js hands outgoingUpdate a PubRel without brokerId/brokerCounter; the memory core then renames the first stored PUBREL', async () => {
    const stock = await stockBroker()
    const seen: Queued[] = []
    const core = coreOf(stock.broker)
    const update = core.outgoingUpdate.bind(core)
    core.outgoingUpdate = (client, packet) => (seen.push({ ...(packet as Queued) }), update(client, packet))
    const sub = await rawClient(stock.port, { clientId: 'p8-seen', clean: false })
    await rawSubscribe(sub.raw, 'p8', 2)
    const pub = await rawClient(stock.port, { clientId: 'p8-pub' })
    pub.raw.send({ cmd: 'publish', topic: 'p8', payload: 'x', qos: 2, messageId: 1 })
    await sub.raw.until((ps) => ps.some((p) => p.cmd === 'publish'), 3000, 'the PUBLISH')
    sub.raw.send({ cmd: 'pubrec', messageId: sub.raw.publishes()[0]!.messageId })
    await sub.raw.until((ps) => ps.some((p) => p.cmd === 'pubrel'), 3000, 'the PUBREL')
    const pubrel = seen.find((p) => p.cmd === 'pubrel')!
    expect(pubrel.messageId).toBe(sub.raw.publishes()[0]!.messageId)
    expect([pubrel.brokerId, pubrel.brokerCounter]).toEqual([undefined, undefined])
    // the store: the second PubRel renames the first stored one (if not: upstream fixed it, drop P8)
    const plain = await stockBroker()
    await twoPubrecs(coreOf(plain.broker), 'p8-core')
    expect(await queued(coreOf(plain.broker), 'p8-core')).toEqual([['pubrel', 11], ['publish', 11]])
  })

  it('P8 with the seam the memory core keeps a PUBREL per message; a stored one given back (replay, ops API copy) matches itself; PUBCOMP clears each', async () => {
    const s = await stockBroker({}, (b) => expect(seam.keepStoredPubrelsApart(b)).toBe(true))
    const core = coreOf(s.broker)
    await twoPubrecs(core, 'p8-kept')
    expect(await queued(core, 'p8-kept')).toEqual([['pubrel', 10], ['pubrel', 11]])
    // a repeated PUBREC changes nothing; lib/handlers/connect.js emptyQueue's QoSPacket keeps brokerId/brokerCounter
    await core.outgoingUpdate({ id: 'p8-kept' }, { cmd: 'pubrel', messageId: 11 })
    for await (const p of core.outgoingStream({ id: 'p8-kept' })) await core.outgoingUpdate({ id: 'p8-kept' }, { ...p })
    expect(await queued(core, 'p8-kept')).toEqual([['pubrel', 10], ['pubrel', 11]])
    await core.outgoingClearMessageId({ id: 'p8-kept' }, { messageId: 10 })
    expect(await queued(core, 'p8-kept')).toEqual([['pubrel', 11]])
    await core.outgoingClearMessageId({ id: 'p8-kept' }, { messageId: 11 })
    expect(await queued(core, 'p8-kept')).toEqual([])
    // not on a broker with another persistence (cluster mode: cluster/persistence.ts)
    expect(seam.keepStoredPubrelsApart({ persistence: { asyncPersistence: {} } } as unknown as Aedes)).toBe(false)
  })

  it('P8 two PUBRECs in one read: stock Aedes sends the second PUBREL twice and loses the first on reconnect; with the seam each message gets its own, live and resent [MQTT-4.4.0-1]', async () => {
    const stock = await roundOnStock(() => {})
    const [, b, c] = stock.ids
    expect(brief(stock.live), 'stock: both PUBRELs with the second id (if not: upstream fixed it, drop P8)').toEqual([`pubrel ${b}`, `pubrel ${b}`])
    expect(brief(stock.resent)).toEqual([`pubrel ${b}`, `publish ${b} 1`, `publish ${c} 2`])
    const fixed = await roundOnStock((broker) => seam.keepStoredPubrelsApart(broker))
    const [x, y, z] = fixed.ids
    expect(brief(fixed.live)).toEqual([`pubrel ${x}`, `pubrel ${y}`])
    expect(brief(fixed.resent)).toEqual([`pubrel ${x}`, `pubrel ${y}`, `publish ${z} 2`])
  })
})
