/**
 * What waits for each client, and what happens when a client cannot keep up.
 *
 * Aedes hands each delivery to mqemitter, which waits for the subscriber's
 * socket to drain before it finishes the message; one subscriber that stops
 * reading holds emitter slots until they run out and every client on the
 * node stalls (for up to drainTimeout). Here delivery returns at once, and:
 *
 * - the bytes written to each client's socket and not yet taken by the kernel
 *   are summed node-wide in `counters.queuedBytes`: the publish gate
 *   (broker/backpressure.ts) stops reading publishers while it is over
 *   delivery_buffer_bytes, the cluster bus asks its peers to hold theirs;
 * - a QoS 0 message for a client that already has more than
 *   `qos0ClientBytes` waiting (it reads slower than the others) is dropped,
 *   so that one slow subscriber does not set the pace of every publisher
 *   (reason subscriber_behind); QoS 1/2 messages wait, holding the publishers;
 * - a client whose socket is backed up and took nothing for a second is
 *   stuck: its bytes leave the node-wide count (it cannot hold the others);
 *   once more than `maxQueued` messages wait for it, or at once when
 *   `maxQueuedBytes` bytes are buffered for its socket, QoS 0 messages for it
 *   are dropped (reason subscriber_stuck) and a QoS 1/2 subscriber is
 *   disconnected (a v5 one with DISCONNECT 0x97 when nothing is buffered for
 *   its socket, cutConnection): a persistent session keeps those messages in the session
 *   store and gets them on reconnect.
 * - at most `maxInflightOut` QoS 1/2 messages are sent to a client and not
 *   yet acknowledged (PUBACK, or PUBCOMP for QoS 2), as Mosquitto's
 *   max_inflight_messages and EMQX's max_inflight: further ones wait here,
 *   in order, and count as bytes waiting for the client (so they hold the
 *   publishers like a full socket does). Without it a subscriber that reads
 *   but acknowledges slowly has every delivery's packet kept for it until
 *   its PUBACK, without bound (a node reached 380 MB under a QoS 1 flood);
 *   a client that reads but acknowledges nothing for a second is stuck,
 *   as above. An MQTT 5 client's Receive Maximum lowers that window for it
 *   [MQTT-3.3.4-9] (aedes#829: Aedes does not honour it), also when
 *   max_outgoing_inflight is 0; a PUBREC with a reason code of 0x80 or more
 *   ends a QoS 2 flight too. (The session replay at CONNECT writes by itself,
 *   unwindowed, as for 3.1.1 clients.)
 */
import type { Client } from 'aedes'
import type { Logger } from '../log.js'
import type { DropReason, HotCounters } from '../ops/metrics.js'
import type { ClientFaults } from './client-faults.js'
import { DisconnectReason } from '../broker/disconnect.js'
import { deliveryOf, interceptPackets, onWrite, parserOf, protocolVersion, receiveMaximumOf, setDelivery, writePacket, type Deliver, type DeliveredPacket, type Done as Callback } from '../seam/index.js'

export interface DeliveryOptions {
  maxQueued: number
  maxQueuedBytes: number
  /** QoS 0 for a client with more than this waiting is dropped (qos0_client_buffer_bytes) */
  qos0ClientBytes: number
  /** QoS 1/2 messages sent to one client and not yet acknowledged (max_outgoing_inflight); 0 = no limit */
  maxInflightOut: number
  counters: HotCounters
  log: Logger
  faults: ClientFaults
}

/** how long a socket may stay backed up with max_queued messages waiting before its client counts as stuck */
const STUCK_MS = 1000
/**
 * how long a client whose socket takes bytes but whose in-flight window is full may send no
 * PUBACK/PUBCOMP before it counts as stuck: longer than STUCK_MS, since a client busy for a moment
 * (a GC pause, a starved machine) shows it in its acknowledgements long before the kernel's
 * socket buffer (megabytes) fills
 */
const ACK_STUCK_MS = 5000
/** waiting messages beyond max_queued * HARD_FACTOR count as stuck at once */
const HARD_FACTOR = 50

type Conn = NodeJS.ReadableStream &
  NodeJS.WritableStream & { writableLength: number; writableNeedDrain: boolean; writableCorked: number; uncork(): void; destroy(err?: Error): void; read(size?: number): unknown }

/** wraps the Client's two delivery functions (seam/aedes.ts setDelivery) and counts what its stream (client.conn) holds */
export function guardDelivery(client: Client, opts: DeliveryOptions): void {
  const { maxQueued, maxQueuedBytes, qos0ClientBytes, maxInflightOut, counters, log, faults } = opts
  const conn = client.conn as unknown as Conn
  const { deliver0, deliverQoS } = deliveryOf(client)
  let waiting = 0
  let cut = false
  // Node-wide totals count only clients that read: a closed client's share
  // leaves them at once, and so does a stuck one's (below), so that one
  // subscriber that reads nothing can neither drift them nor hold every publisher.
  let detached = false
  let counted = true
  /** bytes of this client in counters.queuedBytes */
  let accounted = 0
  let listed = false
  // the in-flight window: packet ids of QoS 1/2 PUBLISHes written and not yet acknowledged (seen as
  // they are written, so the session's replay and redeliveries count, each id once), deliveries
  // handed to Aedes and not yet written (`pending`), and those waiting for room (`held`)
  // made on the first QoS 1/2 PUBLISH written: an idle connection holds no Set (issue 15)
  let inflightIds: Set<number> | undefined
  let pending = 0
  const held: DeliveredPacket[] = []
  let heldBytes = 0
  /** acknowledgements since the stuck clock started, and when the last came (or the window filled) */
  let acks = 0
  let lastAckAt = 0
  const resync = (): void => {
    const want = counted && !detached ? conn.writableLength + heldBytes : 0
    counters.queuedBytes += want - accounted
    accounted = want
    if (want > 0 !== listed) {
      listed = want > 0
      if (listed) counters.backlogged.add(resync)
      else counters.backlogged.delete(resync)
    }
  }
  // A client is stuck when its socket backed up (a write returned false) and
  // the kernel took none of its bytes for STUCK_MS; then it leaves the
  // node-wide counts, and past `maxQueued` waiting messages its deliveries are
  // cut (full()). A client that reads, however slowly, is not: it holds the
  // publishers like any other (QoS 0 for it is dropped past qos0ClientBytes
  // instead). The clock is a timer, not a check at the next delivery: while
  // the publish gate holds the publishers, no delivery may come to notice it.
  let stuckTimer: NodeJS.Timeout | undefined
  /** writableLength when the clock started, and bytes written since */
  let mark = 0
  let added = 0
  let armedAt = 0
  const arm = (): void => {
    if (stuckTimer) return
    mark = conn.writableLength
    added = 0
    acks = 0
    armedAt = Date.now()
    stuckTimer = setTimeout(check, STUCK_MS)
  }
  const check = (): void => {
    stuckTimer = undefined
    if (!backedUp()) return
    // the kernel took some, or the client acknowledged some: still reading, look again later. A timer
    // that fires late means this node's own event loop was busy, too busy to see the socket drain:
    // that proves nothing either
    if (conn.writableLength < mark + added || acks > 0 || Date.now() - armedAt > STUCK_MS * 1.5) return arm()
    if (!conn.writableNeedDrain && Date.now() - lastAckAt < ACK_STUCK_MS) return arm()
    setCounted(false)
  }
  // Count each write at once (Aedes delivers in a later turn; the gate must see the bytes before
  // the next publish). The kernel taking them is seen at the next resync: after each delivery,
  // on drain, and by the gate while it holds. The stream is the one Aedes writes packets into.
  const write = conn.write
  conn.write = function countedWrite(this: Conn, chunk: { length: number }, ...rest: unknown[]): boolean {
    const ok = (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest)
    // backed up: if it does not drain within STUCK_MS the client stops counting (even when the
    // gate then holds every publisher and no further delivery comes to look at it)
    added += chunk.length
    if (!ok) arm()
    if (counted && !detached) {
      accounted += chunk.length
      counters.queuedBytes += chunk.length
      if (!listed) {
        listed = true
        counters.backlogged.add(resync)
      }
    }
    return ok
  } as Conn['write']
  const setCounted = (on: boolean): void => {
    if (on === counted || detached) return
    counted = on
    counters.queuedDeliveries += on ? waiting : -waiting
    resync()
  }
  // one function per client, not per message: Aedes calls it once per delivery when the write is done
  const written: Callback = () => {
    if (detached) return
    waiting--
    if (counted) counters.queuedDeliveries--
    resync()
  }
  const track = (): void => {
    if (detached) return
    waiting++
    if (counted) counters.queuedDeliveries++
  }
  conn.on('drain', () => {
    clearTimeout(stuckTimer)
    stuckTimer = undefined
    setCounted(true)
    resync()
  })
  conn.once('close', () => {
    clearTimeout(stuckTimer)
    // what waited for room in the window goes with the connection, as the socket's buffer does: a
    // persistent session has it in its session store (replayed at the next CONNECT)
    held.length = 0
    heldBytes = 0
    inflightIds?.clear()
    if (counted) counters.queuedDeliveries -= waiting
    detached = true
    waiting = 0
    resync()
  })
  /** its socket does not take more, or its in-flight window is full */
  const backedUp = (): boolean => conn.writableNeedDrain || held.length > 0
  // Aedes calls it when the PUBLISH is written, or at once when it sends nothing (forward refused,
  // or a delivery held during the session replay that the replay had sent: session-order.ts). One
  // that sent nothing frees its room without a PUBACK to come: release what waits for it here, or
  // with nothing in flight it would wait for ever [MQTT-4.3.2-2]
  const writtenQoS: Callback = (err) => {
    pending--
    written(err)
    if (held.length > 0) releaseHeld()
  }
  const send = (packet: DeliveredPacket): void => {
    pending++
    try {
      deliverQoS(packet, writtenQoS)
    } catch (err) {
      faults.fault(client, err, 'delivery')
    }
  }
  /** send what waits in `held` while the window has room (a send that completes at once re-enters: the loop goes on) */
  let releasing = false
  const releaseHeld = (): void => {
    if (releasing) return
    releasing = true
    let released = false
    while (held.length > 0 && !windowFull() && !detached) {
      const next = held.shift() as DeliveredPacket
      heldBytes -= sizeOf(next)
      released = true
      send(next)
    }
    releasing = false
    if (released) resync()
  }
  /** the window: max_outgoing_inflight, lowered to a v5 client's Receive Maximum [MQTT-3.3.4-9]; 0 = none */
  const windowOf = (): number => {
    const rm = receiveMaximumOf(client)
    if (rm === undefined || rm <= 0) return maxInflightOut
    return maxInflightOut > 0 ? Math.min(maxInflightOut, rm) : rm
  }
  const windowFull = (): boolean => {
    const w = windowOf()
    return w > 0 && (inflightIds?.size ?? 0) + pending >= w
  }
  onWrite(conn, (pk) => {
    if (pk.cmd === 'publish' && pk.qos && pk.messageId !== undefined) (inflightIds ??= new Set()).add(pk.messageId)
  })
  // PUBACK ends a QoS 1 message's flight, PUBCOMP a QoS 2 one's [MQTT-4.3.2-1] [MQTT-4.3.3-1], and for
  // MQTT 5 a PUBREC with a reason code of 0x80 or more [MQTT-3.3.4-9]
  interceptPackets<{ cmd: string; messageId?: number; reasonCode?: number }>(parserOf(client), (pk) => {
    if (pk.cmd !== 'puback' && pk.cmd !== 'pubcomp' && !(pk.cmd === 'pubrec' && (pk.reasonCode ?? 0) >= 0x80)) return undefined
    if (pk.messageId !== undefined) inflightIds?.delete(pk.messageId)
    acks++
    lastAckAt = Date.now()
    releaseHeld()
    return undefined
  })
  const full = (): boolean => {
    if (conn.writableLength >= maxQueuedBytes) return true
    if (waiting < maxQueued) return false
    // far beyond the limit: cut whatever the cause, memory comes first
    if (waiting >= maxQueued * HARD_FACTOR) return true
    // the socket drains and the window has room: the client reads, the node itself is behind (a burst)
    if (!backedUp()) return false
    if (!counted) return true // stuck for STUCK_MS already
    arm()
    return false
  }
  /**
   * Close the connection of a subscriber over its queue limit. A v5 client is told why first,
   * DISCONNECT 0x97 Quota exceeded [MQTT-3.14.0-1], only when its stream holds no bytes (the
   * messages waiting for it are in `held`, the in-flight window is what is full): the DISCONNECT
   * then goes to the kernel at once, behind nothing of this node's. With bytes in the stream it
   * would wait behind them (possibly megabytes the client does not read), and the point of the
   * cut is to free them now: it is closed without one, as a 3.1.1 client always is.
   */
  const cutConnection = (): void => {
    if (conn.writableLength === 0 && protocolVersion(client) === 5) {
      try {
        writePacket({ cmd: 'disconnect', reasonCode: DisconnectReason.quotaExceeded }, conn, { protocolVersion: 5 })
        // mqtt-packet corks the stream until the next tick: hand the bytes to the kernel before the close
        while (conn.writableCorked > 0) conn.uncork()
      } catch {
        // closed below either way
      }
    }
    conn.destroy()
  }
  const drop = (reason: DropReason, cb: Callback): void => {
    counters.dropped[reason]++
    setImmediate(cb)
  }

  const guarded0: Deliver = (packet, cb) => {
    if (full()) return drop('subscriber_stuck', cb)
    if (conn.writableLength >= qos0ClientBytes) return drop('subscriber_behind', cb)
    track()
    try {
      deliver0(packet, written)
    } catch (err) {
      // the emitter's loop serves every subscriber: this one's fault stays with it
      faults.fault(client, err, 'delivery')
    }
    setImmediate(cb)
  }
  const guardedQoS: Deliver = (packet, cb) => {
    if (packet.qos === 0) return guarded0(packet, cb)
    if (full()) {
      if (!cut) {
        cut = true
        log.warn({ client: client.id, waiting, max_queued: maxQueued }, 'slow consumer: disconnecting a QoS 1/2 subscriber over its queue limit')
        cutConnection()
      }
    } else {
      track()
      // the window is full (or others wait already): wait here, in order, counted as bytes waiting for
      // this client. Not before a persistent session's replay is done: broker/session-order.ts orders
      // those deliveries with the replay, which writes by itself (and fills the window)
      if (client.connected && (held.length > 0 || windowFull())) {
        if (held.length === 0) lastAckAt = Date.now()
        held.push(packet)
        heldBytes += sizeOf(packet)
        resync()
        arm()
      } else send(packet)
    }
    setImmediate(cb)
  }
  setDelivery(client, { deliver0: guarded0, deliverQoS: guardedQoS })
}

/** about the bytes a PUBLISH takes on the wire: header, topic, packet id, payload */
function sizeOf(packet: DeliveredPacket): number {
  const payload = packet.payload
  const payloadBytes = payload === undefined ? 0 : typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length
  return 9 + packet.topic.length + payloadBytes
}
