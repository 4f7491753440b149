/**
 * The seam to Aedes 2.0.0-beta.1: the only module that touches what docs/Aedes.md and docs/Client.md
 * do not document (docs/internals.md, rows A* and C*). Everything else calls these typed
 * functions; test/seam/contract.test.ts fails, naming the internal, when an upgrade changes one.
 *
 * Per-client fixes are installers: broker.handle is wrapped once (installOnEachClient) and runs
 * them in CLIENT_INSTALL_ORDER right after Aedes built the Client, before it reads a byte
 * (lib/client.js only registers its 'readable' listener in the constructor).
 */
import type { Duplex } from 'node:stream'
import type { Aedes, Client } from 'aedes'
import type { PacketParser } from './mqtt-parser.js'

export type Done = (err?: Error | null) => void
/** a message handed to a subscriber (an aedes-packet Packet) */
export interface DeliveredPacket {
  topic: string
  qos: number
  payload?: { length: number } | string
  brokerId?: string | null
  brokerCounter?: number | string
}
export type Deliver = (packet: DeliveredPacket, cb: Done) => void
/** a Client's two per-connection delivery functions: every subscription of the client calls one */
export interface Delivery {
  deliver0: Deliver
  deliverQoS: Deliver
}

/** Aedes' Client (lib/client.js): the undocumented fields the seam touches */
interface ClientInternals extends Delivery {
  id: string | null
  clean: boolean
  connected: boolean
  connackSent: boolean
  duplicates: Record<string, number>
  subscriptions: Record<string, GrantedSubscription>
  will: unknown
  _will: { topic?: string } | null
  _nextId: number
  _parser: PacketParser
  _parsingBatch: number
  _paused?: boolean
  _nextBatch(): void
  listeners(event: string): Array<(...args: unknown[]) => void>
  removeListener(event: string, fn: (...args: unknown[]) => void): void
  once(event: string, fn: (...args: unknown[]) => void): void
}
/** Aedes' broker instance (aedes.js): the undocumented fields the seam touches */
interface BrokerInternals {
  handle(stream: Duplex, req?: unknown): Client
  mq: { emit(message: unknown, cb: Done): unknown; close(cb: () => void): unknown }
  publish(packet: unknown, client: unknown, done?: Done): void
  close(cb?: () => void): void
  clients: Record<string, Client>
  persistence: unknown
  counter: number
  preConnect: PreConnect
  authorizeForward(client: Client, packet: DeliveredPacket): unknown
}
const internals = (c: Client): ClientInternals => c as unknown as ClientInternals
const brokerOf = (b: Aedes): BrokerInternals => b as unknown as BrokerInternals

// ---- broker.handle, wrapped once ---------------------------------------------------------

/**
 * The per-client installers, in the order they run on each new Client. A delivery wrapper
 * installed later wraps the earlier ones, so it runs first on each delivery:
 * -. hooks (seam/client-hooks.ts): the parser and the writes routed through the hooks every
 *    concern registers once per broker, called with the Client (ordered by these stages too)
 * 0. aedes-fixes (seam/aedes-fixes.ts): aedes 1.2.0 fixes the 2.0 beta lacks (prototype-free maps,
 *    the inbound QoS 2 window)
 * 1. puback-hold (broker/puback-after-publish.ts): the connection's PUBACKs are held
 * 2. dedupe (cluster/dedupe.ts): the stock duplicate filter is switched off
 * 3. session-order (broker/session-order.ts): live deliveries wait for the session replay
 * 4. granted-qos (broker/conformance-qos.ts): the QoS of a delivery capped at the granted one
 * 5. conformance (broker/conformance.ts): parser checks of the 3.1.1 statements, acks in flight
 * 6. mqtt5 (broker/mqtt5.ts): what v5 clients are told and granted (CONNACK, SUBACK, $share)
 * 7. limits (limits/guard.ts): parser guards, slow-consumer limits (outermost), bounded reads
 */
export const CLIENT_INSTALL_ORDER = ['hooks', 'aedes-fixes', 'puback-hold', 'dedupe', 'session-order', 'granted-qos', 'conformance', 'mqtt5', 'limits'] as const
export type InstallStage = (typeof CLIENT_INSTALL_ORDER)[number]
export type ClientInstaller = (client: Client, stream: Duplex) => void

interface Installers {
  byStage: Map<InstallStage, ClientInstaller>
  /** byStage in CLIENT_INSTALL_ORDER */
  ordered: ClientInstaller[]
}
const installers = new WeakMap<Aedes, Installers>()

/**
 * run `installer` on every Client `broker` makes from now on, at its place in CLIENT_INSTALL_ORDER
 * (upstream has no per-client hook before CONNECT: none found; a `client` option of Aedes would do)
 */
export function installOnEachClient(broker: Aedes, stage: InstallStage, installer: ClientInstaller): void {
  let reg = installers.get(broker)
  if (!reg) {
    const r: Installers = { byStage: new Map(), ordered: [] }
    installers.set(broker, (reg = r))
    const b = brokerOf(broker)
    // Aedes internals: broker.handle is an instance property (aedes.js constructor) that every
    // listener calls at call time; it returns the Client it made
    const handle = b.handle
    b.handle = function culexHandle(this: unknown, stream, req) {
      const client = handle.call(this, stream, req)
      for (let i = 0; i < r.ordered.length; i++) r.ordered[i]!(client, stream)
      return client
    }
  }
  if (reg.byStage.has(stage)) throw new Error(`client installer ${stage} is installed already`)
  reg.byStage.set(stage, installer)
  reg.ordered = CLIENT_INSTALL_ORDER.filter((s) => reg.byStage.has(s)).map((s) => reg.byStage.get(s)!)
}

// ---- the Client --------------------------------------------------------------------------

/**
 * Aedes' duplicate filter (lib/client.js dedupe) reads client.duplicates[brokerId]; replacing it
 * switches the monotonic filter off (aedes#955, aedes#994; aedes PR #972 proposes the exact one).
 */
export function replaceDuplicateFilter(client: Client, duplicates: Record<string, number>): void {
  internals(client).duplicates = duplicates
}

/** the Client's delivery functions, read at call time */
export function deliveryOf(client: Client): Delivery {
  const c = internals(client)
  return { deliver0: c.deliver0, deliverQoS: c.deliverQoS }
}

/**
 * Replace the Client's per-connection delivery functions (lib/client.js). Subscriptions capture
 * them when they are made (lib/handlers/subscribe.js), so this runs in an installer, and
 * deliverQoS calls `that.deliver0` for QoS 0 at call time.
 */
export function setDelivery(client: Client, delivery: Partial<Delivery>): void {
  const c = internals(client)
  if (delivery.deliver0) c.deliver0 = delivery.deliver0
  if (delivery.deliverQoS) c.deliverQoS = delivery.deliverQoS
}

/** a filter's subscription as Aedes holds it (lib/handlers/subscribe.js Subscription) */
export interface GrantedSubscription {
  qos: number
  /** MQTT 5 Subscription Identifier, if the SUBSCRIBE had one (Aedes 2: `si`) */
  si?: number
}

/** the filters the client holds, with their granted QoS and Subscription Identifier (lib/client.js client.subscriptions) */
export function grantedSubscriptions(client: Client): Record<string, GrantedSubscription> {
  return internals(client).subscriptions
}

/** the will of a client being authenticated: Aedes keeps it in `_will` until CONNACK */
export function pendingWill(client: Client): { topic?: string } | null {
  return internals(client)._will ?? null
}

/** the client leaves without its will being published (both fields: `_will` before CONNACK, `will` after) */
export function forgetWill(client: Client): void {
  const c = internals(client)
  c.will = null
  c._will = null
}

/** the next packet id Aedes gives an outgoing QoS 1/2 message of this client (lib/client.js `_nextId`) */
export function nextPacketId(client: Client): number | undefined {
  return internals(client)._nextId
}
export function setNextPacketId(client: Client, id: number): void {
  internals(client)._nextId = id
}

/** has Aedes written a CONNACK to this client */
export function connackSent(client: Client): boolean {
  return internals(client).connackSent
}

/** the mqtt-packet parser of the connection */
export function parserOf(client: Client): PacketParser {
  return internals(client)._parser
}

/** Aedes' read loop (lib/client.js nextBatch): packets of the last read are still being handled, or the client is paused */
export function readLoopBusy(client: Client): boolean {
  const c = internals(client)
  return c._parsingBatch !== 0 || !!c._paused
}
/** Aedes' read loop: read and parse what is buffered (as on 'readable') */
export function readNextBatch(client: Client): void {
  internals(client)._nextBatch()
}

/**
 * Aedes handles the packets that arrived before CONNACK in a 'connected' listener of the
 * Client (lib/client.js dequeue): `wrap` replaces it (e.g. with a try/catch).
 */
export function wrapQueuedPacketHandling(client: Client, wrap: (listener: (...args: unknown[]) => void) => (...args: unknown[]) => void): void {
  const c = internals(client)
  for (const listener of c.listeners('connected')) {
    c.removeListener('connected', listener)
    // the listener runs with the Client as `this`, as EventEmitter calls it
    c.once('connected', wrap(listener.bind(c)))
  }
}

/**
 * What the admin API shows of a connected client (lib/client.js fields Aedes keeps but does not
 * type: `_keepaliveInterval` in ms, set by lib/handlers/connect.js as 1.5 x the keepalive in use
 * + 1; `version`; `_inboundInflight`, QoS 2 messages awaiting PUBREL: aedes 1.2.0's field, which
 * on 2.0.0-beta.1 aedes-fixes.ts puts back; no upstream issue found)
 */
export function clientFacts(client: Client): { keepaliveS: number; inboundInflight: number; version: number | null } {
  const c = client as unknown as { _keepaliveInterval?: number; _inboundInflight?: { size: number }; version?: number | null }
  const ms = c._keepaliveInterval ?? -1
  return { keepaliveS: ms > 0 ? Math.round((ms - 1) / 1500) : 0, inboundInflight: c._inboundInflight?.size ?? 0, version: c.version ?? null }
}

// ---- the broker --------------------------------------------------------------------------

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
 * enqueueOffline, emitPacket, published) is done or failed. `started` returns the callback
 * to run when it is.
 */
export function observePublishes(broker: Aedes, started: () => Done): void {
  const b = brokerOf(broker)
  const publish = b.publish.bind(b)
  b.publish = (packet, client, done) => {
    if (typeof client === 'function') {
      done = client as Done
      client = null
    }
    const finished = started()
    publish(packet, client, (err) => {
      finished(err)
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

/**
 * wrap broker.authorizeForward, looked up at call time by every delivery and by the session
 * replay (lib/handlers/connect.js emptyQueue)
 */
export function wrapAuthorizeForward(broker: Aedes, wrap: (forward: BrokerInternals['authorizeForward']) => BrokerInternals['authorizeForward']): void {
  const b = brokerOf(broker)
  const forward = b.authorizeForward.bind(broker)
  b.authorizeForward = wrap(forward)
}
