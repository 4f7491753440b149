/**
 * redis-server dies under a running cluster and comes back on the same port (AOF keeps the data):
 * every node turns not ready while it is gone, re-syncs by itself and messages flow again,
 * without restarting any node.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { killAll, logLines, sleep, startNode, startRedis, waitFor, type TestNode, type TestRedis } from '../helpers/cluster-procs.js'
import { closeAllClients, collect, mqttConnect } from '../helpers/cluster-mqtt.js'
import { metric } from '../helpers/security-node.js'

let redis: TestRedis
let a: TestNode
let b: TestNode

beforeAll(async () => {
  redis = await startRedis({ aof: true })
  ;[a, b] = await Promise.all([startNode(redis.url, 'rr-a'), startNode(redis.url, 'rr-b')])
})

afterAll(async () => {
  await closeAllClients()
  await killAll()
})

describe('cluster: Redis restarted under the nodes', () => {
  it('nodes answer 503 on /readyz while Redis is gone, recover by themselves, and messages flow again', async () => {
    // state from before the outage: a live subscriber on B, a clean:false session that is offline
    const live = await mqttConnect(b.url, { clientId: 'rr-live' })
    const gotLive = collect(live)
    await live.subscribeAsync('rr/#', { qos: 1 })
    const sess = await mqttConnect(a.url, { clientId: 'rr-session', clean: false })
    await sess.subscribeAsync('rr/#', { qos: 1 })
    await sess.endAsync()
    const pub = await mqttConnect(a.url, { clientId: 'rr-pub', reconnectPeriod: 200 })
    await pub.publishAsync('rr/before', 'b', { qos: 1 })
    await waitFor(() => gotLive.length === 1, 5000, 'message before the outage')

    await redis.kill()
    await waitFor(async () => (await a.readyz()) === 503 && (await b.readyz()) === 503, 5000, 'both nodes 503')
    const body = (await (await fetch(`http://127.0.0.1:${a.http}/readyz`)).json()) as { reasons: string[] }
    expect(body.reasons).toContain('redis unavailable')
    // still not ready a moment later, and the processes are alive
    await sleep(500)
    expect(await a.readyz()).toBe(503)
    expect(a.proc.child.exitCode).toBeNull()
    expect(b.proc.child.exitCode).toBeNull()

    await redis.restart()
    await waitFor(async () => (await a.readyz()) === 200 && (await b.readyz()) === 200, 15_000, 'both nodes ready again')
    // the log line is written before readiness turns back, but reaches us through the child's stdout pipe
    for (const n of [a, b]) {
      await waitFor(() => logLines(n.proc.text()).some((l) => l.msg === 'subscriptions re-synced from redis'), 5000, `${n.id} re-sync log line`)
      // Redis kept its data (AOF, the same culex:epoch): nothing is written again (redis-data-loss.test.ts)
      expect(logLines(n.proc.text()).filter((l) => String(l.msg).startsWith('redis came back without its data'))).toEqual([])
      expect(await metric(n.http, 'culex_redis_data_lost_total')).toBe(0)
    }

    // the live subscription made before the outage still gets messages from the other node
    await pub.publishAsync('rr/after', 'a', { qos: 1 })
    await waitFor(() => gotLive.some((g) => g.topic === 'rr/after'), 5000, 'message after the restart on the live subscriber')
    // a new subscription after the restart works across nodes
    const fresh = await mqttConnect(a.url, { clientId: 'rr-fresh' })
    const gotFresh = collect(fresh)
    await fresh.subscribeAsync('rr/#', { qos: 1 })
    await pub.publishAsync('rr/fresh', 'f', { qos: 1 })
    await waitFor(() => gotFresh.some((g) => g.topic === 'rr/fresh'), 5000, 'message on a subscription made after the restart')
    // the offline session (kept by AOF) got everything published after it left, queued through B's trie too
    const pubB = await mqttConnect(b.url, { clientId: 'rr-pub-b' })
    await pubB.publishAsync('rr/from-b', 'x', { qos: 1 })
    const back = await mqttConnect(b.url, { clientId: 'rr-session', clean: false })
    const gotBack = collect(back)
    await waitFor(() => gotBack.length >= 4, 5000, 'queued messages of the offline session')
    await sleep(200)
    // one copy of each; those of one publisher in order [MQTT-4.6.0-6] (the one from B may come
    // live before the queue when B's own subscriber link sees it late: different publisher, no order)
    expect(gotBack.map((g) => g.topic).sort()).toEqual(['rr/after', 'rr/before', 'rr/fresh', 'rr/from-b'])
    expect(gotBack.map((g) => g.topic).filter((t) => t !== 'rr/from-b')).toEqual(['rr/before', 'rr/after', 'rr/fresh'])
  })

  it('a node whose Redis subscriber link drops is not ready until it is back and re-syncs the subscriptions it missed', async () => {
    const admin = new Redis(redis.url)
    try {
      // keep B's subscriber link out: no new Redis connections while it is killed
      const clients = (await admin.client('LIST')) as string
      const subOfB = /id=(\d+) [^\n]*name=culex-rr-b-sub/.exec(clients)
      expect(subOfB).not.toBeNull()
      await admin.config('SET', 'maxclients', String(clients.trim().split('\n').length - 1))
      await admin.client('KILL', 'ID', subOfB![1]!)
      await waitFor(async () => (await b.readyz()) === 503, 5000, 'B not ready')
      expect(await a.readyz()).toBe(200)

      // meanwhile a clean:false session subscribes through A: B cannot hear about it
      const sess = await mqttConnect(a.url, { clientId: 'rs-session', clean: false })
      await sess.subscribeAsync('rs/#', { qos: 1 })
      await sess.endAsync()
      await sleep(300)
      expect(await b.readyz()).toBe(503)

      await admin.config('SET', 'maxclients', '10000')
      await waitFor(async () => (await b.readyz()) === 200, 10_000, 'B ready again')

      // B queues a QoS 1 message for the session only if its re-synced trie knows the subscription
      const pubB = await mqttConnect(b.url, { clientId: 'rs-pub' })
      await pubB.publishAsync('rs/one', '1', { qos: 1 })
      const back = await mqttConnect(a.url, { clientId: 'rs-session', clean: false })
      const got = collect(back)
      await waitFor(() => got.length >= 1, 5000, 'the message queued by B')
      expect(got.map((g) => g.payload)).toEqual(['1'])
    } finally {
      await admin.config('SET', 'maxclients', '10000').catch(() => {})
      admin.disconnect()
    }
  })
})
