/**
 * Contract of seam/memory-empty-queue.ts with Aedes 2 and aedes-persistence's memory store
 * (docs/internals.md row P9): Aedes' emptyQueue hands what `persistence.outgoingStream` gave to
 * node:stream's `pipeline` through its imported binding, so a CONNECT while no session queue ever
 * held a message builds no pipeline; once one did, every replay is Aedes' own and the queued
 * message reaches its session.
 */
import { once } from 'node:events'
import { createRequire } from 'node:module'
import { pipeline as streamPipeline, Readable, Writable } from 'node:stream'
import { pipeline as promisesPipeline } from 'node:stream/promises'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import * as seam from '../../src/seam/index.js'
import { closeRaw, rawClient, rawSubscribe } from '../helpers/raw-mqtt.js'
import { closeStock, stockBroker } from './stock.js'

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
})
