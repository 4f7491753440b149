/**
 * Inbound QoS 2 exactly once: a PUBLISH received again with the same packet id before the first
 * copy is stored is not published again [MQTT-4.3.3-2] [MQTT-4.3.3-3] (docs/internals.md row A25).
 *
 * The bug: aedes 2.0.0-beta.1 lib/handlers/publish.js (enqueuePublish, QoS 2) asks
 * `persistence.incomingGetPacket(client, packet)` whether the packet id is stored; when it rejects
 * (not found) it calls `persistence.incomingStorePacket(client, packet)`, then `broker.publish`, then
 * writes PUBREC. lib/client.js hands every PUBLISH of one read to the handler at once (the parser
 * emits them in one `parse`), so a PUBLISH and its DUP 1 copy in one TCP read both ask before
 * either is stored, both are told "not found" and both are published (memory and Redis alike).
 * No upstream issue found; upstream fix: make the check and the store one step per packet id.
 *
 * What it touches: the instance methods `incomingGetPacket` and `incomingStorePacket` of
 * `broker.persistence` (looked up at call time by publish.js and lib/handlers/pubrel.js), wrapped.
 * A PUBLISH's lookup (`cmd` 'publish': only publish.js asks with one, and only for QoS 2; PUBREL's
 * lookup passes through) marks its client id and packet id as being checked until the store that
 * follows a "not found" has settled, or at once when found; a second lookup of the same pair
 * meanwhile waits for that, then asks the store, which then has the first copy: it is a duplicate.
 * Keyed by client id, so a resend on a new connection of the session on this node waits too. QoS 0
 * and 1 never reach these methods. Cost per QoS 2 PUBLISH: one string key, one Map set and delete.
 */
import type { Aedes } from 'aedes'
import { persistenceOf } from './aedes-broker.js'

interface Incoming {
  cmd?: string
  messageId?: number
}
interface IncomingStore {
  incomingGetPacket(client: { id: string }, packet: Incoming): Promise<unknown>
  incomingStorePacket(client: { id: string }, packet: Incoming): Promise<void>
}
interface Checking {
  done: Promise<void>
  settle(): void
}

const keyOf = (client: { id: string }, packet: Incoming): string => `${client.id}\u0000${packet.messageId}`

/** wraps the broker's incoming store so one QoS 2 packet id is checked and stored at a time per session */
export function checkQoS2OncePerPacketId(broker: Aedes): void {
  const store = persistenceOf(broker) as IncomingStore
  const get = store.incomingGetPacket.bind(store)
  const put = store.incomingStorePacket.bind(store)
  const checking = new Map<string, Checking>()
  const release = (key: string): void => {
    const c = checking.get(key)
    if (!c) return
    checking.delete(key)
    c.settle()
  }
  store.incomingGetPacket = (client, packet) => {
    // PUBREL's lookup (lib/handlers/pubrel.js) is not followed by a store
    if (packet.cmd !== 'publish') return get(client, packet)
    const key = keyOf(client, packet)
    const before = checking.get(key)
    // [MQTT-4.3.3-2] a copy of a packet being checked or stored: asked once that is done
    if (before) return before.done.then(() => get(client, packet))
    let settle!: () => void
    const done = new Promise<void>((resolve) => (settle = resolve))
    checking.set(key, { done, settle })
    // found: the mark goes now; not found (rejected): publish.js stores it next, the mark goes once that settles
    return get(client, packet).then((found) => {
      release(key)
      return found
    })
  }
  store.incomingStorePacket = (client, packet) => {
    const key = keyOf(client, packet)
    return put(client, packet).finally(() => release(key))
  }
}
