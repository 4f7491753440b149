/**
 * Where a node keeps its state. Single node: Aedes' in-memory persistence and
 * emitter. Cluster mode (redis_url set): our cluster bus (bus.ts) routes
 * messages between nodes over Redis pub/sub and aedes-persistence-redis keeps subscriptions, sessions,
 * retained messages and wills, both over ioredis. Every link comes from the one factory
 * (redis-connect.ts): one server (redis_url) or the primary under Sentinel.
 */
import type { Redis } from 'ioredis'
import { assertNotRedisCluster, connectRedis, redactTarget, type RedisTarget } from './redis-connect.js'
import type { Logger } from '../log.js'
import { createClusterPersistence } from './persistence.js'
import type { ClusterLinks } from './index.js'
import { ReplicaAcks } from './replica-acks.js'
import { watchRedisAnswers } from './redis-answers.js'
import type { BusStats } from './bus-receive.js'
import { coalesceWrites } from '../seam/index.js'

export interface Backend {
  mode: 'memory' | 'cluster'
  mq?: unknown
  /** a QoS 1 publish follows in this event-loop turn (cluster/bus.ts `expect`) */
  expectPublish?: () => void
  persistence?: unknown
  /** Redis connections this node depends on, for readiness */
  redis: Redis[]
  /** true while every Redis link answers */
  healthy(): boolean
  /** cluster mode: the three links and our persistence core (cluster/index.ts) */
  links?: ClusterLinks
  /** redis_min_replicas_acked > 0: acknowledgements wait for the replicas (replica-acks.ts) */
  acks?: ReplicaAcks
  /** cluster mode: batches the bus read from Redis (culex_bus_batches_read_total) */
  busStats?: BusStats
  close(): Promise<void>
}

/** what the cluster bus needs of the node for flow control (bus.ts) */
export interface BusFlow {
  /** bytes waiting for this node's client sockets */
  backlog: () => number
  /** delivery_buffer_bytes */
  highWater: number
  /** a QoS 0 message from a peer shed */
  onShed: () => void
}

export interface DurableOptions {
  /** redis_min_replicas_acked */
  minReplicas: number
  /** redis_replicas_ack_timeout_ms */
  timeoutMs: number
}

export async function createBackend(target: RedisTarget | undefined, log: Logger, nodeId = 'culex', flow?: BusFlow, durable?: DurableOptions): Promise<Backend> {
  if (!target) {
    return { mode: 'memory', redis: [], healthy: () => true, close: async () => {} }
  }
  const { createClusterBus } = await import('./bus.js')
  // named links: `CLIENT LIST` in Redis shows which node and which role each connection is
  const link = (role: string): Redis =>
    connectRedis(target, { connectionName: `culex-${nodeId}-${role}`, extra: { maxRetriesPerRequest: null, enableOfflineQueue: true } })
  const subConn = link('sub')
  const pubConn = link('pub')
  const dataConn = link('data')
  // the sessions', wills' and subscriptions' commands of a tick in one write (seam R2); on the bus
  // link too: a shared subscription's in-flight record (HSET on the picking node, HDEL on the
  // member's PUBACK) went out as a write syscall per message, beside the turn's one PUBLISH
  coalesceWrites(dataConn)
  coalesceWrites(pubConn)
  const waitConn = durable && durable.minReplicas > 0 ? link('wait') : undefined
  const redis = waitConn ? [subConn, pubConn, dataConn, waitConn] : [subConn, pubConn, dataConn]
  // a link error repeats at every reconnect attempt (a failover, an outage): each message logged
  // once per outage and link
  const seen = new Map<string, Set<string>>()
  for (const [name, conn] of [['sub', subConn], ['pub', pubConn], ['data', dataConn], ...(waitConn ? [['wait', waitConn] as const] : [])] as const) {
    seen.set(name, new Set())
    conn.on('error', (err: Error) => {
      const s = seen.get(name)!
      if (s.has(err.message)) return
      s.add(err.message)
      log.warn({ redis: name, err: err.message }, 'redis link error')
    })
    conn.on('ready', () => seen.get(name)!.clear())
  }
  try {
    await assertNotRedisCluster(dataConn, `Redis ${redactTarget(target)}`)
  } catch (err) {
    for (const r of redis) r.disconnect()
    throw err
  }
  const acks = waitConn
    ? new ReplicaAcks({ conn: waitConn, watch: [dataConn, pubConn], nodeId, min: durable!.minReplicas, timeoutMs: durable!.timeoutMs, log })
    : undefined
  // our cluster bus, not mqemitter-redis, carries the messages (bus.ts says why)
  const mq = createClusterBus({
    sub: subConn,
    pub: pubConn,
    // the pressure signal's own link (bus.ts says why)
    control: link('control'),
    channel: 'culex:bus',
    ...flow,
    onError: (err) => log.warn({ err: err.message }, 'cluster bus error'),
    onHeld: (info) => log.info(info, 'cluster bus: held messages until every node had them'),
    ...(acks ? { confirm: (packets, done) => acks.confirm(packets, done), isResend: (p) => acks.isResend(p), onCopyDropped: () => void acks.copiesDropped++ } : {}),
  })
  // aedes-persistence-redis with our fixes for the cluster (see persistence.ts)
  const { persistence, core } = createClusterPersistence({ db: dataConn, sub: subConn, pub: pubConn, mq, log })
  // a frozen Redis keeps the links 'ready' (redis-answers.ts)
  const answers = watchRedisAnswers(dataConn, log)
  return {
    mode: 'cluster',
    mq,
    expectPublish: mq.expect,
    persistence,
    redis,
    links: { sub: subConn, pub: pubConn, data: dataConn, core },
    ...(acks ? { acks } : {}),
    busStats: mq.stats,
    healthy: () => redis.every((r) => r.status === 'ready') && answers.answering(),
    close: async () => {
      answers.close()
      acks?.close()
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
