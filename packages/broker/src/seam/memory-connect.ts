/**
 * One node (Aedes' in-memory persistence, aedes-persistence 11 `MemoryPersistence`): the store
 * calls of every CONNECT and close that find nothing while the store never held anything of their
 * kind (docs/internals.md row P12; issue 15, connects/s).
 *
 * Aedes 2.0.0-beta.1 asks the store on every CONNECT of a clean session for
 * `cleanSubscriptions(client)` (lib/handlers/connect.js fetchSubs) and `delWill(client)`
 * (storeWill), and aedes-fixes.ts U3 asks for `cleanIncoming(client)` at the start and at the end
 * of every clean session; each an async call on the memory core that finds nothing to delete for a
 * client that never subscribed with a persistent session, never had a will and never sent a QoS 2
 * PUBLISH: ~10 promises per connection, and the P7 recount (memory-offline.ts) after every
 * cleanSubscriptions.
 *
 * What it touches: the memory core's (P7) instance methods `addSubscriptions` (the only way into
 * its `#subscriptions`: lib/handlers/subscribe.js, a session that outlives its connection),
 * `putWill` (the only way into `#wills`) and `incomingStorePacket` (the only way into
 * `#incoming`), each wrapped to note its first call for good; while never called:
 * - `cleanSubscriptions` (the core's, wrapped outermost: install after P7) answers NOTHING, one
 *   shared resolved promise (Aedes `.then`s it: its callback stays in a microtask, as before);
 * - `delWill` of the CallBackPersistence Aedes holds (wrapped outermost, after U4's) answers
 *   NOTHING (the will it would have deleted and answered is undefined);
 * - `incomingNeverStored(broker)` is true: U3 (aedes-fixes.ts) makes no call.
 * Once any of them was called, its calls are the store's own again.
 */
import type { Aedes } from 'aedes'
import { persistenceOf } from './aedes-broker.js'
import { memoryPersistenceCore } from './memory-offline.js'

interface Core {
  addSubscriptions(client: unknown, subs: unknown[]): Promise<void>
  cleanSubscriptions(client: unknown): Promise<void>
  putWill(client: unknown, packet: unknown): Promise<void>
  incomingStorePacket(client: unknown, packet: unknown): Promise<void>
}

/** what the store answers for a delete that finds nothing (undefined) */
const NOTHING: Promise<undefined> = Promise.resolve(undefined)

/** brokers of this process whose memory store never held inbound QoS 2 state */
const noIncoming = new WeakSet<object>()

/** true while the memory store of `broker` never held inbound QoS 2 state (cleanIncoming would delete nothing) */
export function incomingNeverStored(broker: Aedes): boolean {
  return noIncoming.has(broker)
}

/** installs it on a broker using Aedes' memory persistence (after P7 and U4); true when installed */
export function skipEmptyConnectCleanups(broker: Aedes): boolean {
  const core = memoryPersistenceCore(broker) as unknown as Core | undefined
  if (!core) return false
  let subscribed = false
  let willed = false
  const add = core.addSubscriptions.bind(core)
  core.addSubscriptions = (client, subs) => {
    subscribed = true
    return add(client, subs)
  }
  const clean = core.cleanSubscriptions.bind(core)
  core.cleanSubscriptions = (client) => (subscribed ? clean(client) : NOTHING)
  const putWill = core.putWill.bind(core)
  core.putWill = (client, packet) => {
    willed = true
    return putWill(client, packet)
  }
  const persistence = persistenceOf(broker) as { delWill(client: unknown, cb?: unknown): Promise<unknown> }
  const delWill = persistence.delWill.bind(persistence)
  // the callback form (no caller of Aedes 2 uses it) stays the store's
  persistence.delWill = (client, cb) => (willed || cb !== undefined ? delWill(client, cb) : NOTHING)
  noIncoming.add(broker)
  const store = core.incomingStorePacket.bind(core)
  core.incomingStorePacket = (client, packet) => {
    noIncoming.delete(broker)
    return store(client, packet)
  }
  return true
}
