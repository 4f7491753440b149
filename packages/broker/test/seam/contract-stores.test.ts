/**
 * Contract of the seam with mqemitter, aedes-persistence(-redis), qlobber and ioredis
 * (docs/internals.md, rows E*, P*, R1): one test per internal, named after it. The Redis
 * layout is checked against the stock aedes-persistence-redis on a real redis-server.
 */
import { Socket } from 'node:net'
import { once } from 'node:events'
import { createRequire } from 'node:module'
import { Redis } from 'ioredis'
import mqttPacket from 'mqtt-packet'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import * as seam from '../../src/seam/index.js'
import { killAll, startRedis, type TestRedis } from '../helpers/cluster-procs.js'
import { closeRaw, rawClient, rawSubscribe } from '../helpers/raw-mqtt.js'
import { closeStock, stockBroker } from './stock.js'

const require = createRequire(import.meta.url)
let redis: TestRedis
const links: Redis[] = []
const link = (): Redis => {
  const r = new Redis(redis.url, { maxRetriesPerRequest: 1 })
  links.push(r)
  return r
}

beforeAll(async () => {
  redis = await startRedis()
})
afterEach(async () => {
  await closeRaw()
  await closeStock()
})
afterAll(async () => {
  for (const r of links) r.disconnect()
  await killAll()
})

describe('seam contract: mqemitter', () => {
  it('E1 mqemitter _matcher.match: the listeners whose filter matches a topic', async () => {
    const m = seam.createMatchingEmitter({ concurrency: 10, matchEmptyLevels: true })
    const got: string[] = []
    const listener = (p: unknown, cb: () => void): void => (got.push((p as { topic: string }).topic), cb())
    await new Promise<void>((resolve) => m.emitter.on('e1/+', listener, resolve))
    const matched = m.listenersFor('e1/x')
    expect(matched).toHaveLength(1)
    matched[0]!({ topic: 'e1/x' }, () => {})
    expect(got).toEqual(['e1/x'])
    expect(m.listenersFor('other')).toEqual([])
  })

  it('E2 mqemitter closed: true once closed', async () => {
    const m = seam.createMatchingEmitter({ concurrency: 10, matchEmptyLevels: true })
    expect(m.closed()).toBe(false)
    await new Promise<void>((resolve) => m.emitter.close(resolve))
    expect(m.closed()).toBe(true)
  })
})

describe('seam contract: aedes-persistence, aedes-persistence-redis, qlobber', () => {
  it('P1 aedes-persistence/callBackPersistence.js: the class the packages build their stores with', () => {
    const memory = (require('aedes-persistence') as () => object)()
    expect(memory).toBeInstanceOf(seam.CallBackPersistence)
    const stock = (require('aedes-persistence-redis') as (o: object) => object)({ conn: link() })
    expect(stock).toBeInstanceOf(seam.CallBackPersistence)
    expect((stock as { asyncPersistence: unknown }).asyncPersistence).toBeInstanceOf(seam.asyncRedisPersistence())
  })

  it('P2 aedes-persistence-redis/asyncPersistence.js: the retained and incoming store we delegate to; retained messages in the hash RETAINED_HASH', async () => {
    const inner = new (seam.asyncRedisPersistence())({ conn: link() })
    for (const m of ['storeRetained', 'createRetainedStream', 'createRetainedStreamCombi', 'incomingStorePacket', 'incomingGetPacket', 'incomingDelPacket', 'cleanIncoming']) {
      expect(typeof inner[m], `AsyncRedisPersistence.${m}`).toBe('function')
    }
    await inner.storeRetained({ cmd: 'publish', topic: 'p2/t', payload: Buffer.from('r'), qos: 0, retain: true })
    const got: string[] = []
    for await (const p of inner.createRetainedStream('p2/#') as AsyncIterable<{ topic: string }>) got.push(p.topic)
    expect(got).toEqual(['p2/t'])
    // kept in one hash, a field per topic (RETAINED_HASH: culex_retained_messages is its length); an empty payload deletes
    const db = link()
    expect(await db.hexists(seam.RETAINED_HASH, 'p2/t')).toBe(1)
    const before = await db.hlen(seam.RETAINED_HASH)
    await inner.storeRetained({ cmd: 'publish', topic: 'p2/t', payload: Buffer.from('again'), qos: 0, retain: true })
    expect(await db.hlen(seam.RETAINED_HASH)).toBe(before)
    await inner.storeRetained({ cmd: 'publish', topic: 'p2/t', payload: Buffer.alloc(0), qos: 0, retain: true })
    expect(await db.hlen(seam.RETAINED_HASH)).toBe(before - 1)
  })

  it('P15 aedes-persistence-redis finds a wildcard filter\'s retained messages with hscanBufferStream(RETAINED_HASH, { match }) on its connection: scanRetainedInPages makes each step ask for RETAINED_SCAN_COUNT fields; all are found once', async () => {
    const db = link()
    const steps: Array<{ key: string; opts?: { match?: string; count?: number } }> = []
    const scan = db.hscanBufferStream.bind(db)
    db.hscanBufferStream = ((key: string, opts?: { match?: string; count?: number }) => (steps.push({ key, opts }), scan(key, opts))) as typeof db.hscanBufferStream
    const inner = new (seam.asyncRedisPersistence())({ conn: seam.scanRetainedInPages(db) })
    const n = 2500
    for (let i = 0; i < n; i += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, k) => inner.storeRetained({ cmd: 'publish', topic: `p15/${i + k}`, payload: Buffer.from('r'), qos: 0, retain: true })))
    }
    const got = new Set<string>()
    let count = 0
    for await (const p of inner.createRetainedStream('p15/+') as AsyncIterable<{ topic: string }>) {
      got.add(p.topic)
      count++
    }
    expect({ distinct: got.size, count }).toEqual({ distinct: n, count: n })
    expect(steps).toEqual([{ key: seam.RETAINED_HASH, opts: { count: seam.RETAINED_SCAN_COUNT, match: 'p15*' } }])
  })

  it('P16 aedes-persistence-redis stores and deletes a retained message with hset / hdel(RETAINED_HASH) on its connection: indexRetainedWrites keeps RETAINED_INDEX the hash\'s topics; decodeRetained reads what it stored', async () => {
    const db = link()
    await db.del(seam.RETAINED_HASH, seam.RETAINED_INDEX)
    const inner = new (seam.asyncRedisPersistence())({ conn: seam.indexRetainedWrites(db) })
    await inner.storeRetained({ cmd: 'publish', topic: 'p16/a', payload: Buffer.from('x'), qos: 1, retain: true })
    await inner.storeRetained({ cmd: 'publish', topic: 'p16/b', payload: Buffer.from('y'), qos: 0, retain: true })
    expect((await db.zrange(seam.RETAINED_INDEX, 0, -1)).sort()).toEqual(['p16/a', 'p16/b'])
    expect(seam.decodeRetained((await db.hgetBuffer(seam.RETAINED_HASH, 'p16/a'))!)).toMatchObject({ topic: 'p16/a', qos: 1 })
    // an empty payload deletes it from both
    await inner.storeRetained({ cmd: 'publish', topic: 'p16/a', payload: Buffer.alloc(0), qos: 0, retain: true })
    expect(await db.zrange(seam.RETAINED_INDEX, 0, -1)).toEqual(['p16/b'])
    expect(await db.hkeys(seam.RETAINED_HASH)).toEqual(['p16/b'])
    // other keys as asked
    await db.hset('p16-other', 'f', 'v')
    expect(await db.zcard(seam.RETAINED_INDEX)).toBe(1)
  })

  it('P3 aedes-persistence Packet: the form a queued message is stored in', () => {
    const p = new seam.StoredPacket({ cmd: 'publish', topic: 'p3', payload: Buffer.from('x'), qos: 1, retain: false, brokerId: 'b', brokerCounter: 7, extra: 1 }) as Record<string, unknown>
    expect(p).toMatchObject({ cmd: 'publish', topic: 'p3', qos: 1, brokerId: 'b', brokerCounter: 7 })
    expect(p.extra).toBeUndefined()
  })

  it('P4 qlobber/aedes/qlobber-sub.js: the subscription trie (add, match, remove, subscriptionsCount)', () => {
    const trie = new seam.QlobberSub({ separator: '/', wildcard_one: '+', wildcard_some: '#', match_empty_levels: true })
    trie.add('p4/+', { clientId: 'a', topic: 'p4/+', qos: 1 })
    trie.add('p4/#', { clientId: 'b', topic: 'p4/#', qos: 2 })
    expect(trie.subscriptionsCount).toBe(2)
    expect(trie.match('p4/x').map((s) => s.clientId).sort()).toEqual(['a', 'b'])
    trie.remove('p4/+', { clientId: 'a', topic: 'p4/+' })
    expect(trie.match('p4/x').map((s) => s.clientId)).toEqual(['b'])
  })

  it('P5 aedes-persistence-redis key layout: clients, client:<id>, outgoing:<id>, packet:<node>:<n>, will, will:<node>:<id>', async () => {
    const db = link()
    const persistence = (require('aedes-persistence-redis') as (o: object) => object)({ conn: db })
    const s = await stockBroker({ persistence, id: 'p5node' })
    const sub = await rawClient(s.port, { clientId: 'p5 sub', clean: false })
    await rawSubscribe(sub.raw, 'p5/t', 1)
    expect(await db.sismember(seam.CLIENTS_SET, 'p5 sub')).toBe(1)
    expect(await db.hexists(seam.clientSubsKey('p5 sub'), 'p5/t')).toBe(1)
    const gone = once(s.broker, 'clientDisconnect')
    await sub.raw.drop()
    await gone
    const pub = await rawClient(s.port, { clientId: 'p5-pub' })
    pub.raw.send({ cmd: 'publish', topic: 'p5/t', payload: 'q', qos: 1, messageId: 1 })
    // Aedes 1.2 writes the PUBACK before it queues the message
    await waitRedis(async () => (await db.llen(seam.outgoingKey('p5 sub'))) > 0, 'the queued message')
    const entries = await db.lrange(seam.outgoingKey('p5 sub'), 0, -1)
    expect(entries).toHaveLength(1)
    const [, node, counter] = entries[0]!.split(':')
    expect(entries[0]).toBe(seam.packetKey({ brokerId: node, brokerCounter: counter }))
    expect(node).toBe('p5node')
    expect(await db.exists(entries[0]!)).toBe(1)
    await pub.raw.drop()
    // a will is stored at CONNECT
    const w = new Socket()
    w.on('error', () => {})
    w.connect(s.port, '127.0.0.1')
    w.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: 'p5 w', will: { topic: 'p5/will', payload: Buffer.from('x'), qos: 0, retain: false } }))
    const key = seam.willKey('p5node', 'p5 w')
    await waitRedis(async () => (await db.lrange(seam.WILLS_LIST, 0, -1)).includes(key), 'the will listed')
    expect(await db.exists(key)).toBe(1)
    w.destroy()
  })

  it('P6 aedes calls persistence.addSubscriptions once per filter with the SUBSCRIBE packet array', async () => {
    const memory = (require('aedes-persistence') as () => { addSubscriptions(c: unknown, subs: unknown[]): Promise<void> })()
    const calls: unknown[][] = []
    const add = memory.addSubscriptions.bind(memory)
    memory.addSubscriptions = (c, subs) => (calls.push(subs), add(c, subs))
    const s = await stockBroker({ persistence: memory as never })
    const { raw } = await rawClient(s.port, { clientId: 'p6', clean: false })
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'p6/a', qos: 1 }, { topic: 'p6/b', qos: 0 }] })
    await raw.until((ps) => ps.some((p) => p.cmd === 'suback'))
    expect(calls).toHaveLength(2)
    expect(calls[0], 'the same array each time').toBe(calls[1])
    expect(calls[0]!.length).toBe(2)
  })
})

describe('seam contract: ioredis', () => {
  it('R1 ioredis redis.stream: the socket of the connection, paused and resumed', async () => {
    const r = link()
    await r.ping()
    const socket = seam.socketOf(r)
    expect(socket).toBeInstanceOf(Socket)
    socket!.pause()
    expect((socket as Socket).isPaused()).toBe(true)
    const answer = r.ping()
    socket!.resume()
    expect(await answer).toBe('PONG')
  })

  it('R2 ioredis writes each command into redis.stream (write, cork, uncork) once it emitted connect: coalesceWrites sends a tick\'s commands in one write, in order, on every new connection', async () => {
    const r = link()
    seam.coalesceWrites(r)
    const other = link()
    /** read events Redis processed so far (INFO stats, Redis 6+); the INFO itself is one of them */
    const reads = async (): Promise<number> => Number(/total_reads_processed:(\d+)/.exec(await other.info('stats'))![1])
    const burst = async (): Promise<number> => {
      await r.ping()
      const before = await reads()
      const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => r.echo(`c${i}`)))
      expect(answers, 'the answers in the order asked').toEqual(Array.from({ length: 30 }, (_, i) => `c${i}`))
      return (await reads()) - before - 1
    }
    // 30 commands written in one tick: one read at Redis (a few when the kernel hands them in parts), not 30
    expect(await burst()).toBeLessThanOrEqual(3)
    // ioredis makes a new socket when it reconnects: it is coalesced too
    r.disconnect(true)
    await once(r, 'ready')
    expect(await burst()).toBeLessThanOrEqual(3)
  })

  it('R2 deferredWrite: commands given in separate ticks of one turn (one immediate each, as Aedes publishes) leave with the next command that cannot wait, in order; alone, by the end of the turn', async () => {
    const r = link()
    seam.coalesceWrites(r)
    const other = link()
    const reads = async (): Promise<number> => Number(/total_reads_processed:(\d+)/.exec(await other.info('stats'))![1])
    await r.ping()
    for (let round = 0; round < 3; round++) {
      const before = await reads()
      const answers: Array<Promise<string>> = []
      await new Promise<void>((done) => {
        for (let i = 0; i < 30; i++) setImmediate(() => answers.push(seam.deferredWrite(r, () => r.echo(`d${i}`))))
        setImmediate(() => {
          answers.push(r.echo('now'))
          done()
        })
      })
      expect(await Promise.all(answers), 'the answers in the order asked').toEqual([...Array.from({ length: 30 }, (_, i) => `d${i}`), 'now'])
      // one write of 31 commands: one read at Redis (a few when the kernel hands them in parts), not 31
      expect((await reads()) - before - 1).toBeLessThanOrEqual(3)
    }
    // nothing follows: written at the end of the turn all the same
    expect(await seam.deferredWrite(r, () => r.echo('alone'))).toBe('alone')
  })

  it('P18 aedes-persistence-redis incomingStorePacket, incomingGetPacket and incomingDelPacket write their command before their first await: sent through deferredWrite, 30 of each in 30 immediates leave in one write', async () => {
    const r = link()
    seam.coalesceWrites(r)
    const other = link()
    const reads = async (): Promise<number> => Number(/total_reads_processed:(\d+)/.exec(await other.info('stats'))![1])
    const inner = new (seam.asyncRedisPersistence())({ conn: r })
    const client = { id: 'p18-client' }
    const packet = (i: number) => ({ cmd: 'publish', topic: 'p18/t', payload: Buffer.from(`m${i}`), qos: 2, retain: false, dup: false, messageId: i + 1 })
    await r.ping()
    for (const step of ['incomingStorePacket', 'incomingGetPacket', 'incomingDelPacket'] as const) {
      const before = await reads()
      const answers: Array<Promise<unknown>> = []
      await new Promise<void>((done) => {
        for (let i = 0; i < 30; i++) setImmediate(() => answers.push(seam.deferredWrite(r, () => inner[step](client, packet(i)) as Promise<unknown>)))
        setImmediate(() => {
          answers.push(r.ping())
          done()
        })
      })
      const got = await Promise.all(answers)
      if (step === 'incomingGetPacket') expect(got.slice(0, 30).map((p) => (p as { payload: Buffer }).payload.toString())).toEqual(Array.from({ length: 30 }, (_, i) => `m${i}`))
      // one write of 31 commands: one read at Redis (a few when the kernel hands them in parts), not 31
      expect((await reads()) - before - 1, step).toBeLessThanOrEqual(3)
    }
    expect(await r.hlen('incoming:p18-client')).toBe(0)
  })
})

async function waitRedis(check: () => Promise<boolean>, what: string, ms = 3000): Promise<void> {
  const until = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}
