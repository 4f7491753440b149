/**
 * One node (aedes-persistence 11 `MemoryPersistence`): a session's stored PUBRELs kept apart, so
 * every QoS 2 message past PUBREC gets its own PUBREL, live and on reconnect [MQTT-4.3.3-*]
 * [MQTT-4.4.0-1] (docs/internals.md row P8).
 *
 * The bug: lib/handlers/pubrec.js (aedes 2.0.0-beta.1, and aedes 1.x alike) stores a PUBREC's
 * answer with `persistence.outgoingUpdate(client, pubrel)`, a `{ cmd: 'pubrel', messageId }`
 * without brokerId / brokerCounter, and writes that same object after the promise. The memory
 * store's outgoingUpdate (asyncPersistence.js) walks the session's queue and takes the first entry
 * whose `brokerId` equals the packet's, and if its `brokerCounter` equals too sets its `messageId`;
 * only an entry of another brokerId is matched by `messageId` (and replaced by the packet). A stored
 * PUBREL has brokerId undefined, like the next PUBREL: the second PUBREC of a session (while the
 * first message still awaits its PUBCOMP) renames the first stored PUBREL to the second id and
 * leaves the second message's PUBLISH in the queue. Two PUBRECs in one read: both PUBRELs go out
 * with the second id (the first object is renamed before it is written). On reconnect the first
 * message gets no PUBREL, the second a PUBREL and its PUBLISH again. The Redis mode keeps its queue
 * by packet id (cluster/outgoing.ts PUBREC_LUA) and is not affected. No upstream issue found (the
 * current aedes-persistence asyncPersistence.js still matches this way);
 * upstream fix: give the PubRel the stored packet's brokerId/brokerCounter, or match a PUBREL by
 * messageId in outgoingUpdate (the brokerCounter search came with aedes-persistence#30).
 *
 * What it touches: the instance method `outgoingUpdate` of the memory core (memory-offline.ts
 * `memoryPersistenceCore`), which the CallBackPersistence Aedes holds calls at call time. A PUBREL
 * without a brokerId is stored as a copy with brokerId PUBREL_ID and brokerCounter = its packet
 * id: the walk matches it by `messageId` against the message's PUBLISH (another brokerId), and
 * passes over the other stored PUBRELs (same brokerId, another counter). A stored PUBREL comes
 * back with both fields (the replay's QoSPacket copies them; so do the ops API's copies) and is
 * matched by them, to itself. The written PUBREL is Aedes' own object, never stored.
 */
import type { Aedes } from 'aedes'
import { memoryPersistenceCore } from './memory-offline.js'

/** the brokerId of every stored PUBREL: no broker's id (Culex node ids are printable) */
export const PUBREL_ID = '\u0000culex-pubrel'

interface Pubrel {
  cmd?: string
  messageId?: number
  brokerId?: string
  brokerCounter?: number
}
interface UpdateCore {
  outgoingUpdate(client: unknown, packet: Pubrel): Promise<void>
}

/** installs on a broker using Aedes' memory persistence; true when installed */
export function keepStoredPubrelsApart(broker: Aedes): boolean {
  const core = memoryPersistenceCore(broker) as unknown as UpdateCore | undefined
  if (!core) return false
  const update = core.outgoingUpdate.bind(core)
  core.outgoingUpdate = (client, packet) =>
    packet.cmd === 'pubrel' && !packet.brokerId && packet.messageId !== undefined
      ? update(client, { ...packet, brokerId: PUBREL_ID, brokerCounter: packet.messageId })
      : update(client, packet)
  return true
}
