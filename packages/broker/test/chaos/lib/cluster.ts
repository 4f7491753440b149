/**
 * The chaos suite's cluster: `culex cluster up` with 3 nodes (real redis-server with AOF, real
 * HAProxy, health checks every 300 ms so a drain takes ~1 s), and the faults done to it.
 */
import type { Redis } from 'ioredis'
import { afterAll, beforeAll } from 'vitest'
import { killAll } from '../../helpers/cluster-procs.js'
import { connectRedis, parseTarget } from '../../../src/cluster/redis-connect.js'
import { primaryPort } from '../../../src/local-cluster/ha-redis.js'
import { clusterUp, type UpCluster } from '../../helpers/cluster-up.js'
import { waitFor } from '../../helpers/wait.js'
import { redisPing } from '../../../src/local-cluster/procs.js'
import { nodeClientsKey } from '../../../src/cluster/keys.js'

export interface ChaosCluster {
  up: UpCluster
  db: Redis
  /** through HAProxy */
  url: string
  nodeIds: string[]
  /** straight to one node */
  nodeUrl(id: string): string
  /** node id -> how many of `clientIds` it holds now */
  holders(clientIds: string[]): Promise<Map<string, number>>
  /** kill -9 a node; resolves once the supervisor restarted it (same id and ports) and it is ready */
  killNode(id: string): Promise<void>
  /** kill -9 redis-server; resolves once the supervisor restarted it (same arguments, AOF replayed) */
  killRedis(): Promise<void>
  /** --redis-replicas: kill -9 the primary; resolves with the port of the one Sentinel promoted, once every node is ready again */
  killPrimary(): Promise<{ from: number; to: number }>
  close(): Promise<void>
}

async function ready(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) })
    return res.status === 200
  } catch {
    return false
  }
}

/**
 * One chaos cluster for a whole test file: started before its tests, closed (and every process
 * the helpers started killed) after them. Returns the getter of the running cluster.
 */
export function useChaosCluster(extra: string[] = []): () => ChaosCluster {
  let c: ChaosCluster | undefined
  beforeAll(async () => {
    c = await chaosCluster(extra)
  })
  afterAll(async () => {
    await c?.close()
    await killAll()
  })
  return () => c!
}

/** `extra`: more `cluster up` flags */
export async function chaosCluster(extra: string[] = []): Promise<ChaosCluster> {
  const up = await clusterUp(3, ['--allow-anonymous', 'true', '--health-check-ms', '300', ...extra])
  const s0 = up.state()
  // a redis:// URL, or redis-sentinel://... with --redis-replicas (the data follows the primary)
  const db = connectRedis(parseTarget(s0.redis_url), { extra: { maxRetriesPerRequest: null } })
  db.on('error', () => {})
  const node = (id: string): (typeof s0.nodes)[number] => up.state().nodes.find((n) => n.id === id)!
  return {
    up,
    db,
    url: `mqtt://127.0.0.1:${up.ports.mqtt}`,
    nodeIds: s0.nodes.map((n) => n.id),
    nodeUrl: (id) => `mqtt://127.0.0.1:${node(id).mqtt}`,
    async holders(clientIds) {
      const out = new Map<string, number>()
      for (const id of s0.nodes.map((n) => n.id)) {
        const members = new Set(await db.smembers(nodeClientsKey(id)))
        out.set(id, clientIds.filter((c) => members.has(c)).length)
      }
      return out
    },
    async killNode(id) {
      const before = node(id)
      process.kill(before.pid, 'SIGKILL')
      await waitFor(async () => {
        const n = node(id)
        return n.pid !== before.pid && n.pid > 0 && (await ready(`http://127.0.0.1:${n.http}/readyz`))
      }, 30_000, `${id} restarted by cluster up`)
      const after = node(id)
      if (after.mqtt !== before.mqtt || after.http !== before.http) throw new Error(`${id} came back on other ports`)
    },
    async killRedis() {
      const pid = up.state().redis.pid
      process.kill(pid, 'SIGKILL')
      await waitFor(async () => {
        const s = up.state()
        return s.redis.pid !== pid && s.redis.pid > 0 && (await redisPing('127.0.0.1', s.redis.port))
      }, 30_000, 'redis-server restarted by cluster up')
      await waitFor(async () => (await Promise.all(s0.nodes.map((n) => ready(`http://127.0.0.1:${node(n.id).http}/readyz`)))).every(Boolean), 30_000, 'every node ready again')
    },
    async killPrimary() {
      const ha = up.state().redis_ha
      if (!ha) throw new Error('not a --redis-replicas cluster')
      const sentinels = { primary: 0, replicas: [], sentinels: ha.sentinels }
      const from = (await primaryPort(sentinels))!
      process.kill(ha.procs.find((p) => p.port === from)!.pid, 'SIGKILL')
      // every sentinel names the same new primary (under load a first promotion can time out and
      // another replica be promoted)
      let to = from
      await waitFor(async () => {
        const seen = await Promise.all(ha.sentinels.map((p) => primaryPort({ primary: 0, replicas: [], sentinels: [p] })))
        to = seen[0] ?? from
        return seen.every((p) => p === to) && to !== from
      }, 60_000, 'Sentinel to promote a replica')
      await waitFor(async () => (await Promise.all(s0.nodes.map((n) => ready(`http://127.0.0.1:${node(n.id).http}/readyz`)))).every(Boolean), 30_000, 'every node ready again')
      return { from, to }
    },
    async close() {
      db.disconnect()
      await up.down()
    },
  }
}
