/**
 * The seam to Aedes 2.0.0-beta.1's broker instance: what docs/Aedes.md does not document
 * (docs/internals.md, rows A2-A11; A1, broker.handle, is aedes-install.ts). Everything else calls
 * these typed functions; test/seam/contract.test.ts fails, naming the internal, when an upgrade
 * changes one.
 */
import type { Aedes, Client } from 'aedes'
import { forgetWill, type DeliveredPacket, type Done } from './aedes-client.js'

/** Aedes' broker instance (aedes.js): the undocumented fields the seam touches */
interface BrokerInternals {
  mq: { emit(message: unknown, cb: Done): unknown; close(cb: () => void): unknown }
  publish(packet: unknown, client: unknown, done?: Done): void
  close(cb?: () => void): void
  clients: Record<string, Client>
  persistence: unknown
  counter: number
  preConnect: PreConnect
  authenticate: Authenticate
  registerClient(client: Client): void
  authorizeForward(client: Client, packet: DeliveredPacket): unknown
}
const brokerOf = (b: Aedes): BrokerInternals => b as unknown as BrokerInternals

/** every Client of the broker by id (aedes.js `clients`) */
export function clientsOf(broker: Aedes): Readonly<Record<string, Client>> {
  return brokerOf(broker).clients
}

/** the persistence Aedes uses (aedes.js `persistence`, set by listen) */
export function persistenceOf(broker: Aedes): unknown {
  return brokerOf(broker).persistence
}

/**
 * Every message Aedes publishes passes `broker.mq.emit` (aedes.js emitPacket): `gate` takes
 * the emitter's own emit and returns the one Aedes calls (no upstream issue found; the
 * publish gate of broker/backpressure.ts needs it).
 */
export function gateEmits(broker: Aedes, gate: (emit: (message: unknown, cb: Done) => unknown) => (message: unknown, cb: Done) => unknown): void {
  const mq = brokerOf(broker).mq
  mq.emit = gate(mq.emit.bind(mq))
}

/**
 * Observe every publish: broker.publish is the entry of each (lib/handlers/publish.js calls
 * client.broker.publish; wills and $SYS too); `done` fires once its series (storeRetained,
 * enqueueOffline, emitPacket, published) is done or failed: `started` when it starts,
 * `finished` once when it is.
 */
export function observePublishes(broker: Aedes, seen: { started(): void; finished(err?: Error | null): void }): void {
  const b = brokerOf(broker)
  const publish = b.publish.bind(b)
  b.publish = (packet, client, done) => {
    if (typeof client === 'function') {
      done = client as Done
      client = null
    }
    seen.started()
    // one closure per publish; `finished` once even if the series calls back twice
    let settled = false
    publish(packet, client, (err) => {
      if (!settled) {
        settled = true
        seen.finished(err)
      }
      done?.(err)
    })
  }
}

/**
 * broker.close() closes its clients and then `broker.mq.close(cb)` (aedes.js close) while
 * publishes they started may still wait for persistence: `hold` may delay that (no upstream
 * issue found; upstream could wait for its own publishes in flight)
 */
export function holdEmitterClose(broker: Aedes, hold: (close: () => void) => void): void {
  const mq = brokerOf(broker).mq
  const close = mq.close.bind(mq)
  mq.close = (cb) => {
    hold(() => close(cb))
    return mq
  }
}

/**
 * broker.close() without publishing the wills of the clients it closes (aedes.js close closes
 * each client, and lib/client.js close publishes its will): in a cluster they stay stored for
 * the node that finds this one gone (aedes#754, aedes#756 discuss wills around restarts).
 */
export function keepWillsOnClose(broker: Aedes): void {
  const b = brokerOf(broker)
  const close = b.close.bind(b)
  b.close = (cb) => {
    for (const c of Object.values(b.clients)) forgetWill(c)
    return close(cb)
  }
}

/**
 * raise broker.counter (aedes.js: the brokerCounter of the next message, from 0 at start) to at
 * least `min`: a restarted node must not reuse the counters of messages still queued (no upstream
 * issue found)
 */
export function raiseMessageCounter(broker: Aedes, min: number): void {
  const b = brokerOf(broker)
  b.counter = Math.max(b.counter, min)
}

type PreConnect = (client: Client, packet: { clientId: string; clean: boolean }, cb: (err: Error | null, ok: boolean) => void) => void

/** wrap broker.preConnect, the instance property lib/handlers/connect.js calls before authenticate and CONNACK */
export function wrapPreConnect(broker: Aedes, wrap: (preConnect: PreConnect) => PreConnect): void {
  const b = brokerOf(broker)
  b.preConnect = wrap(b.preConnect)
}

type Authenticate = (client: Client, username: string | undefined, password: Buffer | undefined, done: (err: Error | null, ok: boolean) => void) => void

/**
 * wrap broker.authenticate, the instance property lib/handlers/connect.js calls (as
 * `client.broker.authenticate`) after preConnect and before the CONNACK: an error with a
 * `returnCode` of 2-5 is answered with that CONNACK (MQTT 5: its reason code, 3 -> 0x88)
 */
export function wrapAuthenticate(broker: Aedes, wrap: (authenticate: Authenticate) => Authenticate): void {
  const b = brokerOf(broker)
  b.authenticate = wrap(b.authenticate.bind(broker))
}

/**
 * A29 a client whose connection closed while its CONNECT waited for the store (aedes 2
 * lib/handlers/connect.js: fetchSubs' `cleanSubscriptions` / `subscriptionsByClient`, storeWill's
 * `delWill` / `putWill`, before `registerClient`; only authenticate's callback checks
 * `client.closed`) is not registered once the store answers: Aedes put it in `broker.clients` and
 * counted it connected for good (its close had already run, so nothing took it out), and in a
 * cluster its client id stayed owned by this node. Seen with a Redis that was frozen or down for
 * longer than the client waited (test/cluster/connect-redis-down.test.ts). The connect series then
 * stops at the CONNACK's write ('connection closed'). Upstream could check `client.closed` in
 * registerClient (none found).
 */
export function skipClosedRegistrations(broker: Aedes): void {
  const b = brokerOf(broker)
  const register = b.registerClient.bind(broker)
  b.registerClient = (client) => {
    if ((client as { closed?: boolean }).closed) return
    register(client)
  }
}

/**
 * wrap broker.authorizeForward, looked up at call time by every delivery and by the session
 * replay (lib/handlers/connect.js emptyQueue)
 */
export function wrapAuthorizeForward(broker: Aedes, wrap: (forward: BrokerInternals['authorizeForward']) => BrokerInternals['authorizeForward']): void {
  const b = brokerOf(broker)
  const forward = b.authorizeForward.bind(broker)
  b.authorizeForward = wrap(forward)
}

/** mqemitter's matcher (a Qlobber): the methods cacheTopicMatches wraps */
interface Matcher {
  match(topic: string, ...rest: unknown[]): unknown[]
  add(...args: unknown[]): unknown
  remove(...args: unknown[]): unknown
  clear?(...args: unknown[]): unknown
}
const MATCH_CACHE = Symbol('culex.matchCache')
/** topics whose matches are kept at most; a full cache is emptied (a node with many distinct topics gains nothing, loses a Map lookup) */
const MATCH_CACHE_TOPICS = 1024

/**
 * mqemitter matches every message's topic against the subscriptions' trie (`broker.mq._matcher`,
 * a Qlobber: `match` splits the topic and walks the trie, 4-5% of a node's busy CPU under
 * `throughput`). Here `match` answers from a Map per topic, emptied by every `add`, `remove` or
 * `clear` of the matcher, so an answer is always what the trie gives at that moment (the arrays
 * are only read: mqemitter's fastparallel, the cluster bus, the $SYS check). docs/internals.md row
 * E3; upstream mqemitter could keep such a cache (none found).
 */
export function cacheTopicMatches(broker: Aedes): void {
  const mq = (broker as unknown as { mq?: { _matcher?: Matcher & { [MATCH_CACHE]?: true } } }).mq
  const m = mq?._matcher
  if (!m || typeof m.match !== 'function' || m[MATCH_CACHE]) return
  const cache = new Map<string, unknown[]>()
  const { match, add, remove, clear } = m
  m.match = function cachedMatch(this: Matcher, topic: string, ...rest: unknown[]): unknown[] {
    if (rest.length > 0) return match.call(this, topic, ...rest)
    let found = cache.get(topic)
    if (found === undefined) {
      if (cache.size >= MATCH_CACHE_TOPICS) cache.clear()
      found = match.call(this, topic)
      cache.set(topic, found)
    }
    return found
  }
  m.add = function (this: Matcher, ...args: unknown[]): unknown {
    cache.clear()
    return add.apply(this, args)
  }
  m.remove = function (this: Matcher, ...args: unknown[]): unknown {
    cache.clear()
    return remove.apply(this, args)
  }
  if (clear) {
    m.clear = function (this: Matcher, ...args: unknown[]): unknown {
      cache.clear()
      return clear.apply(this, args)
    }
  }
  m[MATCH_CACHE] = true
}
