/**
 * Cluster persistence: the core Aedes calls (through aedes-persistence's callback layer) in
 * cluster mode. aedes-persistence-redis keeps retained messages and inbound QoS 2 state; our own
 * code does the parts that are broken in a cluster. The Redis key layout stays the upstream one.
 *
 * Fixed outside node_modules, in the files this one delegates to:
 * - subscriptions (subscription-sync.ts): aedes#602 / aedes#569: aedes calls
 *   `addSubscriptions(client, allFilters)` once per filter of a SUBSCRIBE, and the upstream
 *   BroadcastPersistence keys the wait for its own broadcast by client id + first filter. On a
 *   Redis emitter every wait is registered before the first echo arrives, the later ones
 *   overwrite the earlier ones and all but one promise never settles, so a `clean: false` client
 *   never gets its SUBACK. We run the store once per SUBSCRIBE packet (`addSubscriptions` here),
 *   update the local subscription trie directly and tell the other nodes over a Redis channel
 *   without waiting for an echo, so nothing can hang. The trie is rebuilt from Redis after the
 *   subscriber link was down (`resync`), holds QoS > 0 subscriptions only, and queues a client
 *   matching a topic through several filters once, at the highest QoS.
 * - wills (will-store.ts): aedes-persistence-redis#98 (PR #110, never merged): on CONNECT aedes
 *   calls `delWill(client)` before `client.brokerId` exists, so the upstream code deletes
 *   `will:undefined:<id>` and the will a client left on a node that died stays behind, to be
 *   published later while the client is back online. Our delWill removes the client's wills
 *   under every node id. The built-in will sweep of aedes runs on every node and can publish a
 *   will several times; `streamWill` returns nothing here and wills of dead nodes are published
 *   once, under a Redis lock, by cluster/wills.ts.
 * - Outgoing queues of persistent sessions (session-queue.ts, outgoing.ts): the whole queue is replayed on
 *   reconnect, in pages, and packet ids live in Redis per session, so a PUBACK clears its
 *   message whichever node handles it and a redelivery keeps its packet id and has DUP set.
 */
import type { Redis } from 'ioredis'
import type { Logger } from '../log.js'
import { CLIENTS_SET, clientSubsKey } from './keys.js'
import { OutgoingStore } from './outgoing.js'
import { SessionQueues, type QueuedPacket, type QueueSub, type SessionClient } from './session-queue.js'
import { Answered, asyncRedisPersistence, CallBackPersistence, deferredWrite, indexRetainedWrites, isDelWillOnConnect, scanRetainedInPages } from '../seam/index.js'
import { RetainedIndex } from './retained-index.js'
import { encode, withPackedProperties, withProperties } from './msgpack.js'
import { SubscriptionSync, decodeSubs, type StoredSub, type TrieSub } from './subscription-sync.js'
import { delAllWills, getWill, putWill, takeWill } from './will-store.js'

/** subscriptionsByTopic's and outgoingEnqueueCombi's answers when nothing matched (never changed: Aedes filters a $SYS topic's subscriptions into a new array) */
const NO_SUBS = new Answered<unknown[]>(Object.freeze([]) as unknown as unknown[])
const DONE = new Answered<undefined>(undefined)

interface ClientLike {
  id: string
  brokerId?: string
}

interface BrokerLike {
  id: string
  listenerCount?(event: string): number
}

export class CulexRedisPersistence {
  private readonly inner: InstanceType<ReturnType<typeof asyncRedisPersistence>>
  private readonly queues: SessionQueues
  /** the retained messages' topics, for wildcard SUBSCRIBEs (retained-index.ts) */
  readonly retained: RetainedIndex
  private readonly subs: SubscriptionSync
  private broker?: BrokerLike
  /** one store per SUBSCRIBE packet, whatever the number of filters (aedes#602) */
  private readonly inflightAdds = new WeakMap<object, Promise<void>>()

  constructor(
    private readonly db: Redis,
    sub: Redis,
    pub: Redis,
    _mq: unknown,
    log: Logger,
  ) {
    // a wildcard SUBSCRIBE's retained messages read RETAINED_SCAN_COUNT fields per step, not 10 (seam
    // P15), when the index of their topics cannot be used; every retained write changes the index
    // with the hash (P16, retained-index.ts)
    this.inner = new (asyncRedisPersistence())({ conn: indexRetainedWrites(scanRetainedInPages(db)) })
    this.retained = new RetainedIndex(db, log)
    this.queues = new SessionQueues(new OutgoingStore(db))
    this.subs = new SubscriptionSync(db, sub, pub, log)
  }

  async setup(broker: BrokerLike): Promise<void> {
    this.broker = broker
    this.retained.start()
    await this.subs.start(broker.id)
  }

  /** rebuild the subscription trie from Redis (after the Redis links were down) */
  resync(): Promise<void> {
    return this.subs.resync()
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
    await this.subs.added(client.id, subs)
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
    await this.subs.removed(client.id, topics)
  }

  async subscriptionsByClient(client: ClientLike): Promise<StoredSub[]> {
    return decodeSubs(await this.db.hgetallBuffer(clientSubsKey(client.id)))
  }

  async cleanSubscriptions(client: ClientLike): Promise<void> {
    const subs = await this.subscriptionsByClient(client)
    if (subs.length > 0) await this.removeSubscriptions(client, subs.map((s) => s.topic))
  }

  /**
   * no persistent session's subscription matches (the usual case, and always with clean sessions
   * only): answered synchronously, as seam/memory-offline.ts does on one node, so Aedes'
   * enqueueOffline (every QoS 1/2 PUBLISH) goes on to the emit at once instead of through two
   * promises and their microtasks per message (issue 15, node A of the 2-node `throughput`)
   */
  subscriptionsByTopic(topic: string): PromiseLike<TrieSub[]> {
    const subs = this.subs.match(topic)
    return subs.length === 0 ? (NO_SUBS as PromiseLike<TrieSub[]>) : Promise.resolve(subs)
  }

  async countOffline(): Promise<{ subsCount: number; clientsCount: number }> {
    const clientsCount = await this.db.scard(CLIENTS_SET)
    return { subsCount: this.subs.count, clientsCount }
  }

  getClientList(topic: string): Generator<string> {
    return this.subs.clientIds(topic)
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

  putWill(client: ClientLike, packet: Record<string, unknown>): Promise<void> {
    return putWill(this.db, this.broker!.id, client.id, packet)
  }

  getWill(client: ClientLike): Promise<unknown> {
    return getWill(this.db, this.broker!.id, client.id)
  }

  async delWill(client: ClientLike): Promise<unknown> {
    if (isDelWillOnConnect(client)) {
      // CONNECT: drop the wills this client id left on any node (aedes-persistence-redis#98)
      await delAllWills(this.db, client.id, this.broker!.id)
      return null
    }
    // not on CONNECT: Aedes set the node the client is on
    return takeWill(this.db, client.brokerId!, client.id)
  }

  /** the stock per-node sweep finds nothing; cluster/wills.ts publishes wills of dead nodes once */
  async *streamWill(): AsyncGenerator<never> {}

  // ---- outgoing queues of persistent sessions (session-queue.ts) ---------------

  outgoingEnqueue(sub: QueueSub, packet: QueuedPacket): Promise<void> {
    return this.queues.enqueue([sub], packet)
  }
  outgoingEnqueueCombi(subs: QueueSub[], packet: QueuedPacket): PromiseLike<void> {
    return subs.length === 0 ? (DONE as PromiseLike<void>) : this.queues.enqueue(subs, packet)
  }
  outgoingUpdate(client: SessionClient, packet: QueuedPacket): Promise<void> {
    return this.queues.update(client, packet)
  }
  outgoingClearMessageId(client: SessionClient, packet: { messageId?: number }): Promise<unknown> {
    // the acknowledged message is read only for Aedes' 'ack' event (lib/handlers/puback.js), which no part of Culex listens to
    return this.queues.acked(client, packet, (this.broker?.listenerCount?.('ack') ?? 1) > 0)
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
    return this.createRetainedStreamCombi([pattern])
  }
  createRetainedStreamCombi(patterns: string[]): AsyncIterable<unknown> {
    return withProperties(this.retained.match(patterns, () => this.inner.createRetainedStreamCombi(patterns)))
  }
  // an inbound QoS 2 message's steps (PUBLISH, PUBREL) come one per immediate: their commands
  // leave with the next that cannot wait or at the end of the turn (seam R2; aedes-persistence-redis
  // issues each before its first await, P18), not a write and a wake-up of Redis each
  incomingStorePacket(client: unknown, packet: unknown): Promise<void> {
    return deferredWrite(this.db, () => this.inner.incomingStorePacket(client, packet))
  }
  incomingGetPacket(client: unknown, packet: unknown): Promise<unknown> {
    return deferredWrite(this.db, () => this.inner.incomingGetPacket(client, packet))
  }
  incomingDelPacket(client: unknown, packet: unknown): Promise<void> {
    return deferredWrite(this.db, () => this.inner.incomingDelPacket(client, packet))
  }
  cleanIncoming(client: unknown): Promise<void> {
    return this.inner.cleanIncoming(client)
  }

  async destroy(): Promise<void> {
    this.retained.close()
    this.subs.stop()
  }
}

/** the object Aedes gets: the upstream callback/stream layer over our async core */
export function createClusterPersistence(parts: { db: Redis; sub: Redis; pub: Redis; mq: unknown; log: Logger }): {
  persistence: unknown
  core: CulexRedisPersistence
} {
  const core = new CulexRedisPersistence(parts.db, parts.sub, parts.pub, parts.mq, parts.log)
  return { persistence: new CallBackPersistence(() => core), core }
}
