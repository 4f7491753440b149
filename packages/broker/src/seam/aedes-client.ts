/**
 * The seam to Aedes 2.0.0-beta.1's Client: what docs/Client.md does not document (docs/internals.md,
 * rows C*). Everything else calls these typed functions; test/seam/contract.test.ts fails, naming
 * the internal, when an upgrade changes one.
 */
import type { Aedes, Client } from 'aedes'
import type { PacketParser } from './mqtt-parser.js'
import { CLIENT_INSTALL_ORDER, type InstallStage } from './aedes-install.js'

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
const internals = (c: Client): ClientInternals => c as unknown as ClientInternals

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
  /** MQTT 5 subscription options (Aedes 2): Retain Handling, Retain As Published, No Local */
  rh?: number
  rap?: boolean
  nl?: boolean
}

/** the filters the client holds, with their granted QoS and Subscription Identifier (lib/client.js client.subscriptions) */
export function grantedSubscriptions(client: Client): Record<string, GrantedSubscription> {
  return internals(client).subscriptions
}

/** the will of a client being authenticated: Aedes keeps it in `_will` until CONNACK */
export function pendingWill(client: Client): { topic?: string } | null {
  return internals(client)._will ?? null
}

/** the will of a connected client: Aedes moves `_will` to `will` in its connect step storeWill, and publishes `will` if the connection is lost */
export function connectedWill(client: Client): Record<string, unknown> | null {
  return (internals(client).will as Record<string, unknown> | null | undefined) ?? null
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

type QueuedListener = (...args: unknown[]) => void
/**
 * Aedes handles the packets that arrived before CONNACK in a 'connected' listener of the
 * Client (lib/client.js dequeue): `wrap` replaces it (e.g. with a try/catch).
 */
export function wrapQueuedPacketHandling(client: Client, wrap: (listener: QueuedListener) => QueuedListener): void {
  const c = internals(client)
  for (const listener of c.listeners('connected')) {
    c.removeListener('connected', listener)
    // the listener runs with the Client as `this`, as EventEmitter calls it
    c.once('connected', wrap(listener.bind(c)))
  }
}

type QueuedWrap = (client: Client, listener: QueuedListener) => QueuedListener
/** per broker: the wraps of wrapQueuedPacketHandlingOfEachClient, in CLIENT_INSTALL_ORDER (an earlier stage's wraps Aedes' listener first) */
const queuedWraps = new WeakMap<Aedes, Array<{ stage: number; wrap: QueuedWrap }>>()

/**
 * wrapQueuedPacketHandling for every Client of `broker`, done only where the listener has packets
 * to handle: at 'clientReady' (lib/handlers/connect.js emits it right before the Client's
 * 'connected'), for a Client whose parser queued packets (`_queue`, lib/client.js enqueue); the
 * listener of a Client with none handles nothing. Issue 15: a closure, a bound function and a
 * once() wrapper per wrap and connection were made for every CONNECT. The wraps of an earlier
 * stage of CLIENT_INSTALL_ORDER wrap Aedes' listener first, as the per-client installers did.
 */
export function wrapQueuedPacketHandlingOfEachClient(broker: Aedes, stage: InstallStage, wrap: QueuedWrap): void {
  let wraps = queuedWraps.get(broker)
  if (!wraps) {
    const all: Array<{ stage: number; wrap: QueuedWrap }> = (wraps = [])
    queuedWraps.set(broker, all)
    broker.on('clientReady', (client: Client) => {
      const queue = (internals(client)._parser as unknown as { _queue?: unknown[] | null })._queue
      if (!queue || queue.length === 0) return
      for (const w of all) wrapQueuedPacketHandling(client, (listener) => w.wrap(client, listener))
    })
  }
  const s = CLIENT_INSTALL_ORDER.indexOf(stage)
  let i = 0
  while (i < wraps.length && wraps[i]!.stage <= s) i++
  wraps.splice(i, 0, { stage: s, wrap })
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
