/**
 * Contract of seam/memory-offline.ts with Aedes 2 and aedes-persistence's memory store
 * (docs/internals.md row P7), and what the fast path does on a stock broker: no offline-queue
 * topic match while only clean sessions subscribe, the offline queue unchanged once a session
 * keeps a QoS 1 subscription, and again after sessions come and go.
 */
import { once } from 'node:events'
import { afterEach, describe, expect, it } from 'vitest'
import * as seam from '../../src/seam/index.js'
import { closeRaw, rawClient, rawSubscribe, type Raw } from '../helpers/raw-mqtt.js'
import { closeStock, eventually, stockBroker, type Stock } from './stock.js'

afterEach(async () => {
  await closeRaw()
  await closeStock()
})

interface Core {
  constructor: { name: string }
  addSubscriptions(client: unknown, subs: unknown[]): Promise<void>
  subscriptionsByTopic(topic: string): Promise<unknown[]>
  outgoingEnqueueCombi(subs: unknown[], packet: unknown): Promise<void>
  countOffline(): Promise<{ subsCount: number }>
}

/** a stock broker whose memory core's trie matches are counted (the count taken before the seam binds them) */
async function counted(install: boolean): Promise<{ s: Stock; matches: () => number; combis: unknown[][] }> {
  let matches = 0
  const combis: unknown[][] = []
  const s = await stockBroker({}, (broker) => {
    const core = seam.memoryPersistenceCore(broker) as unknown as Core
    const byTopic = core.subscriptionsByTopic.bind(core)
    const combi = core.outgoingEnqueueCombi.bind(core)
    core.subscriptionsByTopic = (t) => (matches++, byTopic(t))
    core.outgoingEnqueueCombi = (subs, p) => (combis.push(subs), combi(subs, p))
    if (install) expect(seam.skipOfflineMatchWithoutSessions(broker)).toBe(true)
  })
  return { s, matches: () => matches, combis }
}

/** publishes n QoS 1 messages and waits for their PUBACKs */
async function publishQoS1(raw: Raw, topic: string, n: number, firstId = 1): Promise<void> {
  for (let i = 0; i < n; i++) raw.send({ cmd: 'publish', topic, payload: `m${i}`, qos: 1, messageId: firstId + i })
  await raw.until((ps) => ps.filter((p) => p.cmd === 'puback' && (p.messageId ?? 0) >= firstId).length >= n, 3000, 'the PUBACKs')
}

async function dropSession(s: Stock, raw: Raw): Promise<void> {
  const gone = once(s.broker, 'clientDisconnect')
  await raw.drop()
  await gone
}

describe('seam contract: Aedes 2 offline enqueue over aedes-persistence memory (P7)', () => {
  it('P7 the memory core: MemoryPersistence behind persistence.asyncPersistence; addSubscriptions counts a QoS 1 filter synchronously', async () => {
    const s = await stockBroker()
    const core = seam.memoryPersistenceCore(s.broker) as unknown as Core
    expect(core.constructor.name).toBe('MemoryPersistence')
    for (const m of ['addSubscriptions', 'removeSubscriptions', 'cleanSubscriptions', 'subscriptionsByTopic', 'outgoingEnqueueCombi', 'countOffline']) {
      expect(typeof (core as unknown as Record<string, unknown>)[m], m).toBe('function')
    }
    // not awaited: the trie is changed before addSubscriptions' first await, and countOffline reads it when called
    void core.addSubscriptions({ id: 'p7' }, [{ topic: 'p7/t', qos: 1 }])
    const counted = core.countOffline()
    expect((await counted).subsCount).toBe(1)
    expect(await core.subscriptionsByTopic('p7/t')).toHaveLength(1)
  })

  it('P7 Aedes calls subscriptionsByTopic then outgoingEnqueueCombi with its answer for each QoS 1 PUBLISH, not for QoS 0', async () => {
    const { s, matches, combis } = await counted(false)
    const pub = await rawClient(s.port, { clientId: 'p7-pub' })
    pub.raw.send({ cmd: 'publish', topic: 'p7/x', payload: 'q0', qos: 0 })
    await publishQoS1(pub.raw, 'p7/x', 2)
    expect(matches()).toBe(2)
    expect(combis).toEqual([[], []])
  })
})

describe('memory-offline fast path on a stock broker (issue 15)', () => {
  it('no offline-queue match per QoS 1 message while only clean sessions subscribe (fails without the fast path)', async () => {
    const { s, matches } = await counted(true)
    const sub = await rawClient(s.port, { clientId: 'clean-sub', autoAck: true })
    await rawSubscribe(sub.raw, 'fp/t', 1)
    const pub = await rawClient(s.port, { clientId: 'fp-pub' })
    await publishQoS1(pub.raw, 'fp/t', 5)
    await sub.raw.until((ps) => ps.filter((p) => p.cmd === 'publish').length === 5, 3000, 'the deliveries')
    expect(matches()).toBe(0)
  })

  it('the empty answers are synchronous: a QoS 1 message reaches the emitter within broker.publish, no microtask later (fails with promise answers)', async () => {
    const { s } = await counted(true)
    const seen: string[] = []
    // the emitter Aedes publishes through (aedes.js `mq`, mqemitter)
    const mq = (s.broker as unknown as { mq: { on(topic: string, fn: (packet: { topic: string }, cb: () => void) => void): void } }).mq
    mq.on('sync/t', (packet, cb) => {
      seen.push(packet.topic)
      cb()
    })
    let completed = false
    s.broker.publish({ cmd: 'publish', topic: 'sync/t', payload: Buffer.from('x'), qos: 1, retain: false, dup: false }, () => (completed = true))
    expect(seen).toEqual(['sync/t'])
    expect(completed).toBe(true)
    // what Aedes does with the answers it is handed still works as a promise would: awaited, chained, caught
    const core = seam.memoryPersistenceCore(s.broker) as unknown as Core
    expect(await core.subscriptionsByTopic('sync/t')).toEqual([])
    expect(await Promise.resolve(core.outgoingEnqueueCombi([], {})).then(() => 'chained')).toBe('chained')
  })

  it('a clean:false session offline gets its QoS 1 messages queued, also after another session subscribed and unsubscribed [MQTT-3.1.2-5]', async () => {
    const { s, matches } = await counted(true)
    const pub = await rawClient(s.port, { clientId: 'fp-pub' })
    // a persistent session comes and goes: the trie fills and empties again
    const a = await rawClient(s.port, { clientId: 'fp-a', clean: false })
    await rawSubscribe(a.raw, 'fp/a', 1)
    a.raw.send({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: ['fp/a'] })
    await a.raw.until((ps) => ps.some((p) => p.cmd === 'unsuback'), 3000, 'the UNSUBACK')
    await publishQoS1(pub.raw, 'fp/none', 1, 1)
    await dropSession(s, a.raw)
    // a persistent session subscribed at QoS 1, then offline: its messages are queued
    const b = await rawClient(s.port, { clientId: 'fp-b', clean: false })
    await rawSubscribe(b.raw, 'fp/b', 1)
    await dropSession(s, b.raw)
    await publishQoS1(pub.raw, 'fp/b', 3, 10)
    // stock Aedes writes the PUBACK before it queues the message
    await eventually(() => (matches() >= 3 ? true : undefined), 3000, 'the offline matches')
    const again = await rawClient(s.port, { clientId: 'fp-b', clean: false, autoAck: true })
    expect(again.connack.sessionPresent).toBe(true)
    await again.raw.until((ps) => ps.filter((p) => p.cmd === 'publish').length === 3, 3000, 'the queued messages')
    expect(again.raw.publishes().map((p) => String(p.payload))).toEqual(['m0', 'm1', 'm2'])
    // the session ends (clean: true): nothing to match any more
    await again.raw.drop()
    const cleaned = await rawClient(s.port, { clientId: 'fp-b', clean: true, autoAck: true })
    expect(cleaned.connack.sessionPresent).toBe(false)
    await rawSubscribe(cleaned.raw, 'fp/b', 1)
    const delivered = (n: number): Promise<void> => cleaned.raw.until((ps) => ps.filter((p) => p.cmd === 'publish').length === n, 3000, 'the deliveries')
    await publishQoS1(pub.raw, 'fp/b', 1, 20)
    await delivered(1)
    const before = matches()
    await publishQoS1(pub.raw, 'fp/b', 2, 30)
    await delivered(3)
    expect(matches()).toBe(before)
  })
})

describe('seam contract: the memory store\'s retained messages (row P14, memory-retained.ts)', () => {
  it('P14 Aedes stores each retained PUBLISH through the memory core\'s storeRetained (an empty payload deletes): countRetainedTopics counts what createRetainedStream reads, without reading it [MQTT-3.3.1-5] [MQTT-3.3.1-10]', async () => {
    let count: (() => number) | undefined
    const s = await stockBroker({}, (broker) => (count = seam.countRetainedTopics(broker)))
    expect(count).toBeTypeOf('function')
    const { raw } = await rawClient(s.port, { clientId: 'p14' })
    let id = 0
    const publish = async (topic: string, payload: string): Promise<void> => {
      const messageId = ++id
      raw.send({ cmd: 'publish', topic, payload, qos: 1, messageId, retain: true })
      await raw.until((ps) => ps.some((p) => p.cmd === 'puback' && p.messageId === messageId))
    }
    const stored = async (): Promise<string[]> => {
      const topics: string[] = []
      const store = seam.persistenceOf(s.broker) as { createRetainedStream(pattern: string): AsyncIterable<{ topic: string }> }
      for await (const p of store.createRetainedStream('#')) topics.push(p.topic)
      return topics.sort()
    }
    await publish('p14/a', 'one')
    await publish('p14/b', 'two')
    await publish('p14/a', 'again')
    expect(await stored()).toEqual(['p14/a', 'p14/b'])
    expect(count!()).toBe(2)
    await publish('p14/a', '')
    await publish('p14/none', '')
    expect(await stored()).toEqual(['p14/b'])
    expect(count!()).toBe(1)
  })
})
