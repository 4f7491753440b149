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
 *
 * MQTT 5 Will Delay Interval (instead of Aedes' in-process timer, aedes#839):
 * a will with a delay stays stored and gets a due time in `culex:wills:due`,
 * min(will delay, session expiry) (MQTT 5 section 3.1.3.2.2) after the connection ended
 * (`willDelayed`), or after the dead node's registration lapsed. A CONNECT of
 * the client on any node deletes it with its due time [MQTT-3.1.3-9]
 * (cluster/persistence.ts delWill). Each sweep publishes the wills that are
 * due, then handles dead nodes (their sessions adopted by session-expiry.ts),
 * then ends the sessions whose Session Expiry Interval passed: a will due at
 * the session's end goes out before the session ends.
 *
 * The sweep's lock is in will-lock.ts, the scripts on stored wills (claim, due time) in
 * will-store.ts, the publish of a will in will-publish.ts.
 */
import type { Aedes, Client } from 'aedes'
import type { Redis } from 'ioredis'
import type { Logger } from '../log.js'
import { NODES_KEY, SESSION_DEADLINES_KEY, WILLS_DUE_KEY, nodeClientsKey, parseWillKey, willKey } from './keys.js'
import { decodePacket } from './msgpack.js'
import type { SessionExpiry } from './session-expiry.js'
import { releaseWillLock, takeWillLock } from './will-lock.js'
import { publishWill } from './will-publish.js'
import { claimWill, compactWills, delayWill, listedWillKeys, storedWills, willDelayS, type StoredWill } from './will-store.js'

/** delayed wills published per sweep at most (the rest in the next sweeps) */
const DUE_BATCH = 100
/** the will list is compacted (will-store.ts compactWills) at least this often, by the sweeping node */
const COMPACT_MS = 60_000

export interface WillSweeperOptions {
  nodeId: string
  sweepMs: number
  willDelayMs: number
}

export class WillSweeper {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private closed = false
  /** when this node last compacted the will list (performance.now()) */
  private compactedAt = 0
  /** wills published and discarded, for tests and logs */
  readonly stats = { published: 0, discarded: 0 }

  constructor(
    private readonly db: Redis,
    private readonly broker: Aedes,
    private readonly opts: WillSweeperOptions,
    private readonly log: Logger,
    private readonly sessions?: SessionExpiry,
  ) {}

  /**
   * lib/client.js close (seam: Aedes' scheduleWill): the client's will, stored under this node,
   * is due in `delayS` seconds unless the client connects again before (its CONNECT deletes it)
   */
  willDelayed(client: Client, delayS: number): void {
    if (!client.id) return
    delayWill(this.db, willKey(this.opts.nodeId, client.id), delayS * 1000).catch((err: Error) =>
      this.log.warn({ client: client.id, err: err.message }, 'delayed will not scheduled'),
    )
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.opts.sweepMs)
  }

  /** one sweep if this node gets the lock; never throws */
  tick(): Promise<void> {
    if (this.closed || this.db.status !== 'ready') return Promise.resolve()
    this.running ??= (async () => {
      try {
        if (await takeWillLock(this.db, this.opts.nodeId, 3 * this.opts.sweepMs)) await this.sweep()
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
    const now = await this.now()
    const plans = (await this.sessions?.adoptNode(this.opts.nodeId, now)) ?? new Map<string, number>()
    const keys = await listedWillKeys(this.db)
    const mine = await storedWills(this.db, keys.filter((k) => parseWillKey(k)?.brokerId === this.opts.nodeId))
    if (mine.length === 0) return
    const live = await this.liveNodes()
    for (const key of mine) await this.settleLeft(key, live, now, now, plans)
  }

  /** the will list without the entries of wills taken since (will-store.ts compactWills) */
  private async compact(): Promise<void> {
    this.compactedAt = performance.now()
    const { looked, dropped } = await compactWills(this.db)
    if (dropped > 0) this.log.debug({ looked, dropped }, 'will list compacted')
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
    await this.publishDueWills(live)
    if (due.size > 0) await this.sweepDeadNodes(now, deadlines, due, live)
    if (!this.closed) await this.sessions?.expire()
    if (!this.closed && performance.now() - this.compactedAt >= COMPACT_MS) await this.compact()
  }

  /** the delayed wills whose time came */
  private async publishDueWills(live: string[]): Promise<void> {
    for (;;) {
      const [s, us] = await this.db.time()
      const now = Number(s) * 1000 + Math.floor(Number(us) / 1000)
      const keys = await this.db.zrangebyscore(WILLS_DUE_KEY, '-inf', now, 'LIMIT', 0, DUE_BATCH)
      for (const key of keys) {
        if (this.closed) return
        await this.settle(key, live, 'delayed will published')
      }
      if (keys.length < DUE_BATCH) return
    }
  }

  private async sweepDeadNodes(now: number, deadlines: Map<string, number>, due: Set<string>, live: string[]): Promise<void> {
    // sessions the dead nodes owned expire counted from their lapse (session-expiry.ts)
    const plans = new Map<string, number>()
    for (const id of due) {
      for (const [client, plan] of (await this.sessions?.adoptNode(id, deadlines.get(id)!)) ?? []) plans.set(client, plan)
    }
    // a will of a node the registry no longer knows is an orphan: due as well
    const left = (await listedWillKeys(this.db)).filter((key) => {
      const parsed = parseWillKey(key)
      return parsed !== undefined && (!deadlines.has(parsed.brokerId) || due.has(parsed.brokerId))
    })
    for (const key of await storedWills(this.db, left)) {
      if (this.closed) return
      await this.settleLeft(key, live, deadlines.get(parseWillKey(key)!.brokerId) ?? now, now, plans)
    }
    const m = this.db.multi()
    for (const id of due) m.zrem(NODES_KEY, id).del(nodeClientsKey(id))
    await m.exec()
    for (const id of due) this.log.info({ dead_node: id }, 'dead node swept')
  }

  /**
   * A will its node left (died, or stopped): published now, unless it has a Will Delay Interval
   * that runs beyond now, counted from `diedAt`; then it gets its due time (kept if it has one),
   * at the latest when the session expires (section 3.1.3.2.2; a stopped node set its deadline).
   */
  private async settleLeft(key: string, live: string[], diedAt: number, now: number, plans: Map<string, number>): Promise<void> {
    if ((await this.db.zscore(WILLS_DUE_KEY, key)) !== null) return
    const buf = await this.db.getBuffer(key)
    const parsed = parseWillKey(key)
    if (buf && parsed) {
      let dueAt = diedAt
      try {
        dueAt += willDelayS(decodePacket<StoredWill>(buf), plans.get(parsed.clientId)) * 1000
      } catch {
        /* settle discards what does not decode */
      }
      const sessionEnds = await this.db.zscore(SESSION_DEADLINES_KEY, parsed.clientId)
      if (sessionEnds !== null) dueAt = Math.min(dueAt, Number(sessionEnds))
      if (dueAt > now) {
        await this.db.zadd(WILLS_DUE_KEY, dueAt, key)
        return
      }
    }
    await this.settle(key, live, 'will of a client on a dead node published')
  }

  /** claim one will; publish it unless its client is connected to a live node */
  private async settle(key: string, live: string[], published: string): Promise<void> {
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
    const buf = await claimWill(this.db, key)
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
    await publishWill(this.broker, this.log, this.stats, will, parsed.clientId, parsed.brokerId, published)
  }

  async close(): Promise<void> {
    this.closed = true
    clearInterval(this.timer)
    await this.running
    if (this.db.status !== 'ready') return
    await releaseWillLock(this.db, this.opts.nodeId).catch(() => {})
  }
}
