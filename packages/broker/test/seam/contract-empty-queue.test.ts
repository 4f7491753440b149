/**
 * Contract of seam/memory-empty-queue.ts with Aedes 2 and aedes-persistence's memory store
 * (docs/internals.md row P9): Aedes' emptyQueue hands what `persistence.outgoingStream` gave to
 * node:stream's `pipeline` through its imported binding, so a CONNECT while no session queue ever
 * held a message builds no pipeline; once one did, every replay is Aedes' own and the queued
 * message reaches its session. Row P11: the same condition answers a PUBACK's clear without the store.
 */
import { once } from 'node:events'
import { createRequire } from 'node:module'
import { pipeline as streamPipeline, Readable, Writable } from 'node:stream'
import { pipeline as promisesPipeline } from 'node:stream/promises'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import * as seam from '../../src/seam/index.js'
import { closeRaw, rawClient, rawSubscribe } from '../helpers/raw-mqtt.js'
import { closeStock, eventually, stockBroker } from './stock.js'

afterEach(async () => {
  await closeRaw()
  await closeStock()
})

describe('seam contract: the session replay of Aedes 2 over aedes-persistence memory (P9)', () => {
  it('P9 a CONNECT while nothing was ever queued: Aedes passes the empty queue to node:stream pipeline (the shortcut), CONNACK and clientReady as before', async () => {
    const s = await stockBroker({}, (broker) => expect(seam.skipEmptyQueueReplays(broker)).toBe(true))
    const before = seam.emptyReplays.count
    const ready = once(s.broker, 'clientReady')
    const { connack } = await rawClient(s.port, { clientId: 'p9-clean' })
    expect(connack).toMatchObject({ returnCode: 0, sessionPresent: false })
    await ready
    expect(seam.emptyReplays.count).toBe(before + 1)
    expect(s.clients[0]).toMatchObject({ connected: true, id: 'p9-clean' })
    // a persistent session that never had a message queued: the same shortcut
    const kept = once(s.broker, 'clientReady')
    await rawClient(s.port, { clientId: 'p9-kept', clean: false })
    await kept
    expect(seam.emptyReplays.count).toBe(before + 2)
  })

  it('P9 once a session queue held a message, the replay is Aedes\' own: the queued QoS 1 message reaches the reconnected session [MQTT-3.1.2-5]', async () => {
    const s = await stockBroker({}, (broker) => seam.skipEmptyQueueReplays(broker))
    const sub = await rawClient(s.port, { clientId: 'p9-sub', clean: false })
    await rawSubscribe(sub.raw, 'p9/t', 1)
    const gone = once(s.broker, 'clientDisconnect')
    await sub.raw.drop()
    await gone
    const pub = await rawClient(s.port, { clientId: 'p9-pub' })
    pub.raw.send({ cmd: 'publish', topic: 'p9/t', payload: 'queued', qos: 1, messageId: 7 })
    await pub.raw.until((ps) => ps.some((p) => p.cmd === 'puback'), 3000, 'PUBACK')
    const before = seam.emptyReplays.count
    const back = await rawClient(s.port, { clientId: 'p9-sub', clean: false })
    expect(back.connack.sessionPresent).toBe(true)
    await back.raw.until((ps) => ps.some((p) => p.cmd === 'publish'), 3000, 'the queued PUBLISH')
    expect(back.raw.publishes().map((p) => [p.topic, String(p.payload), p.qos])).toEqual([['p9/t', 'queued', 1]])
    // and every later CONNECT too
    const late = once(s.broker, 'clientReady')
    await rawClient(s.port, { clientId: 'p9-late' })
    await late
    expect(seam.emptyReplays.count).toBe(before)
  })

  it('P9 the empty queue iterates nothing for anyone else; every other pipeline is Node\'s, promisified form included', async () => {
    const seen: unknown[] = []
    for await (const p of seam.EMPTY_QUEUE) seen.push(p)
    for (const p of seam.EMPTY_QUEUE) seen.push(p)
    expect(seen).toEqual([])
    await stockBroker({}, (broker) => seam.skipEmptyQueueReplays(broker))
    // the ES module binding (as Aedes imports it) follows the replaced CommonJS export
    const stream = createRequire(import.meta.url)('node:stream') as { pipeline: typeof streamPipeline }
    expect(streamPipeline).toBe(stream.pipeline)
    expect(promisify(stream.pipeline)).toBe(promisesPipeline)
    const got: string[] = []
    const sink = new Writable({ objectMode: true, write: (c: string, _e, cb) => (got.push(c), cb()) })
    await new Promise<void>((resolve, reject) => streamPipeline(Readable.from(['a', 'b']), sink, (err) => (err ? reject(err) : resolve())))
    expect(got).toEqual(['a', 'b'])
  })

  it('P11 Aedes clears each PUBACK\'s id through outgoingClearMessageId; while nothing was ever queued the store is not asked (one shared answer), once a message was queued it is, and the queued message is cleared by its PUBACK (not resent) [MQTT-4.3.2-1]', async () => {
    interface ClearCore { outgoingClearMessageId(client: unknown, packet: unknown): Promise<unknown> }
    let asked = 0
    const s = await stockBroker({}, (broker) => {
      const core = seam.memoryPersistenceCore(broker) as unknown as ClearCore
      const clear = core.outgoingClearMessageId.bind(core)
      core.outgoingClearMessageId = (c, p) => (asked++, clear(c, p))
      seam.skipEmptyQueueReplays(broker)
    })
    const core = seam.memoryPersistenceCore(s.broker) as unknown as ClearCore
    const answers = [core.outgoingClearMessageId({ id: 'x' }, { messageId: 1 }), core.outgoingClearMessageId({ id: 'y' }, { messageId: 2 })]
    expect(answers[0]).toBe(answers[1])
    expect(await answers[0]).toBeUndefined()
    // a live QoS 1 delivery to a clean session and its PUBACK: Aedes' handlePuback goes through the shortcut
    const sub = await rawClient(s.port, { clientId: 'p11-sub', autoAck: true })
    await rawSubscribe(sub.raw, 'p11/t', 1)
    const pub = await rawClient(s.port, { clientId: 'p11-pub' })
    const acked = once(s.broker, 'ack')
    pub.raw.send({ cmd: 'publish', topic: 'p11/t', payload: 'live', qos: 1, messageId: 1 })
    await acked
    expect(asked).toBe(0)
    // a persistent session gets a message queued while offline: from then on the store answers
    const kept = await rawClient(s.port, { clientId: 'p11-kept', clean: false })
    await rawSubscribe(kept.raw, 'p11/k', 1)
    const gone = once(s.broker, 'clientDisconnect')
    await kept.raw.drop()
    await gone
    pub.raw.send({ cmd: 'publish', topic: 'p11/k', payload: 'queued', qos: 1, messageId: 2 })
    await pub.raw.until((ps) => ps.filter((p) => p.cmd === 'puback').length === 2, 3000, 'PUBACK')
    const back = await rawClient(s.port, { clientId: 'p11-kept', clean: false, autoAck: true })
    await back.raw.until((ps) => ps.some((p) => p.cmd === 'publish'), 3000, 'the queued PUBLISH')
    await eventually(() => (asked > 0 ? true : undefined), 3000, 'the store asked for the PUBACK')
    await back.raw.drop()
    const again = await rawClient(s.port, { clientId: 'p11-kept', clean: false, autoAck: true })
    expect(again.connack.sessionPresent).toBe(true)
    // nothing resent: the PUBACK cleared the queued message (a resend would come before this live one)
    pub.raw.send({ cmd: 'publish', topic: 'p11/k', payload: 'marker', qos: 1, messageId: 3 })
    await again.raw.until((ps) => ps.some((p) => p.cmd === 'publish'), 3000, 'the marker')
    expect(again.raw.publishes().map((p) => String(p.payload))).toEqual(['marker'])
  })
})

describe('seam contract: a cluster node\'s clean-session replay (P13)', () => {
  it('P13 a clean CONNECT takes the shortcut (Aedes reads persistence.outgoingStream at call time, after the callback layer\'s Readable.from); a persistent session and a resumed MQTT 5 session with Session Expiry 0 (A20, installed after it) get their queued message [MQTT-3.1.2-5]', async () => {
    // as create.ts orders them in a cluster: P13 first, A20 around it
    const s = await stockBroker({}, (broker) => {
      seam.skipCleanSessionReplays(broker)
      seam.replayQueueOfResumedV5Sessions(broker)
    })
    const before = seam.emptyReplays.count
    const ready = once(s.broker, 'clientReady')
    await rawClient(s.port, { clientId: 'p13-clean' })
    await ready
    expect(seam.emptyReplays.count).toBe(before + 1)
    const pub = await rawClient(s.port, { clientId: 'p13-pub' })
    let acks = 0
    const queue = async (clientId: string, opts: Parameters<typeof rawClient>[1]): Promise<void> => {
      const sub = await rawClient(s.port, opts)
      sub.raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `p13/${clientId}`, qos: 1 }] })
      await sub.raw.until((ps) => ps.some((p) => p.cmd === 'suback'), 3000, 'SUBACK')
      const gone = once(s.broker, 'clientDisconnect')
      await sub.raw.drop()
      await gone
      pub.raw.send({ cmd: 'publish', topic: `p13/${clientId}`, payload: 'queued', qos: 1, messageId: ++acks })
      await pub.raw.until((ps) => ps.filter((p) => p.cmd === 'puback').length === acks, 3000, 'PUBACK')
    }
    await queue('p13-kept', { clientId: 'p13-kept', clean: false })
    await queue('p13-v5', { clientId: 'p13-v5', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 300 } })
    const counted = seam.emptyReplays.count
    const kept = await rawClient(s.port, { clientId: 'p13-kept', clean: false })
    await kept.raw.until((ps) => ps.some((p) => p.cmd === 'publish'), 3000, 'the persistent session\'s queued PUBLISH')
    // Clean Start 0 and Session Expiry 0: Aedes 2 sets clean from the interval; A20 replays the queue
    const v5 = await rawClient(s.port, { clientId: 'p13-v5', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 0 } })
    expect(v5.connack.sessionPresent).toBe(true)
    await v5.raw.until((ps) => ps.some((p) => p.cmd === 'publish'), 3000, 'the resumed MQTT 5 session\'s queued PUBLISH')
    expect(seam.emptyReplays.count).toBe(counted)
  })
})
