/**
 * Where a node keeps its state. Single node: Aedes' in-memory persistence and
 * emitter. Cluster mode (redis_url set): mqemitter-redis routes messages
 * between nodes and aedes-persistence-redis keeps subscriptions, sessions,
 * retained messages and wills, both over ioredis.
 */
import { Redis } from 'ioredis'
import type { Logger } from '../log.js'

export interface Backend {
  mode: 'memory' | 'cluster'
  mq?: unknown
  persistence?: unknown
  /** Redis connections this node depends on, for readiness */
  redis: Redis[]
  /** true while every Redis link answers */
  healthy(): boolean
  close(): Promise<void>
}

export async function createBackend(redisUrl: string | undefined, log: Logger): Promise<Backend> {
  if (!redisUrl) {
    return { mode: 'memory', redis: [], healthy: () => true, close: async () => {} }
  }
  const { default: mqemitterRedis } = await import('mqemitter-redis')
  const { default: redisPersistence } = await import('aedes-persistence-redis')
  const options = { maxRetriesPerRequest: null, enableOfflineQueue: true, lazyConnect: false }
  const subConn = new Redis(redisUrl, options)
  const pubConn = new Redis(redisUrl, options)
  const dataConn = new Redis(redisUrl, options)
  const redis = [subConn, pubConn, dataConn]
  for (const [name, conn] of [['sub', subConn], ['pub', pubConn], ['data', dataConn]] as const) {
    conn.on('error', (err: Error) => log.warn({ redis: name, err: err.message }, 'redis link error'))
  }
  const mq = mqemitterRedis({ subConn, pubConn })
  const persistence = redisPersistence({ conn: dataConn })
  return {
    mode: 'cluster',
    mq,
    persistence,
    redis,
    healthy: () => redis.every((r) => r.status === 'ready'),
    close: async () => {
      for (const r of redis) r.disconnect()
    },
  }
}
