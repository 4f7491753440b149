/**
 * The one place Culex opens a Redis connection (data, bus publisher and subscriber, the bus'
 * control link, auth polling, the CLI): the same options whether the cluster runs on one
 * server (`redis_url`) or on a primary with replicas under Sentinel (`redis_sentinels` +
 * `redis_master_name`). With Sentinel, ioredis asks the sentinels where the primary is at
 * every (re)connect, so a failover looks to the rest of Culex like a Redis restart: the links
 * drop, reconnect to the new primary, and cluster/index.ts re-syncs.
 *
 * The CLI (`--redis`, `.culex/cluster.json`) names a Sentinel setup in one string:
 * `redis-sentinel://[:password@]host:port[,host:port...]/master-name`.
 */
import { createRequire } from 'node:module'
import type { Redis, RedisOptions } from 'ioredis'

/** ioredis, required at the first connection: config parsing (config/schema.ts) and a node in memory need none of it */
const loadIoredis = (): typeof import('ioredis') => createRequire(import.meta.url)('ioredis') as typeof import('ioredis')

export interface SentinelAddress {
  host: string
  port: number
}

export type RedisTarget =
  | { kind: 'url'; url: string }
  | { kind: 'sentinel'; sentinels: SentinelAddress[]; name: string; sentinelPassword?: string; password?: string }

/** the Redis settings of a node's config, as config/schema.ts validates them */
export interface RedisSettings {
  redis_url?: string
  redis_sentinels: string[]
  redis_master_name?: string
  redis_sentinel_password?: string
  redis_password?: string
}

/** `host:port` (IPv6 as `[::1]:26379`) */
export function parseHostPort(s: string): SentinelAddress | undefined {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:[\]\s]+):(\d{1,5})$/.exec(s)
  if (!m) return undefined
  const port = Number(m[2])
  return port >= 1 && port <= 65535 ? { host: m[1]!, port } : undefined
}

/** undefined: no Redis (a single node in memory) */
export function targetOf(c: RedisSettings): RedisTarget | undefined {
  if (c.redis_sentinels.length > 0) {
    return {
      kind: 'sentinel',
      sentinels: c.redis_sentinels.map((s) => parseHostPort(s)!),
      name: c.redis_master_name!,
      ...(c.redis_sentinel_password ? { sentinelPassword: c.redis_sentinel_password } : {}),
      ...(c.redis_password ? { password: c.redis_password } : {}),
    }
  }
  return c.redis_url ? { kind: 'url', url: c.redis_url } : undefined
}

/** a `redis://`, `rediss://` or `redis-sentinel://` string (CLI, cluster.json) */
export function parseTarget(s: string): RedisTarget {
  const m = /^redis-sentinel:\/\/(?::([^@]*)@)?([^/]+)\/([^/?#]+)$/.exec(s)
  if (!m) return { kind: 'url', url: s }
  const sentinels = m[2]!.split(',').map((h) => parseHostPort(h.trim()))
  if (sentinels.some((a) => !a)) throw new Error(`bad sentinel address in ${redactTarget({ kind: 'url', url: s })}: expected host:port[,host:port...]`)
  return {
    kind: 'sentinel',
    sentinels: sentinels as SentinelAddress[],
    name: decodeURIComponent(m[3]!),
    ...(m[1] ? { sentinelPassword: decodeURIComponent(m[1]) } : {}),
  }
}

/** the string form parseTarget reads (passwords left out) */
export function targetString(t: RedisTarget): string {
  if (t.kind === 'url') return t.url
  return `redis-sentinel://${t.sentinels.map((a) => (a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`)).join(',')}/${encodeURIComponent(t.name)}`
}

/** for messages: no password */
export function redactTarget(t: RedisTarget): string {
  if (t.kind === 'sentinel') return `${targetString(t)} (Sentinel)`
  try {
    const u = new URL(t.url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return 'redis'
  }
}

/** how often a link asks a loading Redis whether it is done (see redisOptions) */
export const LOADING_RECHECK_MS = 200

export interface ConnectOptions {
  /** `CLIENT LIST` shows it (culex-<node>-<role>) */
  connectionName?: string
  /** do not connect until the first command / connect() */
  lazy?: boolean
  /** the CLI: one try, then an error; a node retries for ever */
  failFast?: boolean
  /** more ioredis options (the node's links: offline queue, retries) */
  extra?: RedisOptions
}

/** ioredis options for `target` (exported for tests and for `duplicate`-free reuse) */
export function redisOptions(target: RedisTarget, o: ConnectOptions = {}): RedisOptions {
  const base: RedisOptions = {
    lazyConnect: o.lazy ?? false,
    maxRetriesPerRequest: o.failFast ? 1 : null,
    connectTimeout: o.failFast ? 3000 : 5000,
    // A link that reaches a Redis still loading its AOF/RDB after a restart checks again after the
    // load's ETA (INFO loading_eta_seconds), capped by this; ioredis' default cap is 10 s, and
    // Redis' estimate early in a load is far too long (whole seconds elapsed / share loaded), so
    // the node stayed not ready, and its peers held their QoS 1 PUBACKs for it, up to 10 s after
    // the load had ended (4.6 s in redis-loading.test.ts; very likely what made a peer hold a batch
    // past MAX_HOLD_MS, bus-delivery.ts, in one long redis-gap run: its subscriber link came back
    // ~4.5 s after its publisher link).
    // One INFO per link every LOADING_RECHECK_MS while Redis loads: test/cluster/redis-loading.test.ts
    maxLoadingRetryTime: LOADING_RECHECK_MS,
    ...(o.failFast ? { retryStrategy: () => null } : {}),
    ...(o.connectionName ? { connectionName: o.connectionName } : {}),
    ...o.extra,
  }
  if (target.kind === 'url') return base
  return {
    ...base,
    sentinels: target.sentinels,
    name: target.name,
    role: 'master',
    ...(target.sentinelPassword ? { sentinelPassword: target.sentinelPassword } : {}),
    ...(target.password ? { password: target.password } : {}),
    // the CLI gives up once every sentinel was tried; a node keeps asking (ioredis' default backoff)
    ...(o.failFast ? { sentinelRetryStrategy: () => null } : { sentinelRetryStrategy: (n: number) => Math.min(n * 50, 1000) }),
    // no failoverDetector: in ioredis 5.11 its reconnect at +switch-master sometimes left a link
    // ended for good (status "end") when it raced the reconnect after the primary's death. A
    // primary that is cut off rather than killed is reached again only as a replica: Sentinel's
    // reconfiguration then kills its client connections (CLIENT KILL TYPE normal/pubsub) and
    // the links reconnect through the sentinels to the new primary
    failoverDetector: false,
  }
}

export function connectRedis(target: RedisTarget, o: ConnectOptions = {}): Redis {
  const opts = redisOptions(target, o)
  const { Redis: Client } = loadIoredis()
  return target.kind === 'url' ? new Client(target.url, opts) : new Client(opts)
}

/**
 * Redis Cluster is refused: Culex's transactions (MULTI over several keys), Lua scripts
 * (session queues, packet ids) and the single bus channel need one keyspace on one primary,
 * which Redis Cluster splits into hash slots on several. Resolves once the server answered,
 * or after `waitMs` without an answer (it is checked again by nobody: a node that started
 * against an unreachable Redis is not ready until it is reachable, and then a cluster-mode
 * server answers MOVED/CROSSSLOT errors that the logs show).
 */
export async function assertNotRedisCluster(conn: Redis, where: string, waitMs = 5000): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const info = await Promise.race([
    conn.info('cluster').catch(() => ''),
    new Promise<string>((r) => (timer = setTimeout(() => r(''), waitMs).unref())),
  ])
  clearTimeout(timer)
  if (/^cluster_enabled:1\s*$/m.test(info)) {
    throw new Error(
      `${where} is a Redis Cluster node (INFO cluster_enabled:1). Culex does not support Redis Cluster: it needs one keyspace on one primary ` +
        '(multi-key transactions and Lua scripts over session, queue and retained keys, one pub/sub channel for the cluster bus), which Redis Cluster ' +
        'splits into hash slots across primaries. For high availability run a primary with replicas under Redis Sentinel (redis_sentinels, ' +
        'redis_master_name; docs/cluster.md, "High availability").',
    )
  }
}
