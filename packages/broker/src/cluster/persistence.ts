/**
 * Cluster persistence: aedes-persistence-redis for retained messages, offline
 * queues and inbound QoS 2 state, with our own code for the parts that are
 * broken in a cluster. The Redis key layout stays the upstream one.
 *
 * Fixed here instead of in node_modules:
 * - aedes#602 / aedes#569: aedes calls `addSubscriptions(client, allFilters)`
 *   once per filter of a SUBSCRIBE, and the upstream BroadcastPersistence
 *   keys the wait for its own broadcast by client id + first filter. On a
 *   Redis emitter every wait is registered before the first echo arrives, the
 *   later ones overwrite the earlier ones and all but one promise never
 *   settles, so a `clean: false` client never gets its SUBACK. We run the
 *   store once per SUBSCRIBE packet, update the local subscription trie
 *   directly and tell the other nodes over a Redis channel without waiting
 *   for an echo, so nothing can hang.
 * - aedes-persistence-redis#98 (PR #110, never merged): on CONNECT aedes calls
 *   `delWill(client)` before `client.brokerId` exists, so the upstream code
 *   deletes `will:undefined:<id>` and the will a client left on a node that
 *   died stays behind, to be published later while the client is back online.
 *   Our delWill removes the client's wills under every node id.
 * - The built-in will sweep of aedes runs on every node and can publish a will
 *   several times; `streamWill` returns nothing here and wills of dead nodes
 *   are published once, under a Redis lock, by cluster/wills.ts.
 * - The subscription trie misses every change broadcast while the Redis
 *   subscriber link was down (Redis pub/sub keeps nothing): `resync()`
 *   rebuilds it from Redis when the links come back.
 * - Outgoing queues of persistent sessions (outgoing.ts): the whole queue is replayed on
 *   reconnect, in pages, and packet ids live in Redis per session, so a PUBACK clears its
 *   message whichever node handles it and a redelivery keeps its packet id and has DUP set.
 * - Subscriptions are kept in the trie only with QoS > 0 (upstream loads QoS 0
 *   ones at start-up, then drops them on the next broadcast), and a client
 *   matching a topic through several filters is queued once, at the highest
 *   QoS (MQTT-3.3.5-1 allows one copy at the maximum QoS).
 */
import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { Logger } from '../log.js'
import {
  CLIENTS_SET,
  NODES_KEY,
  WILLS_DUE_KEY,
  WILLS_LIST,
  clientSubsKey,
  willKey,
} from './keys.js'
import { OutgoingStore } from './outgoing.js'
import { SessionQueues, type QueuedPacket, type QueueSub, type SessionClient } from './session-queue.js'
import { AsyncRedisPersistence, CallBackPersistence, QlobberSub, isDelWillOnConnect } from '../seam/index.js'
import { decode, decodePacket, encode, encodePacket, withPackedProperties, withProperties } from './msgpack.js'


type Trie = InstanceType<typeof QlobberSub>

const QLOBBER_OPTIONS = { separator: '/', wildcard_one: '+', wildcard_some: '#', match_empty_levels: true }

/**
 * Redis channel for subscription changes between nodes. A '#' can never be
 * part of an MQTT topic name [MQTT-3.3.2-2], so no client can publish onto it,
 * and the cluster bus (bus.ts) reads only its own channel, so no subscriber sees it.
 */
export const SUBS_SYNC_CHANNEL = 'culex#subs'
/** every other node acknowledges a new subscription here (see announce) */
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

interface ClientLike {
  id: string
  brokerId?: string
}

interface BrokerLike {
  id: string
}

// KEYS[1] = will list, KEYS[2] = nodes zset, KEYS[3] = delayed wills zset; ARGV[1] = encoded client id,
// ARGV[2] = own node id. Deletes `will:<node>:<client>` for every node the cluster knows
// (aedes-persistence-redis#98), and its due time if it was delayed: a client that returns, on any
// node, before its delayed will is due cancels it [MQTT-3.1.3-10] (cluster/wills.ts).
const DEL_ALL_WILLS_LUA = `
local nodes = redis.call('ZRANGE', KEYS[2], 0, -1)
table.insert(nodes, ARGV[2])
local n = 0
for _, node in ipairs(nodes) do
  local key = 'will:' .. node .. ':' .. ARGV[1]
  redis.call('ZREM', KEYS[3], key)
  if redis.call('DEL', key) == 1 then
    redis.call('LREM', KEYS[1], 0, key)
    n = n + 1
  end
end
return n
`

export class CulexRedisPersistence {
  private trie: Trie = new QlobberSub(QLOBBER_OPTIONS)
  private readonly inner: InstanceType<typeof AsyncRedisPersistence>
  private readonly queues: SessionQueues
  private broker?: BrokerLike
  /** one store per SUBSCRIBE packet, whatever the number of filters (aedes#602) */
  private readonly inflightAdds = new WeakMap<object, Promise<void>>()
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
    if (this.broker && msg.n === this.broker.id) return // applied locally already
    this.apply(msg)
    if (typeof msg.k === 'string') this.pub.publish(SUBS_ACK_CHANNEL, msg.k).catch(() => {})
  }
  /** announcements waiting for acknowledgements: key -> acks seen, acks expected, resolve */
  private readonly pendingAcks = new Map<string, { seen: number; expected: number; done: () => void }>()
  private readonly onAck = (channel: Buffer, message: Buffer): void => {
    if (channel.toString() !== SUBS_ACK_CHANNEL) return
    const pending = this.pendingAcks.get(message.toString())
    if (!pending) return
    pending.seen++
    if (pending.seen >= pending.expected) pending.done()
  }

  constructor(
    private readonly db: Redis,
    private readonly sub: Redis,
    private readonly pub: Redis,
    _mq: unknown,
    private readonly log: Logger,
  ) {
    this.inner = new AsyncRedisPersistence({ conn: db })
    this.queues = new SessionQueues(new OutgoingStore(db))
  }

  async setup(broker: BrokerLike): Promise<void> {
    this.broker = broker
    this.sub.on('messageBuffer', this.onMessage)
    this.sub.on('messageBuffer', this.onAck)
    await this.sub.subscribe(SUBS_SYNC_CHANNEL, SUBS_ACK_CHANNEL)
    this.trie = await this.loadTrie()
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

  private async loadTrie(): Promise<Trie> {
    const trie = new QlobberSub(QLOBBER_OPTIONS)
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

  private async announce(msg: SyncMessage): Promise<void> {
    this.apply(msg)
    await this.pub.publish(SUBS_SYNC_CHANNEL, JSON.stringify(msg))
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
    const key = randomBytes(8).toString('hex')
    let done!: () => void
    const acked = new Promise<void>((resolve) => (done = resolve))
    const pending = { seen: 0, expected: Number.POSITIVE_INFINITY, done }
    this.pendingAcks.set(key, pending)
    const timer = setTimeout(() => {
      this.log.warn({ client: msg.c, acks: pending.seen, expected: pending.expected }, 'subscription not acknowledged by every node in time')
      done()
    }, ACK_TIMEOUT_MS)
    try {
      const receivers = await this.pub.publish(SUBS_SYNC_CHANNEL, JSON.stringify({ ...msg, k: key }))
      pending.expected = receivers - 1
      if (pending.seen >= pending.expected) done()
      await acked
    } finally {
      clearTimeout(timer)
      this.pendingAcks.delete(key)
    }
  }

  // ---- subscriptions -------------------------------------------------------

  addSubscriptions(client: ClientLike, subs: StoredSub[]): Promise<void> {
    // aedes#602/#569: called once per filter with the same array; store once
    let p = this.inflightAdds.get(subs)
    if (!p) {
      p = this.storeSubscriptions(client, subs)
      this.inflightAdds.set(subs, p)
    }
    return p
  }

  private async storeSubscriptions(client: ClientLike, subs: StoredSub[]): Promise<void> {
    if (subs.length === 0) return
    const toStore: Record<string, Buffer> = {}
    for (const sub of subs) toStore[sub.topic] = encode(sub)
    await this.db.multi().sadd(CLIENTS_SET, client.id).hset(clientSubsKey(client.id), toStore).exec()
    await this.announceAndWait({ n: this.broker!.id, c: client.id, a: 'add', s: subs.map(plainSub) })
  }

  async removeSubscriptions(client: ClientLike, topics: string[]): Promise<void> {
    const key = clientSubsKey(client.id)
    if (topics.length > 0) await this.db.hdel(key, ...topics)
    if ((await this.db.exists(key)) === 0) {
      // the session is over: its queue and the bodies only it still referenced go (upstream
      // deleted the queue and left the bodies' reference counts, and the bodies, behind)
      await this.queues.drop(client.id)
      await this.db.srem(CLIENTS_SET, client.id)
    }
    await this.announce({ n: this.broker!.id, c: client.id, a: 'rm', s: topics.map((topic) => ({ topic, qos: 0 })) })
  }

  async subscriptionsByClient(client: ClientLike): Promise<StoredSub[]> {
    return decodeSubs(await this.db.hgetallBuffer(clientSubsKey(client.id)))
  }

  async cleanSubscriptions(client: ClientLike): Promise<void> {
    const subs = await this.subscriptionsByClient(client)
    if (subs.length > 0) await this.removeSubscriptions(client, subs.map((s) => s.topic))
  }

  async subscriptionsByTopic(topic: string): Promise<Array<StoredSub & { clientId: string }>> {
    const matches = this.trie.match(topic) as Array<StoredSub & { clientId: string }>
    if (matches.length < 2) return matches
    // one entry per client, at its highest QoS
    const byClient = new Map<string, StoredSub & { clientId: string }>()
    for (const m of matches) {
      const seen = byClient.get(m.clientId)
      if (!seen || m.qos > seen.qos) byClient.set(m.clientId, m)
    }
    return byClient.size === matches.length ? matches : [...byClient.values()]
  }

  async countOffline(): Promise<{ subsCount: number; clientsCount: number }> {
    const clientsCount = await this.db.scard(CLIENTS_SET)
    return { subsCount: this.trie.subscriptionsCount, clientsCount }
  }

  *getClientList(topic: string): Generator<string> {
    for (const entry of this.trie.match(topic, topic)) yield entry.clientId
  }

  /**
   * The session ended while its client was away (its Session Expiry Interval passed,
   * cluster/session-expiry.ts): its subscriptions (on every node's trie), its queue and the
   * message bodies only it referenced, its inbound QoS 2 state and its entry in `clients` go.
   */
  async endSession(clientId: string): Promise<void> {
    const client = { id: clientId }
    await this.cleanSubscriptions(client)
    await this.queues.drop(clientId)
    await this.db.srem(CLIENTS_SET, clientId)
    await this.inner.cleanIncoming(client)
  }

  // ---- wills ---------------------------------------------------------------

  async putWill(client: ClientLike, packet: Record<string, unknown>): Promise<void> {
    const key = willKey(this.broker!.id, client.id)
    packet.clientId = client.id
    packet.brokerId = this.broker!.id
    await this.db.multi().lrem(WILLS_LIST, 0, key).rpush(WILLS_LIST, key).set(key, encodePacket(packet)).exec()
  }

  async getWill(client: ClientLike): Promise<unknown> {
    const buf = await this.db.getBuffer(willKey(this.broker!.id, client.id))
    return buf ? decodePacket(buf) : null
  }

  async delWill(client: ClientLike): Promise<unknown> {
    if (isDelWillOnConnect(client)) {
      // CONNECT: drop the wills this client id left on any node (aedes-persistence-redis#98)
      await this.db.eval(DEL_ALL_WILLS_LUA, 3, WILLS_LIST, NODES_KEY, WILLS_DUE_KEY, encodeURIComponent(client.id), this.broker!.id)
      return null
    }
    // not on CONNECT: Aedes set the node the client is on
    const key = willKey(client.brokerId!, client.id)
    const results = await this.db.multi().lrem(WILLS_LIST, 0, key).getBuffer(key).del(key).exec()
    const buf = results?.[1]?.[1] as Buffer | null | undefined
    return buf ? decodePacket(buf) : null
  }

  /** the stock per-node sweep finds nothing; cluster/wills.ts publishes wills of dead nodes once */
  async *streamWill(): AsyncGenerator<never> {}

  // ---- outgoing queues of persistent sessions (session-queue.ts) ---------------

  outgoingEnqueue(sub: QueueSub, packet: QueuedPacket): Promise<void> {
    return this.queues.enqueue([sub], packet)
  }
  outgoingEnqueueCombi(subs: QueueSub[], packet: QueuedPacket): Promise<void> {
    return this.queues.enqueue(subs, packet)
  }
  outgoingUpdate(client: SessionClient, packet: QueuedPacket): Promise<void> {
    return this.queues.update(client, packet)
  }
  outgoingClearMessageId(client: SessionClient, packet: { messageId?: number }): Promise<unknown> {
    return this.queues.acked(client, packet)
  }
  outgoingStream(client: SessionClient): AsyncIterable<unknown> {
    return this.queues.replay(client)
  }

  // ---- delegated to aedes-persistence-redis ---------------------------------

  // retained messages are msgpack-lite encoded inside aedes-persistence-redis: their MQTT 5 user
  // properties go in as a list of pairs (msgpack.ts), which keeps a name like `__proto__`
  storeRetained(packet: unknown): Promise<void> {
    return this.inner.storeRetained(withPackedProperties(packet as object))
  }
  createRetainedStream(pattern: string): AsyncIterable<unknown> {
    return withProperties(this.inner.createRetainedStream(pattern))
  }
  createRetainedStreamCombi(patterns: string[]): AsyncIterable<unknown> {
    return withProperties(this.inner.createRetainedStreamCombi(patterns))
  }
  incomingStorePacket(client: unknown, packet: unknown): Promise<void> {
    return this.inner.incomingStorePacket(client, packet)
  }
  incomingGetPacket(client: unknown, packet: unknown): Promise<unknown> {
    return this.inner.incomingGetPacket(client, packet)
  }
  incomingDelPacket(client: unknown, packet: unknown): Promise<void> {
    return this.inner.incomingDelPacket(client, packet)
  }
  cleanIncoming(client: unknown): Promise<void> {
    return this.inner.cleanIncoming(client)
  }

  async destroy(): Promise<void> {
    this.sub.off('messageBuffer', this.onMessage)
    this.sub.off('messageBuffer', this.onAck)
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

function decodeSubs(hash: Record<string, Buffer>): StoredSub[] {
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

/** the object Aedes gets: the upstream callback/stream layer over our async core */
export function createClusterPersistence(parts: { db: Redis; sub: Redis; pub: Redis; mq: unknown; log: Logger }): {
  persistence: unknown
  core: CulexRedisPersistence
} {
  const core = new CulexRedisPersistence(parts.db, parts.sub, parts.pub, parts.mq, parts.log)
  return { persistence: new CallBackPersistence(() => core), core }
}
