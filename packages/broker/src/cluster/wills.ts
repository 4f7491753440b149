/**
 * Publishes the wills of clients whose node died, once cluster-wide.
 *
 * Aedes' own sweep runs on every node and reads then deletes, so two nodes
 * can publish the same will (and it is disabled in cluster/persistence.ts).
 * Here every `will_sweep_interval_ms` one node holds `culex:lock:wills` and:
 * 1. lists the nodes whose registration lapsed (cluster/registry.ts) at least
 *    `will_delay_ms` ago,
 * 2. for each will they left, claims it with one atomic GET+DEL (only the
 *    claimer publishes it, so even two sweepers could not both publish),
 * 3. discards it instead if the client is connected to a live node again (a
 *    stale will of a reconnected client is never published), else publishes
 *    it through the broker (so it reaches subscribers on every node and the
 *    offline queues of QoS 1/2 sessions),
 * 4. forgets the dead node.
 * A will therefore goes out between 3 heartbeats + will_delay_ms and that
 * plus about 4 sweep intervals after the dead node's last heartbeat (the
 * extra intervals cover a lock holder that died itself).
 */
import type { Aedes } from 'aedes'
import type { Redis } from 'ioredis'
import type { Logger } from '../log.js'
import { NODES_KEY, WILLS_LIST, WILL_LOCK_KEY, nodeClientsKey, parseWillKey } from './keys.js'
import { decodePacket } from './msgpack.js'


// KEYS[1] lock; ARGV[1] owner, ARGV[2] ttl ms -> 1 if we hold it (taken or renewed)
const LOCK_LUA = `
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not owner then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`
// KEYS[1] will key, KEYS[2] will list -> the will, removed; nil if someone else took it
const CLAIM_LUA = `
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('LREM', KEYS[2], 0, KEYS[1])
  return false
end
redis.call('DEL', KEYS[1])
redis.call('LREM', KEYS[2], 0, KEYS[1])
return v
`
const UNLOCK_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

export interface WillSweeperOptions {
  nodeId: string
  sweepMs: number
  willDelayMs: number
}

interface StoredWill {
  topic: string
  payload?: Buffer
  qos?: 0 | 1 | 2
  retain?: boolean
  properties?: Record<string, unknown>
  clientId?: string
}

export class WillSweeper {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private closed = false
  /** wills published and discarded, for tests and logs */
  readonly stats = { published: 0, discarded: 0 }

  constructor(
    private readonly db: Redis,
    private readonly broker: Aedes,
    private readonly opts: WillSweeperOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.opts.sweepMs)
  }

  /** one sweep if this node gets the lock; never throws */
  tick(): Promise<void> {
    if (this.closed || this.db.status !== 'ready') return Promise.resolve()
    this.running ??= (async () => {
      try {
        const held = await this.db.eval(LOCK_LUA, 1, WILL_LOCK_KEY, this.opts.nodeId, 3 * this.opts.sweepMs)
        if (held === 1) await this.sweep()
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'will sweep failed')
      } finally {
        this.running = undefined
      }
    })()
    return this.running
  }

  /**
   * At start-up, before any client connects: wills stored under this node id
   * were left by a previous run of this node that died (same node id), and
   * would otherwise never be swept since the node is alive again.
   */
  async sweepOwnLeftovers(): Promise<void> {
    const keys = await this.db.lrange(WILLS_LIST, 0, -1)
    const mine = keys.filter((k) => parseWillKey(k)?.brokerId === this.opts.nodeId)
    if (mine.length === 0) return
    const live = await this.liveNodes()
    for (const key of mine) await this.settle(key, live)
  }

  private async now(): Promise<number> {
    const [s, us] = await this.db.time()
    return Number(s) * 1000 + Math.floor(Number(us) / 1000)
  }

  private async nodeDeadlines(): Promise<Map<string, number>> {
    const flat = await this.db.zrange(NODES_KEY, 0, -1, 'WITHSCORES')
    const m = new Map<string, number>()
    for (let i = 0; i < flat.length; i += 2) m.set(flat[i]!, Number(flat[i + 1]))
    return m
  }

  private async liveNodes(): Promise<string[]> {
    const now = await this.now()
    return [...(await this.nodeDeadlines())].filter(([, d]) => d >= now).map(([id]) => id)
  }

  private async sweep(): Promise<void> {
    const now = await this.now()
    const deadlines = await this.nodeDeadlines()
    const live: string[] = []
    const due = new Set<string>()
    for (const [id, deadline] of deadlines) {
      if (deadline >= now) live.push(id)
      else if (now >= deadline + this.opts.willDelayMs) due.add(id)
    }
    if (due.size === 0) return
    const keys = await this.db.lrange(WILLS_LIST, 0, -1)
    for (const key of keys) {
      if (this.closed) return
      const parsed = parseWillKey(key)
      // a will of a node the registry no longer knows is an orphan: due as well
      if (!parsed || (deadlines.has(parsed.brokerId) && !due.has(parsed.brokerId))) continue
      await this.settle(key, live)
    }
    const m = this.db.multi()
    for (const id of due) m.zrem(NODES_KEY, id).del(nodeClientsKey(id))
    await m.exec()
    for (const id of due) this.log.info({ dead_node: id }, 'dead node swept')
  }

  /** claim one will; publish it unless its client is connected to a live node */
  private async settle(key: string, live: string[]): Promise<void> {
    const parsed = parseWillKey(key)
    if (!parsed) return
    const others = live.filter((n) => n !== parsed.brokerId)
    let online = false
    if (others.length > 0) {
      const p = this.db.pipeline()
      for (const n of others) p.sismember(nodeClientsKey(n), parsed.clientId)
      const res = (await p.exec()) ?? []
      online = res.some(([, v]) => v === 1)
    }
    const buf = (await this.db.callBuffer('EVAL', CLAIM_LUA, 2, key, WILLS_LIST)) as Buffer | null
    if (!buf) return
    if (online) {
      this.stats.discarded++
      this.log.info({ client: parsed.clientId, dead_node: parsed.brokerId }, 'stale will discarded: client is connected again')
      return
    }
    let will: StoredWill
    try {
      will = decodePacket<StoredWill>(buf)
    } catch {
      return
    }
    await this.publish(will, parsed.clientId, parsed.brokerId)
  }

  private publish(will: StoredWill, clientId: string, deadNode: string): Promise<void> {
    // a fresh packet: the broker id/counter of the dead node must not be reused (see dedupe.ts)
    const packet: Record<string, unknown> = {
      cmd: 'publish',
      topic: will.topic,
      payload: will.payload ?? Buffer.alloc(0),
      qos: will.qos ?? 0,
      retain: will.retain ?? false,
      dup: false,
    }
    if (will.properties) packet.properties = will.properties
    return new Promise((resolve) => {
      // like Aedes' own sweep: authorized without a live client
      this.broker.authorizePublish(null as never, packet as never, (err) => {
        if (err) {
          this.log.warn({ client: clientId, err: err.message }, 'will of a dead node refused by authorizePublish')
          return resolve()
        }
        this.broker.publish(packet as never, (perr) => {
          if (perr) this.log.warn({ client: clientId, err: perr.message }, 'will publish failed')
          else {
            this.stats.published++
            this.log.info({ client: clientId, dead_node: deadNode, topic: will.topic }, 'will of a client on a dead node published')
          }
          resolve()
        })
      })
    })
  }

  async close(): Promise<void> {
    this.closed = true
    clearInterval(this.timer)
    await this.running
    if (this.db.status !== 'ready') return
    await this.db.eval(UNLOCK_LUA, 1, WILL_LOCK_KEY, this.opts.nodeId).catch(() => {})
  }
}
