/**
 * Fixes aedes 1.2.0 has and aedes 2.0.0-beta.1 (the `mqttv5` line Culex runs on) lacks, put back
 * from outside (docs/internals.md rows U1-U4, contract tests in test/seam/contract-fixes.test.ts).
 * Each does what the 1.2.0 code does, with the same user-visible behaviour; the upstream fix is
 * that 1.2.0 code, ported to the 2.0 line (cited at each), and this file shrinks as it lands.
 *
 * They run first on each Client (CLIENT_INSTALL_ORDER stage `aedes-fixes`), before any other
 * concern reads the fields they replace.
 */
import type { Aedes, Client } from 'aedes'
import { installOnEachClient } from './aedes-install.js'
import { parserOf } from './aedes-client.js'
import { stopParsing } from './mqtt-parser.js'
import { interceptPacketsOfEachClient, onWriteOfEachClient } from './client-hooks.js'
import { disconnectV5 } from './aedes-v5-disconnect.js'
import { isDelWillOnConnect } from './persistence.js'
import { incomingNeverStored } from './memory-connect.js'

const RECEIVE_MAXIMUM_EXCEEDED = 0x93

interface Sub {
  topic: string
}
interface InPacket {
  cmd: string
  qos?: number
  messageId?: number
  subscriptions?: Sub[]
}
/** the fields of Aedes 2.0.0-beta.1 these fixes touch */
interface BrokerFields {
  clients: Record<string, Client>
  brokers: Record<string, number>
  persistence: { cleanIncoming?(client: Client): Promise<void> }
}
interface ClientFields {
  subscriptions: Record<string, unknown>
  duplicates: Record<string, number>
  clean: boolean
  /** 2.0: the CONNECT's Clean Start (Clean Session) flag; `clean` is "the session ends with the connection" */
  _cleanStart?: boolean
  conn: NodeJS.WritableStream
  _inboundInflight?: Set<number>
  emit(event: 'error', err: Error): boolean
}

// ---- U1 GHSA-52qw-whmv-87c5: maps keyed by names from the wire -----------------------------

/**
 * Aedes 1.2.0 made its maps keyed by client ids, broker ids and topic filters prototype-free
 * (GHSA-52qw-whmv-87c5); 2.0.0-beta.1 has plain objects again, and a CONNECT with client id
 * `constructor` ends the process in registerClient (`this.clients[client.id].disconnect is not a
 * function`). Upstream fix: `Object.create(null)` in the constructors of aedes.js (`clients`,
 * `brokers`) and lib/client.js (`subscriptions`, `duplicates`), as in 1.2.0.
 */
function nullPrototype<T>(obj: Record<string, T>): Record<string, T> {
  // an object literal whose prototype is then set to null stays in V8's fast mode, where
  // Object.create(null) starts as a dictionary (160 B more for each client's empty
  // `subscriptions`, issue 15); either way a key `__proto__` is an own property
  return Object.assign(Object.setPrototypeOf({}, null) as Record<string, T>, obj)
}

/**
 * lib/handlers/subscribe.js `_dedupe` (more than one filter in a SUBSCRIBE, and every session
 * restore) collects the filters in a plain object: a filter `__proto__` becomes the object's
 * prototype, and integer-like filters ("1", "7") move to the front, so the SUBACK's return codes
 * no longer follow the SUBSCRIBE's order [MQTT-3.9.3-1]. 1.2.0 used a Map (the upstream fix).
 * Here the SUBSCRIBE is deduplicated with a Map before Aedes sees it (the last of a repeated
 * filter wins, at the first one's place, as 1.2.0), and Aedes' own result is not stored: the
 * packet's `subscriptions` keeps ours (Aedes assigns it, then only reads it).
 */
function dedupeLikeAedes12(packet: InPacket): void {
  const subs = packet.subscriptions
  if (!subs || subs.length < 2) return
  const byTopic = new Map<string, Sub>()
  for (const sub of subs) byTopic.set(sub.topic, sub)
  const deduped = [...byTopic.values()]
  Object.defineProperty(packet, 'subscriptions', {
    configurable: true,
    enumerable: true,
    get: () => deduped,
    set: () => {},
  })
}

/**
 * A restored session (lib/handlers/connect.js restoreSubs) goes through the same `_dedupe`, from
 * the array persistence.subscriptionsByClient returned. Its filters are distinct (the store is
 * keyed by filter) and their order does not matter (no SUBACK), so only a `__proto__` filter needs
 * help: `_dedupe` stores it as the prototype of its plain object and then lists the prototype's
 * enumerable keys. The restored subscription is given as one whose only enumerable key leads back
 * to itself, so `_dedupe` lists it (last) instead of its fields.
 */
const SELF = '\u0000culex-restored-subscription'
function surviveDedupe<S extends Sub>(subs: S[]): S[] {
  if (subs.length < 2 || !subs.some((s) => s.topic === '__proto__')) return subs
  return subs.map((s) => {
    if (s.topic !== '__proto__') return s
    const props: PropertyDescriptorMap = {}
    for (const [k, v] of Object.entries(s)) props[k] = { value: v, enumerable: false, writable: true, configurable: true }
    const copy = Object.create(Object.getPrototypeOf(s) as object, props) as S
    Object.defineProperty(copy, SELF, { value: copy, enumerable: true })
    return copy
  })
}

// ---- U2 the inbound QoS 2 window (maxInflightInbound) ---------------------------------------

/**
 * aedes 1.2.0 `maxInflightInbound` (lib/handlers/publish.js, pubrel.js): a client may have at most
 * `limit` QoS 2 PUBLISHes awaiting PUBREL; one more closes its connection (MQTT 3.1.1 has nothing
 * to answer it with), so half-open QoS 2 handshakes cannot grow the node's inbound store. A
 * retransmission of a packet id in the window takes no second slot; the slot is freed when the
 * PUBCOMP (or, for MQTT 5, a failure PUBREC that ends the flow) is written. 2.0.0-beta.1 has no
 * such option; upstream fix: 1.2.0's guard and `_inboundInflight` set, ported. Differences from
 * 1.2.0 (not user-visible): a PUBLISH of an id still stored from an earlier connection takes a
 * slot too, and a slot is freed at PUBCOMP even when the store's delete failed.
 */
function inboundWindow(broker: Aedes, limit: number): void {
  // packet ids of QoS 2 PUBLISHes received and not yet completed, in 1.2.0's field `_inboundInflight`
  // (seam/aedes-client.ts clientFacts reads it for the admin API), made on the first one: an idle
  // connection holds no Set (issue 15)
  interceptPacketsOfEachClient<InPacket>(broker, 'aedes-fixes', (packet, client) => {
    if (packet.cmd === 'subscribe') dedupeLikeAedes12(packet)
    if (packet.cmd !== 'publish' || packet.qos !== 2 || packet.messageId === undefined) return undefined
    const c = client as unknown as ClientFields
    const window = (c._inboundInflight ??= new Set())
    if (limit > 0 && !window.has(packet.messageId) && window.size >= limit) {
      // as 1.2.0: the handler's error closes the client (lib/client.js nextBatch -> 'error')
      const err = new Error(`maxInflightInbound exceeded: ${limit} inbound QoS 2 messages already awaiting PUBREL`)
      stopParsing(parserOf(client), err)
      // MQTT 5 (not in 1.2.0): the client is told, DISCONNECT 0x93 Receive Maximum exceeded (§3.3.4)
      if (!disconnectV5(client, RECEIVE_MAXIMUM_EXCEEDED)) c.emit('error', err)
      return false
    }
    window.add(packet.messageId)
    return undefined
  }, ['subscribe', 'publish'])
  onWriteOfEachClient(broker, 'aedes-fixes', (p, client) => {
    if (p.messageId === undefined) return
    if (p.cmd === 'pubcomp' || (p.cmd === 'pubrec' && (p.reasonCode ?? 0) >= 0x80)) (client as unknown as ClientFields)._inboundInflight?.delete(p.messageId)
  }, ['pubcomp', 'pubrec'])
}

// ---- U3 cleanIncoming when a clean session ends ---------------------------------------------

/**
 * aedes 1.2.0 drops the inbound QoS 2 state of a client id (persistence.cleanIncoming) when a
 * clean session starts (lib/handlers/connect.js, after the takeover) and when it ends
 * (lib/client.js close) [MQTT-3.1.2-6]: otherwise a client that never sends PUBREL leaves its
 * entry forever, and a clean client that comes back finds its new QoS 2 PUBLISH taken for a
 * retransmission of the old one and dropped. 2.0.0-beta.1 does neither; here the public
 * 'client' / 'clientDisconnect' events do it (and 'sessionExpired', the 2.0 timer's end of a
 * session). Upstream fix: 1.2.0's two calls, at the same places.
 */
function cleanIncomingOnSessionEnd(broker: Aedes): void {
  const b = broker as unknown as BrokerFields
  const clean = (client: Client): void => {
    const p = b.persistence
    if (typeof p?.cleanIncoming !== 'function') return
    // one node whose store never held inbound QoS 2 state: nothing to delete (memory-connect.ts, row P12)
    if (incomingNeverStored(broker)) return
    Promise.resolve()
      .then(() => p.cleanIncoming!(client))
      .catch((err: unknown) => broker.emit('error', err as Error))
  }
  broker.on('client', (client) => {
    const c = client as unknown as ClientFields
    if (c._cleanStart ?? c.clean) clean(client)
  })
  broker.on('clientDisconnect', (client) => {
    const c = client as unknown as ClientFields
    // a connection that received no QoS 2 PUBLISH (U2 makes `_inboundInflight` at the first one,
    // before Aedes stores it) stored no inbound state, and its session's start deleted the id's
    // earlier state: nothing to delete (one Redis command less per clean close in a cluster)
    if (c.clean && c._inboundInflight !== undefined) clean(client)
  })
  ;(broker as unknown as NodeJS.EventEmitter).on('sessionExpired', (client: Client) => clean(client))
}

// ---- U4 persistence rejections the beta leaves unhandled ------------------------------------

/**
 * Two beta call sites chain `.finally()` on a persistence promise, and `.finally` passes a
 * rejection on to a promise nobody handles; a node that exits on unhandled rejections (Culex's
 * CLI does) is then ended by one client:
 * - lib/handlers/pubrel.js: `incomingDelPacket(...).finally(...)`. Two PUBRELs for one packet id
 *   back to back both find the packet, both delete it, and the second delete rejects with
 *   "no such packet" (memory and Redis stores alike).
 * - lib/handlers/connect.js storeWill: `delWill(client).finally(...)` on every CONNECT with a
 *   will; its delete rejects when the store cannot be reached.
 * aedes 1.2.0 ignored both errors (callback style: a PUBCOMP is sent, the new will stored), and so
 * does this: a packet already deleted is the outcome the PUBREL asked for, and the will written
 * next replaces the old one. Only these two calls change (delWill on CONNECT is the call without
 * client.brokerId, seam/persistence.ts isDelWillOnConnect); every other caller keeps its errors.
 * Upstream fix: `.then(done, done)`-style handling at both sites.
 */
function settleUnhandledPersistenceCalls(b: BrokerFields, onError: (err: Error, call: string) => void): void {
  const p = b.persistence as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
  const settle = (name: string, when: (args: unknown[]) => boolean): void => {
    const own = p[name]
    if (typeof own !== 'function') return
    p[name] = function (this: unknown, ...args: unknown[]) {
      const result = own.apply(this, args)
      if (!when(args)) return result
      return Promise.resolve(result).catch((err: unknown) => onError(err as Error, name))
    }
  }
  settle('incomingDelPacket', () => true)
  settle('delWill', (args) => isDelWillOnConnect((args[0] ?? {}) as { brokerId?: string }))
}

// ---- all of them ----------------------------------------------------------------------------

export interface AedesFixesOptions {
  /** U2: QoS 2 PUBLISHes awaiting PUBREL per client, 0 = no limit (config `max_inflight`) */
  maxInflightInbound: number
  /** U4: a persistence error the beta would have left unhandled, now settled (for a log line) */
  onSettledError?: (err: Error, call: string) => void
}

/** put back the aedes 1.2.0 fixes on `broker` (right after Aedes.createBroker, before it listens) */
export function restoreAedes12Fixes(broker: Aedes, opts: AedesFixesOptions): void {
  const b = broker as unknown as BrokerFields
  b.clients = nullPrototype(b.clients)
  b.brokers = nullPrototype(b.brokers)
  wrapSubscriptionsByClient(b, surviveDedupe)
  installOnEachClient(broker, 'aedes-fixes', (client) => {
    const c = client as unknown as ClientFields
    c.subscriptions = nullPrototype(c.subscriptions)
    c.duplicates = nullPrototype(c.duplicates)
  })
  inboundWindow(broker, opts.maxInflightInbound)
  cleanIncomingOnSessionEnd(broker)
  settleUnhandledPersistenceCalls(b, opts.onSettledError ?? (() => {}))
}

type SubscriptionsByClient = (client: { id: string }) => Promise<Sub[] | null>
/** persistence.subscriptionsByClient, looked up at call time by lib/handlers/connect.js fetchSubs */
function wrapSubscriptionsByClient(b: BrokerFields, map: (subs: Sub[]) => Sub[]): void {
  const p = b.persistence as unknown as { subscriptionsByClient: SubscriptionsByClient }
  const own = p.subscriptionsByClient.bind(p)
  p.subscriptionsByClient = async (client) => {
    const subs = await own(client)
    return Array.isArray(subs) ? map(subs) : subs
  }
}
