/**
 * One node (aedes-persistence 11 `MemoryPersistence`): a persistent session's outgoing PUBLISH
 * never takes a packet id still in flight in its session store, an unacknowledged QoS 1/2
 * PUBLISH or a stored PUBREL awaiting PUBCOMP [MQTT-2.3.1-2] [MQTT-2.2.1-4] (docs/internals.md
 * row P10; test/node/packet-id-wrap.test.ts).
 *
 * The bug: Aedes numbers outgoing QoS 1/2 PUBLISHes from a per-Client counter (lib/qos-packet.js
 * QoSPacket, inlined in seam/aedes-deliver.ts sendQoS: `client._nextId`, from 1 again after
 * 65535; a new Client, so every reconnect, starts at a random id) without looking at what is in
 * flight. Once the counter comes round to an id still in flight, or a reconnected session's
 * random start lands below one, the new PUBLISH takes it, and the memory store cannot tell the
 * two apart: its outgoingUpdate replaces a stored PUBREL (another brokerId, seam P8) of that id
 * with the new PUBLISH, and outgoingClearMessageId removes the first entry of the id, so the
 * PUBACK of the new message clears the old one. Seen (2026-12-01, the test above before this
 * seam): QoS 1, the held message lost (not resent on reconnect), the acknowledged one resent;
 * QoS 2, the held message's PUBREL lost and the completed one delivered again on reconnect.
 * Cluster mode picks a free id in its store (cluster/outgoing.ts SENT_LUA, cluster/session-queue.ts).
 * No upstream issue found: aedes 2.0.0-beta.1 and 1.x alike take `_nextId` blindly.
 *
 * What it touches: the instance methods `outgoingUpdate` and `outgoingClearMessageId` of the
 * memory core (memory-offline.ts `memoryPersistenceCore`), which the CallBackPersistence Aedes
 * holds calls at call time with the packet Aedes then writes (lib/client.js deliverQoS,
 * lib/handlers/connect.js emptyQueue, aedes-deliver.ts sendQoS: the QoSPacket, written after the
 * promise resolves), and the Client's counter `_nextId` (aedes-client.ts). Per session (client
 * id, as the store keys its queue) it keeps the ids its queue holds and whose message (the
 * PUBLISH's brokerCounter: one node, one brokerId) has each; the store only gets ids through
 * outgoingUpdate and loses them through outgoingClearMessageId (it never drops a queue whole).
 * A PUBLISH given an id another message holds gets the next free one instead, set on the packet
 * before the store records it, so that is the id written; after each PUBLISH the counter is moved
 * past the ids in use. A PUBREL (the PUBREC's answer, P8) keeps its message's id. An id stays
 * known until its entry is acknowledged: at worst one too many is skipped, never one reused.
 * Cost: a few Map operations per stored QoS 1/2 delivery and per acknowledgement of a persistent
 * session.
 */
import type { Aedes, Client } from 'aedes'
import { memoryPersistenceCore } from './memory-offline.js'
import { nextPacketId, setNextPacketId } from './aedes-client.js'
import { PUBREL_ID } from './memory-pubrel.js'

const MAX_ID = 65535
const after = (id: number): number => (id >= MAX_ID ? 1 : id + 1)

interface Stored {
  cmd?: string
  messageId?: number
  brokerId?: string
  brokerCounter?: number
}
interface IdCore {
  outgoingUpdate(client: { id: string }, packet: Stored): Promise<void>
  outgoingClearMessageId(client: { id: string }, packet: Stored): Promise<Stored | undefined>
}

/** one session's ids in flight: packet id -> the brokerCounter of its message, and back */
class InFlight {
  readonly byId = new Map<number, number>()
  readonly byMessage = new Map<number, number>()
  take(id: number, message: number): void {
    const had = this.byMessage.get(message)
    if (had !== undefined && had !== id && this.byId.get(had) === message) this.byId.delete(had)
    this.byId.set(id, message)
    this.byMessage.set(message, id)
  }
  release(id: number): void {
    const message = this.byId.get(id)
    if (message === undefined) return
    this.byId.delete(id)
    if (this.byMessage.get(message) === id) this.byMessage.delete(message)
  }
  /** `id` if no other message holds it, else the next id nobody holds (undefined: all 65,535 in flight) */
  free(id: number, message: number): number | undefined {
    for (let n = 0, at = id; n < MAX_ID; n++, at = after(at)) {
      const holder = this.byId.get(at)
      if (holder === undefined || holder === message) return at
    }
    return undefined
  }
}

/** installs on a broker using Aedes' memory persistence; true when installed */
export function skipPacketIdsInFlight(broker: Aedes): boolean {
  const core = memoryPersistenceCore(broker) as unknown as IdCore | undefined
  if (!core) return false
  const update = core.outgoingUpdate.bind(core)
  const clear = core.outgoingClearMessageId.bind(core)
  const sessions = new Map<string, InFlight>()
  const drop = (clientId: string, s: InFlight): void => {
    if (s.byId.size === 0 && sessions.get(clientId) === s) sessions.delete(clientId)
  }

  core.outgoingUpdate = (client, packet) => {
    const id = packet.messageId
    const message = packet.brokerCounter
    // a PUBREL (P8's copy, or a stored one given back) keeps its message's id; a packet
    // without id or message passes as it is (the store answers it as before)
    if (packet.cmd !== 'publish' || id === undefined || typeof message !== 'number' || packet.brokerId === PUBREL_ID) return update(client, packet)
    let s = sessions.get(client.id)
    if (!s) sessions.set(client.id, (s = new InFlight()))
    const chosen = s.free(id, message)
    if (chosen === undefined) return update(client, packet)
    // [MQTT-2.3.1-2] [MQTT-2.2.1-4]: another message of the session holds `id`, this one goes
    // out with the next free id (the packet Aedes writes once this resolves)
    if (chosen !== id) packet.messageId = chosen
    s.take(chosen, message)
    // the counter past the ids in use (for the deliveries to come, stored or not)
    const next = nextPacketId(client as unknown as Client)
    if (next !== undefined) {
      let at = chosen === id ? next : after(chosen)
      for (let n = 0; n < MAX_ID && s.byId.has(at); n++) at = after(at)
      if (at !== next) setNextPacketId(client as unknown as Client, at)
    }
    const held = s
    return update(client, packet).catch((err: unknown) => {
      // not in the store (acknowledged meanwhile): it holds no id
      if (held.byId.get(chosen) === message) held.release(chosen)
      drop(client.id, held)
      throw err
    })
  }

  core.outgoingClearMessageId = (client, packet) => {
    const s = packet.messageId === undefined ? undefined : sessions.get(client.id)
    if (!s) return clear(client, packet)
    return clear(client, packet).then((entry) => {
      // the store removed the first entry with this id
      if (entry) {
        s.release(packet.messageId!)
        drop(client.id, s)
      }
      return entry
    })
  }
  return true
}
