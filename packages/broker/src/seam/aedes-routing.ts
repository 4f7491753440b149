/**
 * The Aedes internals shared subscriptions (src/shared/) route through: the emitter every message
 * passes, the persistence calls for outgoing QoS 1/2 messages, and the `closed` flags. Contract
 * rows A13-A16 in test/seam/contract-routing.test.ts.
 */
import type { Aedes, Client } from 'aedes'
import type { Done } from './aedes-client.js'

interface Emitter {
  emit(message: unknown, cb: Done): unknown
  on(topic: string, fn: (message: unknown, cb: () => void) => void, done?: () => void): unknown
  removeListener(topic: string, fn: unknown, done?: () => void): unknown
}
/** the persistence calls Aedes makes for an outgoing QoS 1/2 message (lib/client.js deliverQoS, lib/handlers/puback.js, pubrec.js) */
export interface OutgoingAcks {
  outgoingUpdate(client: Client, packet: { cmd?: string; messageId?: number; brokerId?: string; brokerCounter?: number }): Promise<void>
  outgoingClearMessageId(client: Client, packet: { messageId?: number }): Promise<unknown>
}

/**
 * `listener` gets every message the broker's emitter carries (aedes.js emitPacket, and the cluster
 * bus' deliveries on this node), as a '#' subscription of broker.mq, from the next message on
 * (mqemitter adds it to its matcher at once); returns the remover, whose `done` runs once the
 * listener is off (mqemitter removes it in a later turn, and calls `done` right after, in the same
 * turn: a listener added again in `done` misses no message). No upstream issue: Aedes has no
 * public hook between the emitter and the subscriptions.
 */
export function onEveryMessage(broker: Aedes, listener: (message: unknown, cb: () => void) => void): (done?: () => void) => void {
  const mq = (broker as unknown as { mq: Emitter }).mq
  mq.on('#', listener)
  return (done) => mq.removeListener('#', listener, done)
}

/** emit a message through the broker's emitter as Aedes does (broker.mq.emit, looked up at call time: every gate applies) */
export function emitMessage(broker: Aedes, message: unknown, cb: Done): unknown {
  return (broker as unknown as { mq: Emitter }).mq.emit(message, cb)
}

/**
 * Wrap the two persistence calls Aedes looks up at call time on `broker.persistence` for outgoing
 * QoS 1/2 messages: outgoingUpdate (a PUBLISH goes out with its packet id, or a PUBREC came in) and
 * outgoingClearMessageId (PUBACK / PUBCOMP). No upstream issue: a store of Aedes' own.
 */
export function wrapOutgoingAcks(broker: Aedes, wrap: (calls: OutgoingAcks) => Partial<OutgoingAcks>): void {
  const p = (broker as unknown as { persistence: OutgoingAcks }).persistence
  const own: OutgoingAcks = { outgoingUpdate: p.outgoingUpdate.bind(p), outgoingClearMessageId: p.outgoingClearMessageId.bind(p) }
  Object.assign(p, wrap(own))
}

/**
 * A27: put `packet` into the session store of client `clientId` before it is delivered, as Aedes'
 * own Client#publish does (lib/client.js publish: `broker.persistence.outgoingEnqueue({ clientId },
 * packet)` for a client that is not clean, then `deliverQoS`). deliverQoS (the client's, row C13)
 * then calls `outgoingUpdate` (looked up at call time), which finds the entry by brokerId and
 * brokerCounter and records the packet id it goes out with; a PUBREC turns it into the PUBREL
 * (lib/handlers/pubrec.js), a PUBCOMP clears it, and lib/handlers/connect.js emptyQueue replays
 * what is left when the session returns. Reads `broker.persistence` (row A7); outgoingEnqueue is
 * the persistence interface's. No upstream issue: Client#publish does both steps at once, and
 * shared subscriptions need their record released in between (shared/delivery.ts handOff).
 */
export function keepInSession(broker: Aedes, clientId: string, packet: { qos: number }): Promise<void> {
  const p = (broker as unknown as { persistence: { outgoingEnqueue(sub: { clientId: string; qos: number }, packet: unknown): Promise<void> } }).persistence
  return p.outgoingEnqueue({ clientId, qos: packet.qos }, packet)
}

/**
 * A18 `observer` sees every subscription Aedes adds to or removes from the broker's emitter for a
 * client, by filter: lib/handlers/subscribe.js calls `broker.subscribe(filter, deliver, done)`
 * (also when a persistent session's subscriptions are restored, and unsubscribe + subscribe when a
 * filter is subscribed again), lib/handlers/unsubscribe.js `broker.unsubscribe(filter, deliver,
 * done)` (an UNSUBSCRIBE, and every subscription when the connection closes). Both are public
 * Aedes methods looked up on the broker at call time; Aedes' own internal listeners ($SYS) and
 * ours (onEveryMessage) use the emitter directly and are not seen. An add counts once Aedes' done
 * has no error (aedes.js subscribe refuses a filter of too many levels).
 * No upstream issue: Aedes has no event for subscriptions leaving with a closed connection.
 */
export function observeSubscriptions(broker: Aedes, observer: { added(filter: string): void; removed(filter: string): void }): void {
  type Sub = (topic: string, fn: unknown, done?: (err?: Error | null) => void) => void
  const b = broker as unknown as { subscribe: Sub; unsubscribe: Sub }
  const subscribe = b.subscribe.bind(broker)
  const unsubscribe = b.unsubscribe.bind(broker)
  b.subscribe = (topic, fn, done) =>
    subscribe(topic, fn, (err) => {
      if (!err) observer.added(topic)
      done?.(err)
    })
  b.unsubscribe = (topic, fn, done) => {
    observer.removed(topic)
    unsubscribe(topic, fn, done)
  }
}

/** true once broker.close() has started (aedes.js close sets `closed`) */
export function brokerClosing(broker: Aedes): boolean {
  return (broker as unknown as { closed: boolean }).closed === true
}

/** true once the Client's connection is closing (lib/client.js close sets `closed` before it unsubscribes a clean session) */
export function clientClosed(client: Client): boolean {
  return (client as unknown as { closed: boolean }).closed === true
}

export type { Done }
