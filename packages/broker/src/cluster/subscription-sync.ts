/**
 * The cluster-wide trie of the persistent sessions' subscriptions (cluster/persistence.ts
 * `subscriptionsByTopic`), kept in step on every node: each change is applied locally at once and
 * announced to the other nodes on SUBS_SYNC_CHANNEL, without waiting for an echo of our own
 * (aedes#602 / aedes#569: the upstream BroadcastPersistence waited for one, keyed so that all but
 * one wait never settled). A new subscription waits for every other node's acknowledgement on
 * SUBS_ACK_CHANNEL before its SUBACK (announceAndWait).
 *
 * - The trie misses every change broadcast while the Redis subscriber link was down (Redis
 *   pub/sub keeps nothing): `resync()` rebuilds it from Redis (the `client:<id>` hashes of the
 *   ids in `clients`, aedes-persistence-redis' layout) when the links come back, and replays on
 *   the new trie the changes that arrived meanwhile.
 * - Subscriptions are kept in the trie only with QoS > 0 (upstream loads QoS 0 ones at start-up,
 *   then drops them on the next broadcast), and a client matching a topic through several filters
 *   is queued once, at the highest QoS (MQTT-3.3.5-1 allows one copy at the maximum QoS).
 */
import type { Redis } from 'ioredis'
import type { Logger } from '../log.js'
import { CLIENTS_SET, clientSubsKey } from './keys.js'
import { QlobberSub } from '../seam/index.js'
import { decode } from './msgpack.js'
import { AckWaits } from './ack-wait.js'
import { MQTT_QLOBBER_OPTIONS } from '../broker/filter-set.js'

type Trie = InstanceType<typeof QlobberSub>

/**
 * Redis channel for subscription changes between nodes. A '#' can never be
 * part of an MQTT topic name [MQTT-3.3.2-2], so no client can publish onto it,
 * and the cluster bus (bus.ts) reads only its own channel, so no subscriber sees it.
 */
export const SUBS_SYNC_CHANNEL = 'culex#subs'
/** every other node acknowledges a new subscription here (see announceAndWait) */
export const SUBS_ACK_CHANNEL = 'culex#subs-ack'
/** longest a SUBSCRIBE waits for the other nodes to acknowledge it */
const ACK_TIMEOUT_MS = 2000

export interface StoredSub {
  topic: string
  qos: number
  rh?: number
  rap?: boolean
  nl?: boolean
}

/** a subscription of the trie: the stored one and its client */
export type TrieSub = StoredSub & { clientId: string }

/** the message on SUBS_SYNC_CHANNEL (JSON; the wire format between nodes of any release) */
interface SyncMessage {
  /** node that made the change */
  n: string
  /** client id */
  c: string
  /** add or remove */
  a: 'add' | 'rm'
  s: StoredSub[]
  /** acknowledgement key: receivers publish it on SUBS_ACK_CHANNEL once applied */
  k?: string
}

export class SubscriptionSync {
  private trie: Trie = new QlobberSub(MQTT_QLOBBER_OPTIONS)
  private nodeId?: string
  /** changes received while the trie is being rebuilt, replayed on the new one */
  private journal: SyncMessage[] | null = null
  private resyncing: Promise<void> | undefined
  private readonly onMessage = (channel: Buffer, message: Buffer): void => {
    if (channel.toString() !== SUBS_SYNC_CHANNEL) return
    let msg: SyncMessage
    try {
      msg = JSON.parse(message.toString()) as SyncMessage
    } catch {
      return
    }
    if (!msg || typeof msg.c !== 'string' || !Array.isArray(msg.s)) return
    if (msg.n === this.nodeId) return // applied locally already
    this.apply(msg)
    if (typeof msg.k === 'string') this.pub.publish(SUBS_ACK_CHANNEL, msg.k).catch(() => {})
  }
  /** announcements waiting for acknowledgements (announceAndWait) */
  private readonly acks = new AckWaits(ACK_TIMEOUT_MS)
  private readonly onAck = (channel: Buffer, message: Buffer): void => {
    if (channel.toString() === SUBS_ACK_CHANNEL) this.acks.ack(message.toString())
  }

  constructor(
    private readonly db: Redis,
    private readonly sub: Redis,
    private readonly pub: Redis,
    private readonly log: Logger,
  ) {}

  /** listen to the other nodes, then load the trie from Redis */
  async start(nodeId: string): Promise<void> {
    this.nodeId = nodeId
    this.sub.on('messageBuffer', this.onMessage)
    this.sub.on('messageBuffer', this.onAck)
    await this.sub.subscribe(SUBS_SYNC_CHANNEL, SUBS_ACK_CHANNEL)
    this.trie = await this.loadTrie()
  }

  stop(): void {
    this.sub.off('messageBuffer', this.onMessage)
    this.sub.off('messageBuffer', this.onAck)
  }

  /** rebuild the subscription trie from Redis (after the Redis links were down) */
  resync(): Promise<void> {
    this.resyncing ??= (async () => {
      this.journal = []
      try {
        const trie = await this.loadTrie()
        for (const msg of this.journal) applyTo(trie, msg)
        this.trie = trie
        this.log.info({ subscriptions: trie.subscriptionsCount }, 'subscriptions re-synced from redis')
      } finally {
        this.journal = null
        this.resyncing = undefined
      }
    })()
    return this.resyncing
  }

  /** the client's new subscriptions, on every node's trie before this resolves */
  added(clientId: string, subs: StoredSub[]): Promise<void> {
    return this.announceAndWait({ n: this.nodeId!, c: clientId, a: 'add', s: subs.map(plainSub) })
  }

  /** the client's filters gone, announced without waiting for the other nodes */
  async removed(clientId: string, topics: string[]): Promise<void> {
    const msg: SyncMessage = { n: this.nodeId!, c: clientId, a: 'rm', s: topics.map((topic) => ({ topic, qos: 0 })) }
    this.apply(msg)
    await this.pub.publish(SUBS_SYNC_CHANNEL, JSON.stringify(msg))
  }

  /** the subscriptions matching a topic name: one per client, at its highest QoS */
  match(topic: string): TrieSub[] {
    // no persistent session holds a QoS 1/2 subscription (the usual case with clean sessions):
    // Aedes asks for every QoS 1/2 PUBLISH (enqueueOffline), and the walk of even an empty trie
    // (a split of the topic, its levels) was 3-4% of a publishing node's busy time (issue 15)
    if (this.trie.subscriptionsCount === 0) return []
    const matches = this.trie.match(topic) as TrieSub[]
    if (matches.length < 2) return matches
    const byClient = new Map<string, TrieSub>()
    for (const m of matches) {
      const seen = byClient.get(m.clientId)
      if (!seen || m.qos > seen.qos) byClient.set(m.clientId, m)
    }
    return byClient.size === matches.length ? matches : [...byClient.values()]
  }

  *clientIds(topic: string): Generator<string> {
    for (const entry of this.trie.match(topic, topic)) yield entry.clientId
  }

  get count(): number {
    return this.trie.subscriptionsCount
  }

  private async loadTrie(): Promise<Trie> {
    const trie = new QlobberSub(MQTT_QLOBBER_OPTIONS)
    const ids = await this.db.smembers(CLIENTS_SET)
    for (let i = 0; i < ids.length; i += 200) {
      const chunk = ids.slice(i, i + 200)
      const pipeline = this.db.pipeline()
      for (const id of chunk) pipeline.hgetallBuffer(clientSubsKey(id))
      const results = (await pipeline.exec()) ?? []
      results.forEach(([err, hash], j) => {
        if (err || !hash) return
        const clientId = chunk[j]!
        for (const sub of decodeSubs(hash as Record<string, Buffer>)) {
          if (sub.qos > 0) trie.add(sub.topic, { ...sub, clientId })
        }
      })
    }
    return trie
  }

  private apply(msg: SyncMessage): void {
    applyTo(this.trie, msg)
    this.journal?.push(msg)
  }

  /**
   * Announce a new subscription and wait until every other node has applied it, so that once
   * the client has its SUBACK a message published through any node is queued for it, even if
   * it disconnects at once [MQTT-3.1.2-4]. Redis' PUBLISH answers how many connections got the
   * message (one per node, ours included), which is how many acknowledgements to wait for.
   * A node that dies meanwhile costs at most ACK_TIMEOUT_MS.
   */
  private async announceAndWait(msg: SyncMessage): Promise<void> {
    this.apply(msg)
    await this.acks.announce(
      (key) => this.pub.publish(SUBS_SYNC_CHANNEL, JSON.stringify({ ...msg, k: key })),
      (seen, expected) => this.log.warn({ client: msg.c, acks: seen, expected }, 'subscription not acknowledged by every node in time'),
    )
  }

}

function plainSub(s: StoredSub): StoredSub {
  const out: StoredSub = { topic: s.topic, qos: s.qos }
  if (s.rh !== undefined) out.rh = s.rh
  if (s.rap !== undefined) out.rap = s.rap
  if (s.nl !== undefined) out.nl = s.nl
  return out
}

function applyTo(trie: Trie, msg: SyncMessage): void {
  for (const s of msg.s) {
    if (typeof s?.topic !== 'string') continue
    if (msg.a === 'add' && s.qos > 0) trie.add(s.topic, { ...s, clientId: msg.c })
    else trie.remove(s.topic, { clientId: msg.c, topic: s.topic })
  }
}

/** a `client:<id>` hash (topic filter -> msgpack subscription) as subscriptions */
export function decodeSubs(hash: Record<string, Buffer>): StoredSub[] {
  const out: StoredSub[] = []
  for (const [topic, value] of Object.entries(hash)) {
    if (value.length === 1) {
      // aedes-persistence-redis 8.x stored the bare QoS digit
      out.push({ topic, qos: Number.parseInt(value.toString(), 10) })
    } else {
      out.push(decode<StoredSub>(value))
    }
  }
  return out
}
