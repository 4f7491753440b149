/**
 * Aedes' outgoing* persistence calls for persistent sessions in cluster mode, over the Redis
 * store of outgoing.ts: what Aedes hands in and expects back (aedes-packet Packets, the Client's
 * packet id counter), and the replay's bookkeeping so a replayed message costs no extra round
 * trip when Aedes reports it sent.
 */
import type { Client } from 'aedes'
import type { OutgoingStore } from './outgoing.js'
import { StoredPacket, nextPacketId, packetKey, setNextPacketId } from '../seam/index.js'
import { decodePacket, encodePacket } from './msgpack.js'


/** what Aedes queues and sends: an aedes-packet Packet */
export interface QueuedPacket {
  cmd?: string
  brokerId?: string | null
  brokerCounter?: number | string
  messageId?: number
  qos?: number
  dup?: boolean
  retain?: boolean
  /** MQTT 5 properties, kept byte-exact in the queue (msgpack.ts) */
  properties?: Record<string, unknown>
  /** aedes-packet's absolute expiry (ms since the epoch): Aedes drops the message past it [MQTT-3.3.2-5] */
  messageExpiry?: number
}
export interface QueueSub {
  clientId: string
  qos: number
}
/** Aedes' Client as far as the outgoing queue reads it (its packet id counter through the seam) */
export interface SessionClient {
  id: string
  clean?: boolean
}
const asClient = (c: SessionClient): Client => c as unknown as Client

const NOTHING: Promise<undefined> = Promise.resolve(undefined)
const NO_ENTRIES: AsyncIterable<never> = { [Symbol.asyncIterator]: () => ({ next: async () => ({ done: true, value: undefined as never }) }) }

/** the queue entry of a message: its body's key, as aedes-persistence-redis names it */
const entryKey = packetKey

export class SessionQueues {
  /** per client being replayed: packet id -> queue entry the replay recorded already */
  private readonly replayed = new WeakMap<object, Map<number, string>>()
  /** per client: the generation its connection got from the session (outgoing.ts SENT_LUA) */
  private readonly generation = new WeakMap<object, number>()

  constructor(private readonly store: OutgoingStore) {}

  async enqueue(subs: QueueSub[], packet: QueuedPacket): Promise<void> {
    if (!subs || subs.length === 0) return
    await this.store.enqueue(subs, entryKey(packet), packet.qos ?? 0, encodePacket(new StoredPacket(packet)))
  }

  /** Aedes' outgoingUpdate: a PUBLISH goes out (deliverQoS, emptyQueue) or a PUBREC came in */
  async update(client: SessionClient, packet: QueuedPacket): Promise<void> {
    const replayed = this.replayed.get(client)
    const messageId = packet.messageId!
    if (packet.cmd === 'pubrel') {
      // the replay resends a PUBREL: nothing changes
      if (replayed?.delete(messageId)) return
      await this.store.pubrec(client.id, messageId)
      return
    }
    if (!packet.brokerId) return
    const key = entryKey(packet)
    // the replay recorded the id of what it yields already
    if (replayed?.get(messageId) === key) {
      replayed.delete(messageId)
      return
    }
    const id = await this.store.sent(client.id, key, messageId, this.generation.get(client) ?? 0)
    if (id !== messageId) {
      // the QoSPacket built in lib/client.js deliverQoS is written after this resolves; another
      // in-flight message of the session has this id, so this one goes out with a free one
      // [MQTT-2.3.1-2], and the client's packet id counter moves past it
      packet.messageId = id
      setNextPacketId(asClient(client), (id % 65535) + 1)
    }
  }

  /**
   * Aedes' outgoingClearMessageId: PUBACK or PUBCOMP; resolves to the acknowledged message when
   * `withMessage` (someone listens to Aedes' 'ack' event, the only reader of it), else to nothing
   */
  acked(client: SessionClient, packet: { messageId?: number }, withMessage = true): Promise<unknown> {
    // Aedes calls this on every PUBACK/PUBCOMP, clean sessions included, although it stores
    // nothing for them (deliverQoS skips outgoingUpdate when client.clean): skip the round trip.
    if (client.clean === true || packet.messageId === undefined) return NOTHING
    if (!withMessage) return this.store.acked(client.id, packet.messageId, false).then(() => undefined)
    return this.ackedMessage(client.id, packet.messageId)
  }

  private async ackedMessage(clientId: string, messageId: number): Promise<unknown> {
    const body = await this.store.acked(clientId, messageId, true)
    if (!body || body.length === 0) return undefined
    const orig = decodePacket<QueuedPacket>(body)
    orig.messageId = messageId
    return orig
  }

  /**
   * Aedes' outgoingStream: the session's whole queue, in order, page by page (emptyQueue in
   * lib/handlers/connect.js reads it on CONNECT). Each PUBLISH comes with the packet id it goes
   * out with: its earlier one and DUP=1 if it was sent before [MQTT-4.4.0-1] [MQTT-3.3.1-1],
   * else a free one; RETAIN 0, it matches an established subscription [MQTT-3.3.1-9]; at most
   * the QoS the subscription granted [MQTT-3.8.4-6].
   */
  replay(client: SessionClient): AsyncIterable<unknown> {
    // a clean session starts with no queue [MQTT-3.1.2-6] (cleanSubscriptions dropped it)
    if (client.clean !== false) return NO_ENTRIES
    const replayed = new Map<number, string>()
    this.replayed.set(client, replayed)
    // the replay takes ids from the client's packet id counter and hands it back past the ones it used
    const entries = this.store.replay(
      client.id,
      nextPacketId(asClient(client)) ?? 1,
      (next) => setNextPacketId(asClient(client), next),
      (gen) => this.generation.set(client, gen),
    )
    return (async function* () {
      for await (const e of entries) {
        replayed.set(e.messageId, e.key)
        if (e.body.length === 0) {
          yield { cmd: 'pubrel', messageId: e.messageId }
          continue
        }
        const p = decodePacket<QueuedPacket>(e.body)
        p.messageId = e.messageId
        p.dup = e.sent
        p.retain = false
        if (e.qos !== undefined && e.qos < (p.qos ?? 0)) p.qos = e.qos
        yield p
      }
    })()
  }

  /** the session ended */
  drop(clientId: string): Promise<number> {
    return this.store.drop(clientId)
  }
}
