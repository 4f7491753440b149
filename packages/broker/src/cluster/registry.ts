/**
 * Node registry in Redis. Each node beats every `heartbeat_interval_ms`:
 * - `culex:nodes` (sorted set): node id scored with the Redis-clock time its
 *   registration lapses (last beat + 3 beats). A score in the past = dead.
 * - `culex:node:<id>` (hash, expires with the same TTL): what the node is.
 * - `culex:node:<id>:clients` (set): client ids connected to the node, for
 *   exact client counts and to tell a stale will from a live client.
 * Times come from Redis (`TIME`), so node clocks never have to agree.
 * `culex cluster status` calls a node dead once it missed two beats (its hash says when it beat
 * last and how often it beats), sooner than the registration lapses: the lapse (3 beats) is what
 * the will sweeper acts on, and it must not fire on one late beat.
 */
import type { Redis } from 'ioredis'
import type { Logger } from '../log.js'
import { NODES_KEY, nodeClientsKey, nodeKey } from './keys.js'

// KEYS[1] nodes zset, KEYS[2] node hash; ARGV[1] node id, ARGV[2] ttl ms, ARGV[3..] field/value pairs
const BEAT_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local added = redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
if #ARGV > 2 then
  redis.call('HSET', KEYS[2], unpack(ARGV, 3))
end
redis.call('HSET', KEYS[2], 'last_beat', now)
redis.call('PEXPIRE', KEYS[2], ttl)
return added
`

export interface RegistryOptions {
  nodeId: string
  heartbeatMs: number
  /** what to publish about this node at each beat */
  info: () => Record<string, string | number>
  /**
   * a beat found this node gone from the registry: it missed heartbeats long enough for the
   * sweeper to take it for dead (and forget its clients and sessions) while it was alive
   */
  onRejoin?: () => void
}

export class NodeRegistry {
  private timer: NodeJS.Timeout | undefined
  private beating: Promise<void> | undefined
  private closed = false
  /** the first beat registered this node */
  private registered = false

  constructor(
    private readonly db: Redis,
    private readonly opts: RegistryOptions,
    private readonly log: Logger,
  ) {}

  get ttlMs(): number {
    return 3 * this.opts.heartbeatMs
  }

  async start(): Promise<void> {
    await this.db.del(nodeClientsKey(this.opts.nodeId))
    await this.beat()
    this.timer = setInterval(() => {
      if (this.db.status === 'ready') this.beat().catch((err: Error) => this.log.warn({ err: err.message }, 'heartbeat failed'))
    }, this.opts.heartbeatMs)
  }

  /** register / refresh this node now */
  beat(): Promise<void> {
    if (this.closed) return Promise.resolve()
    this.beating ??= (async () => {
      try {
        const fields: string[] = []
        for (const [k, v] of Object.entries(this.opts.info())) fields.push(k, String(v))
        fields.push('heartbeat_ms', String(this.opts.heartbeatMs))
        const added = await this.db.eval(BEAT_LUA, 2, NODES_KEY, nodeKey(this.opts.nodeId), this.opts.nodeId, this.ttlMs, ...fields)
        if (added === 1 && this.registered) this.opts.onRejoin?.()
        this.registered = true
      } finally {
        this.beating = undefined
      }
    })()
    return this.beating
  }

  clientUp(clientId: string): void {
    this.db.sadd(nodeClientsKey(this.opts.nodeId), clientId).catch(() => {})
  }

  clientDown(clientId: string): void {
    this.db.srem(nodeClientsKey(this.opts.nodeId), clientId).catch(() => {})
  }

  /** after Redis came back: the client set is whatever is connected here now */
  async resyncClients(clientIds: string[]): Promise<void> {
    const key = nodeClientsKey(this.opts.nodeId)
    const m = this.db.multi().del(key)
    for (let i = 0; i < clientIds.length; i += 500) m.sadd(key, ...clientIds.slice(i, i + 500))
    await m.exec()
  }

  /**
   * Graceful stop: the node's details and client set go at once (status shows it stopped), but
   * its registration is left to lapse like a dead node's, so the will sweeper handles the wills
   * of its clients that do not come back elsewhere in time (see cluster/index.ts).
   */
  async close(): Promise<void> {
    this.closed = true
    clearInterval(this.timer)
    if (this.db.status !== 'ready') return
    await this.db.multi().del(nodeKey(this.opts.nodeId), nodeClientsKey(this.opts.nodeId)).exec()
  }
}

export interface NodeStatus {
  id: string
  /** beating: registration not lapsed and not stopped */
  live: boolean
  /** live, stopped (left gracefully, registration not lapsed yet) or dead */
  state: 'live' | 'stopped' | 'dead'
  /** ms until the registration lapses (negative: lapsed that long ago) */
  expiresInMs: number
  /** ms since the node's last heartbeat */
  silentMs: number
  /** clients connected to the node (a dead node's last known ones: they are counted nowhere) */
  clients: number
  info: Record<string, string>
}

/** every node the cluster knows, live ones first (for `culex cluster status`) */
export async function listNodes(db: Redis): Promise<NodeStatus[]> {
  const [secs, micros] = await db.time()
  const now = Number(secs) * 1000 + Math.floor(Number(micros) / 1000)
  const flat = await db.zrange(NODES_KEY, 0, -1, 'WITHSCORES')
  const out: NodeStatus[] = []
  for (let i = 0; i < flat.length; i += 2) {
    const id = flat[i]!
    const deadline = Number(flat[i + 1])
    const [info, clients] = await Promise.all([db.hgetall(nodeKey(id)), db.scard(nodeClientsKey(id))])
    const beatMs = Number(info.heartbeat_ms) || 0
    // a node without a hash stopped (or lapsed): its registration deadline is 3 beats after its last one
    const lastBeat = Number(info.last_beat) || deadline - 3 * (beatMs || 5000)
    const silentMs = now - lastBeat
    const missedTwo = beatMs > 0 && silentMs > 2 * beatMs
    const state = deadline < now || missedTwo ? 'dead' : Object.keys(info).length === 0 ? 'stopped' : 'live'
    out.push({ id, live: state === 'live', state, expiresInMs: deadline - now, silentMs, clients, info })
  }
  return out.sort((a, b) => Number(b.live) - Number(a.live) || a.id.localeCompare(b.id))
}

/** distinct clients connected to the given nodes: a client that moved and is still in its old node's set counts once */
export async function clientTotal(db: Redis, nodeIds: string[]): Promise<number> {
  if (nodeIds.length === 0) return 0
  const tmp = `culex:tmp:clients:${process.pid}:${Date.now()}`
  const res = await db.multi().sunionstore(tmp, ...nodeIds.map(nodeClientsKey)).del(tmp).exec()
  return Number(res?.[0]?.[1] ?? 0)
}
