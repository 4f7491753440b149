/**
 * Wills of clients whose node died (kill -9): published once cluster-wide, after the dead node's
 * heartbeat lapses; the stale will of a client that reconnected elsewhere is never published
 * (aedes-persistence-redis#98). Heartbeat 300 ms on the node killed, 1 s on the others, and sweep
 * 200 ms to keep it quick.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { FAST, killAll, sleep, startNode, startRedis, waitFor, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { closeAllClients, collect, mqttConnect } from '../helpers/cluster-mqtt.js'

let redis: TestRedis
let a: TestNode
let b: TestNode
let c: TestNode

beforeAll(async () => {
  redis = await startRedis()
  // the survivors beat every second (lapse 3 s): a loaded machine that stalls one for 900 ms does
  // not get it taken for dead (its clients' wills published, will-back's stale one included), and
  // a client of the gracefully stopped c has 3 s, not 0.9, to come back on b before its will is due
  const SURVIVOR = ['--heartbeat-interval-ms', '1000', '--will-sweep-interval-ms', '200']
  ;[a, b, c] = await Promise.all([startNode(redis.url, 'will-a', FAST), startNode(redis.url, 'will-b', SURVIVOR), startNode(redis.url, 'will-c', SURVIVOR)])
})

afterAll(async () => {
  await closeAllClients()
  await killAll()
})

const published = (n: TestNode): number => n.logs().filter((l) => l.msg === 'will of a client on a dead node published').length

describe('cluster: wills of a dead node', () => {
  it('[MQTT-3.1.2-8] kill -9 of a node: its client\'s will reaches a subscriber on another node exactly once; a client that reconnected at once never gets its stale will published', async () => {
    const watcher = await mqttConnect(c.url, { clientId: 'will-watcher' })
    const got = collect(watcher)
    await watcher.subscribeAsync('wills/#', { qos: 1 })

    await mqttConnect(a.url, { clientId: 'will-gone', will: { topic: 'wills/gone', payload: Buffer.from('offline'), qos: 1, retain: false } })
    const back = await mqttConnect(a.url, { clientId: 'will-back', will: { topic: 'wills/back', payload: Buffer.from('offline'), qos: 1, retain: false } })
    // the second client reconnects through another node the moment its node dies
    const reconnected = new Promise<void>((resolve, reject) => {
      back.once('close', () => {
        mqttConnect(b.url, { clientId: 'will-back', will: { topic: 'wills/back', payload: Buffer.from('offline'), qos: 1, retain: false } }).then(
          () => resolve(),
          reject,
        )
      })
    })

    const db = new Redis(redis.url)
    const killedAt = Date.now()
    await a.kill9()
    await reconnected
    // the reconnect itself dropped the will left on the dead node (aedes-persistence-redis#98),
    // long before the dead node's heartbeat lapses
    expect(await db.exists('will:will-a:will-back')).toBe(0)
    expect(await db.exists('will:will-a:will-gone')).toBe(1)

    // lapse = 3 heartbeats (900 ms) after the last one, then within a few sweeps (200 ms each)
    await waitFor(() => got.some((g) => g.topic === 'wills/gone'), 5000, 'the will of will-gone')
    const after = Date.now() - killedAt
    expect(after).toBeGreaterThanOrEqual(500)
    expect(after).toBeLessThan(3500)
    // several more sweep intervals: nothing more may arrive
    await sleep(2000)
    expect(got.filter((g) => g.topic === 'wills/gone')).toEqual([{ topic: 'wills/gone', payload: 'offline', qos: 1, retain: false }])
    expect(got.filter((g) => g.topic === 'wills/back')).toEqual([])
    // one node published it, once (the sweep lock), and the dead node left the registry
    expect(published(b) + published(c)).toBe(1)
    try {
      expect(await db.zscore('culex:nodes', 'will-a')).toBeNull()
      // no will left but the live client's, and it is listed (the list keeps entries of wills
      // taken or claimed until the sweeper's compaction: will-list.test.ts)
      expect(await db.keys('will:*')).toEqual(['will:will-b:will-back'])
      expect(await db.lrange('will', 0, -1)).toContain('will:will-b:will-back')
    } finally {
      db.disconnect()
    }
    // the survivors stayed ready throughout
    expect(await b.readyz()).toBe(200)
    expect(await c.readyz()).toBe(200)
  })

  it('a gracefully stopped node (SIGTERM): a client that reconnects elsewhere gets no will; one that does not gets its will once', async () => {
    const watcher = await mqttConnect(b.url, { clientId: 'gwill-watcher' })
    const got = collect(watcher)
    await watcher.subscribeAsync('gwills/#', { qos: 1 })
    const will = (topic: string) => ({ topic, payload: Buffer.from('offline'), qos: 1 as const, retain: false })
    await mqttConnect(c.url, { clientId: 'gwill-gone', will: will('gwills/gone') })
    const back = await mqttConnect(c.url, { clientId: 'gwill-back', will: will('gwills/back') })
    const reconnected = new Promise<void>((resolve, reject) => {
      back.once('close', () => mqttConnect(b.url, { clientId: 'gwill-back', will: will('gwills/back') }).then(() => resolve(), reject))
    })
    await c.stop()
    await reconnected
    // c's registration lapses 3 beats (3 s) after its last one, then within a few sweeps
    await waitFor(() => got.some((g) => g.topic === 'gwills/gone'), 15_000, 'the will of gwill-gone')
    await sleep(1500)
    expect(got.map((g) => g.topic)).toEqual(['gwills/gone'])
  })
})

