/**
 * Where a node keeps its state. Single node: Aedes' in-memory persistence and
 * emitter. Cluster mode (redis_url set): our cluster bus (bus.ts) routes
 * messages between nodes over Redis pub/sub and aedes-persistence-redis keeps subscriptions, sessions,
 * retained messages and wills, both over ioredis.
 */
import { Redis } from 'ioredis'
import type { Logger } from '../log.js'
import { createClusterPersistence } from './persistence.js'
import type { ClusterLinks } from './index.js'

export interface Backend {
  mode: 'memory' | 'cluster'
  mq?: unknown
  persistence?: unknown
  /** Redis connections this node depends on, for readiness */
  redis: Redis[]
  /** true while every Redis link answers */
  healthy(): boolean
  /** cluster mode: the three links and our persistence core (cluster/index.ts) */
  links?: ClusterLinks
  close(): Promise<void>
}

export async function createBackend(redisUrl: string | undefined, log: Logger, nodeId = 'culex', backlog?: () => number): Promise<Backend> {
  if (!redisUrl) {
    return { mode: 'memory', redis: [], healthy: () => true, close: async () => {} }
  }
  const { createClusterBus } = await import('./bus.js')
  const options = { maxRetriesPerRequest: null, enableOfflineQueue: true, lazyConnect: false }
  // named links: `CLIENT LIST` in Redis shows which node and which role each connection is
  const subConn = new Redis(redisUrl, { ...options, connectionName: `culex-${nodeId}-sub` })
  const pubConn = new Redis(redisUrl, { ...options, connectionName: `culex-${nodeId}-pub` })
  const dataConn = new Redis(redisUrl, { ...options, connectionName: `culex-${nodeId}-data` })
  const redis = [subConn, pubConn, dataConn]
  for (const [name, conn] of [['sub', subConn], ['pub', pubConn], ['data', dataConn]] as const) {
    conn.on('error', (err: Error) => log.warn({ redis: name, err: err.message }, 'redis link error'))
  }
  // our cluster bus, not mqemitter-redis, carries the messages (bus.ts says why)
  const mq = createClusterBus({
    sub: subConn,
    pub: pubConn,
    channel: 'culex:bus',
    backlog,
    onError: (err) => log.warn({ err: err.message }, 'cluster bus error'),
    onHeld: (info) => log.info(info, 'cluster bus: held messages until every node had them'),
  })
  // aedes-persistence-redis with our fixes for the cluster (see persistence.ts)
  const { persistence, core } = createClusterPersistence({ db: dataConn, sub: subConn, pub: pubConn, mq, log })
  return {
    mode: 'cluster',
    mq,
    persistence,
    redis,
    links: { sub: subConn, pub: pubConn, data: dataConn, core },
    healthy: () => redis.every((r) => r.status === 'ready'),
    close: async () => {
      await core.destroy()
      // QUIT lets queued commands (e.g. wills published while closing) finish; give up after 1 s
      await Promise.all(
        redis.map((r) =>
          r.status === 'ready'
            ? Promise.race([r.quit().catch(() => {}), new Promise((res) => setTimeout(res, 1000).unref())]).then(() => r.disconnect())
            : r.disconnect(),
        ),
      )
    },
  }
}
