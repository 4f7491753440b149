/**
 * Which topic filters the other nodes' clients are subscribed to, for MQTT 5's PUBACK/PUBREC 0x10
 * No matching subscribers (broker/no-subscribers.ts): the cluster bus sends every message to every
 * node and each matches it against its own subscriptions, so without this no node knows whether a
 * message has a subscriber elsewhere (the persistence's trie, subscription-sync.ts, knows the
 * persistent sessions' QoS 1/2 subscriptions only).
 *
 * Each node keeps the set of distinct filters its connected clients hold in Redis
 * (`culex:interest:<node>`, with a marker member, expiring TTL_MS after the node stops refreshing
 * it) and announces each change on INTEREST_CHANNEL, in the same MULTI as the change: only when a
 * filter appears on the node or leaves it, not per SUBSCRIBE, never per message. Every node keeps
 * the others' sets in memory (one trie, filter-set.ts), loaded from Redis at start and after its
 * subscriber link was down (Redis pub/sub keeps nothing), with the announcements that arrive
 * meanwhile applied after the load. The view is complete (0x10 may be sent) once loaded and while
 * the link is up, and only if every live node (culex:nodes) has its set in Redis: a node of an
 * older version, or whose set Redis lost, makes it incomplete until it writes it again; the live
 * nodes are read again every LIVE_CHECK_MS, so one that starts later without a set counts too.
 * A node that dies keeps its filters in the others' views until their next load (towards 0x00).
 */
import type { Redis } from 'ioredis'
import type { Logger } from '../log.js'
import { FilterSet } from '../broker/filter-set.js'
import type { RemoteInterest } from '../broker/no-subscribers.js'
import { NODES_KEY } from './keys.js'

/** '#' is never in an MQTT topic name [MQTT-3.3.2-2]: no client publishes onto it, the bus does not read it */
export const INTEREST_CHANNEL = 'culex#interest'
export const interestKey = (nodeId: string): string => `culex:interest:${nodeId}`
/** a member no topic filter can be (U+0000 is not allowed in one [MQTT-4.7.3-2]): the set exists */
const MARKER = '\u0000'
const TTL_MS = 120_000
const REFRESH_MS = 30_000
/** how often the live nodes are read again: one that started since the load and keeps no set makes the view incomplete */
const LIVE_CHECK_MS = 2_000

interface Change {
  /** node */
  n: string
  /** add, remove, or replace the node's whole set */
  a: 'add' | 'rm' | 'set'
  f: string[]
}

export interface ClusterInterest extends RemoteInterest {
  start(): Promise<void>
  close(): void
}

export function createClusterInterest(opts: { data: Redis; sub: Redis; nodeId: string; log: Logger }): ClusterInterest {
  const { data, sub, nodeId, log } = opts
  const key = interestKey(nodeId)
  const others = new Map<string, Set<string>>()
  const all = new FilterSet()
  let localFilters: () => Iterable<string> = () => []
  let loaded = false
  /** live nodes whose set was not in Redis at the last load: the view is complete once each announced it */
  const missing = new Set<string>()
  let linkUp = true
  let closed = false
  /** announcements received during a load, applied after it */
  let journal: Change[] | null = null
  /** our own changes not yet written: filter -> added */
  const pending = new Map<string, boolean>()
  let writing: Promise<void> = Promise.resolve()
  /** a write failed: write the whole set again */
  let rewrite = false

  const apply = (c: Change): void => {
    if (c.n === nodeId) return
    if (c.a === 'set') missing.delete(c.n)
    let set = others.get(c.n)
    if (c.a === 'set' && set) {
      for (const f of set) all.remove(f)
      set = undefined
    }
    if (!set) others.set(c.n, (set = new Set()))
    for (const f of c.f) {
      if (c.a === 'rm') {
        if (set.delete(f)) all.remove(f)
      } else if (!set.has(f)) {
        set.add(f)
        all.add(f)
      }
    }
  }
  const onMessage = (channel: Buffer, message: Buffer): void => {
    if (channel.toString() !== INTEREST_CHANNEL) return
    let c: Change
    try {
      c = JSON.parse(message.toString()) as Change
    } catch {
      return
    }
    if (!c || typeof c.n !== 'string' || !Array.isArray(c.f) || !['add', 'rm', 'set'].includes(c.a)) return
    if (journal) journal.push(c)
    else apply(c)
  }

  const load = async (): Promise<void> => {
    journal = []
    try {
      const [s, us] = await data.time()
      const now = Number(s) * 1000 + Math.floor(Number(us) / 1000)
      const flat = await data.zrange(NODES_KEY, 0, -1, 'WITHSCORES')
      const live: string[] = []
      for (let i = 0; i < flat.length; i += 2) if (flat[i] !== nodeId && Number(flat[i + 1]) >= now) live.push(flat[i]!)
      const sets = await Promise.all(live.map((n) => data.smembers(interestKey(n))))
      others.clear()
      all.clear()
      missing.clear()
      live.forEach((n, i) => {
        const members = sets[i]!
        apply({ n, a: 'set', f: members.filter((m) => m !== MARKER) })
        if (!members.includes(MARKER)) missing.add(n)
      })
      for (const c of journal) apply(c)
      loaded = true
      if (missing.size > 0) log.debug({ nodes: [...missing] }, 'subscriber view: live nodes without a filter set in redis (no 0x10 until they announce one)')
    } finally {
      journal = null
    }
  }

  /**
   * A node that started after the load is known once it announces its set; one that keeps none (a
   * node of an older release, or with puback_no_subscribers false) would never be: each live node
   * the view has no set of counts as missing until it announces one, and a missing node that is
   * no longer live stops counting.
   */
  const checkLive = async (): Promise<void> => {
    if (!loaded || journal) return
    const [s, us] = await data.time()
    const live = new Set(await data.zrangebyscore(NODES_KEY, Number(s) * 1000 + Math.floor(Number(us) / 1000), '+inf'))
    if (!loaded || journal) return
    for (const n of live) if (n !== nodeId && !others.has(n)) missing.add(n)
    for (const n of missing) if (!live.has(n)) missing.delete(n)
  }

  const writeAll = async (): Promise<void> => {
    const filters = [...localFilters()]
    pending.clear()
    const m = data.multi().del(key).sadd(key, MARKER, ...filters).pexpire(key, TTL_MS)
    await m.publish(INTEREST_CHANNEL, JSON.stringify({ n: nodeId, a: 'set', f: filters } satisfies Change)).exec()
  }
  const flush = (): void => {
    writing = writing.then(async () => {
      if (closed) return
      try {
        if (rewrite) {
          rewrite = false
          return await writeAll()
        }
        if (pending.size === 0) return
        const add = [...pending].filter(([, a]) => a).map(([f]) => f)
        const rm = [...pending].filter(([, a]) => !a).map(([f]) => f)
        pending.clear()
        const m = data.multi()
        if (add.length > 0) m.sadd(key, ...add).publish(INTEREST_CHANNEL, JSON.stringify({ n: nodeId, a: 'add', f: add } satisfies Change))
        if (rm.length > 0) m.srem(key, ...rm).publish(INTEREST_CHANNEL, JSON.stringify({ n: nodeId, a: 'rm', f: rm } satisfies Change))
        await m.exec()
      } catch (err) {
        rewrite = true
        log.debug({ err: (err as Error).message }, 'subscriber view: filter change not written (rewritten when redis is back)')
      }
    })
  }
  let scheduled = false
  const schedule = (): void => {
    if (scheduled) return
    scheduled = true
    // the changes of one SUBSCRIBE (or one closed connection) in one MULTI, sent before the event loop goes on
    queueMicrotask(() => {
      scheduled = false
      flush()
    })
  }

  const onDown = (): void => {
    linkUp = false
  }
  const onReady = (): void => {
    linkUp = true
    loaded = false
    // our set again (Redis may have lost it), then the others'
    rewrite = true
    flush()
    load().catch((err: Error) => log.debug({ err: err.message }, 'subscriber view: reload failed'))
  }
  const timer = setInterval(() => {
    if (rewrite) flush()
    else data.pexpire(key, TTL_MS).then((n) => n === 0 && ((rewrite = true), flush()), () => {})
  }, REFRESH_MS)
  timer.unref()
  const liveTimer = setInterval(() => {
    checkLive().catch((err: Error) => log.debug({ err: err.message }, 'subscriber view: live nodes not read'))
  }, LIVE_CHECK_MS)
  liveTimer.unref()

  return {
    complete: () => loaded && linkUp && journal === null && missing.size === 0,
    test: (topic) => all.test(topic),
    changed(filter, added) {
      pending.set(filter, added)
      schedule()
    },
    setLocal(filters) {
      localFilters = filters
    },
    async start() {
      sub.on('messageBuffer', onMessage)
      await sub.subscribe(INTEREST_CHANNEL)
      await writeAll()
      await load()
      sub.on('close', onDown)
      sub.on('ready', onReady)
    },
    close() {
      closed = true
      clearInterval(timer)
      clearInterval(liveTimer)
      sub.off('messageBuffer', onMessage)
      sub.off('close', onDown)
      sub.off('ready', onReady)
    },
  }
}

