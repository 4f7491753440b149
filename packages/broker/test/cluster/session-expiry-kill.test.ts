/**
 * MQTT 5 sessions and delayed wills of a node killed with kill -9 (no disconnect at all): the
 * surviving node's sweeper adopts them once the dead node's registration lapses, and they expire
 * (or go out) counted from then. A node only paused (SIGSTOP) long enough to be taken for dead
 * takes its clients' sessions back when it beats again. Heartbeat 300 ms (lapse after 900 ms) on
 * the nodes killed or paused, 1 s on b, sweep 200 ms. Statement ids and section numbers are MQTT 5's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IClientOptions } from 'mqtt'
import { FAST, killAll, startNode, startRedis, waitFor, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { closeAllClients, collect, connackOf, mqttConnect } from '../helpers/cluster-mqtt.js'

let redis: TestRedis
let a: TestNode
let b: TestNode
let c: TestNode
let d: TestNode

beforeAll(async () => {
  redis = await startRedis()
  const start = (id: string, flags = FAST): Promise<TestNode> => startNode(redis.url, id, flags)
  // b, which stays up throughout, beats every second (lapse 3 s): a loaded machine that stalls it
  // for 900 ms does not get it taken for dead and its sessions adopted mid-test
  const survivor = ['--heartbeat-interval-ms', '1000', '--will-sweep-interval-ms', '200']
  ;[a, b, c, d] = await Promise.all([start('kexp-a'), start('kexp-b', survivor), start('kexp-c'), start('kexp-d')])
})

afterAll(async () => {
  await closeAllClients()
  await killAll()
})

const v5 = (clientId: string, sessionExpiryInterval: number, will?: IClientOptions['will']): IClientOptions => ({
  clientId,
  protocolVersion: 5,
  clean: false,
  properties: { sessionExpiryInterval },
  ...(will ? { will } : {}),
})
/** what the sweeper (whichever node holds its lock) logged */
const swept = (msg: string): Array<Record<string, unknown>> => [a, b, c, d].flatMap((n) => n.logs().filter((l) => l.msg === msg))
const expired = (): string[] => swept('session expired').map((l) => String(l.client))
const nodeSwept = (id: string): boolean => swept('dead node swept').some((l) => l.dead_node === id)

describe('cluster: MQTT 5 sessions of a node killed with kill -9', () => {
  it('[MQTT-3.1.2-23] the session still expires after its interval, counted from the lapse; its delayed will goes out once (3.1.3.2.2), after its delay', async () => {
    const watcher = await mqttConnect(b.url, { clientId: 'kexp-watcher', protocolVersion: 5 })
    await watcher.subscribeAsync('kexp/will/#', { qos: 1 })
    const wills = collect(watcher)
    const gone = await mqttConnect(a.url, v5('kexp-1', 2, { topic: 'kexp/will/1', payload: Buffer.from('gone'), qos: 1, retain: false, properties: { willDelayInterval: 1 } }))
    await gone.subscribeAsync('kexp/1', { qos: 1 })

    const killed = Date.now()
    await a.kill9()
    const pub = await mqttConnect(b.url, { protocolVersion: 5 })
    await pub.publishAsync('kexp/1', 'queued', { qos: 1 })

    await waitFor(() => wills.length > 0, 10_000, 'the delayed will of kexp-1')
    // lapse (about 900 ms after the last beat) + the will delay (1 s)
    expect(Date.now() - killed).toBeGreaterThanOrEqual(1500)
    await waitFor(() => expired().includes('kexp-1'), 10_000, 'kexp-1 expired')
    // lapse + the session expiry (2 s)
    expect(Date.now() - killed).toBeGreaterThanOrEqual(2500)
    expect(wills.map((g) => g.payload)).toEqual(['gone'])

    const back1 = await mqttConnect(b.url, v5('kexp-1', 2))
    expect(connackOf(back1).sessionPresent).toBe(false)
    // nothing was queued for it any more: only what it subscribes to now arrives
    await back1.subscribeAsync('kexp/1', { qos: 1 })
    await pub.publishAsync('kexp/1', 'live', { qos: 1 })
    await waitFor(() => collect(back1).length > 0, 5000, 'the live message')
    expect(collect(back1).map((g) => g.payload)).toEqual(['live'])
  })

  it('[MQTT-3.1.2-23] a client of the killed node that reconnects on another node before its deadline keeps its session and every queued message', async () => {
    const sub = await mqttConnect(c.url, v5('kexp-3', 2))
    await sub.subscribeAsync('kexp/3', { qos: 1 })
    await c.kill9()
    const pub = await mqttConnect(b.url, { protocolVersion: 5 })
    for (let i = 0; i < 10; i++) await pub.publishAsync('kexp/3', `m${i}`, { qos: 1 })
    const back = await mqttConnect(b.url, v5('kexp-3', 2))
    expect(connackOf(back).sessionPresent).toBe(true)
    await waitFor(() => collect(back).length >= 10, 5000, 'the queued messages')
    // the dead node is swept (its sessions adopted) after its lapse: kexp-3 is owned by its new connection
    await waitFor(() => nodeSwept('kexp-c'), 10_000, 'kexp-c swept')
    // a sentinel session that leaves now expires after kexp-3's deadline would have (2 s after the lapse)
    const sentinel = await mqttConnect(b.url, v5('kexp-4', 2))
    await sentinel.endAsync()
    await waitFor(() => expired().includes('kexp-4'), 10_000, 'kexp-4 expired')
    expect(expired()).not.toContain('kexp-3')
    expect(collect(back).map((g) => g.payload)).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`))
  })

  it('[MQTT-3.1.2-23] a node paused until it is taken for dead, then resumed: its connected client keeps its session, which expires once the client leaves', async () => {
    const sub = await mqttConnect(d.url, v5('kexp-5', 2))
    await sub.subscribeAsync('kexp/5', { qos: 1 })
    d.proc.child.kill('SIGSTOP')
    try {
      await waitFor(() => nodeSwept('kexp-d'), 10_000, 'kexp-d taken for dead')
    } finally {
      d.proc.child.kill('SIGCONT')
    }
    await waitFor(() => d.logs().some((l) => l.msg === 'this node missed heartbeats and was taken for dead: its clients and their sessions are re-asserted'), 5000, 'kexp-d re-asserts')
    // a sentinel session that leaves now expires after the deadline the sweeper gave kexp-5 (2 s after the lapse)
    const sentinel = await mqttConnect(b.url, v5('kexp-6', 2))
    await sentinel.endAsync()
    await waitFor(() => expired().includes('kexp-6'), 10_000, 'kexp-6 expired')
    expect(expired()).not.toContain('kexp-5')
    // the session is its node's again: when the client leaves, it expires as any other
    await sub.endAsync()
    const left = Date.now()
    await waitFor(() => expired().includes('kexp-5'), 10_000, 'kexp-5 expired after its client left')
    expect(Date.now() - left).toBeGreaterThanOrEqual(1900)
  })
})
