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
 *   disconnected: a persistent session keeps those messages in the session
 *   store and gets them on reconnect.
 */
import type { Client } from 'aedes'
import type { Logger } from '../log.js'
import type { DropReason, HotCounters } from '../ops/metrics.js'
import type { ClientFaults } from './client-faults.js'
import { deliveryOf, setDelivery, type Deliver, type Done as Callback } from '../seam/index.js'

export interface DeliveryOptions {
  maxQueued: number
  maxQueuedBytes: number
  /** QoS 0 for a client with more than this waiting is dropped (qos0_client_buffer_bytes) */
  qos0ClientBytes: number
  counters: HotCounters
  log: Logger
  faults: ClientFaults
}

/** how long a socket may stay backed up with max_queued messages waiting before its client counts as stuck */
const STUCK_MS = 1000
/** waiting messages beyond max_queued * HARD_FACTOR count as stuck at once */
const HARD_FACTOR = 50

type Conn = NodeJS.ReadableStream &
  NodeJS.WritableStream & { writableLength: number; writableNeedDrain: boolean; destroy(err?: Error): void; read(size?: number): unknown }

/** wraps the Client's two delivery functions (seam/aedes.ts setDelivery) and counts what its stream (client.conn) holds */
export function guardDelivery(client: Client, opts: DeliveryOptions): void {
  const { maxQueued, maxQueuedBytes, qos0ClientBytes, counters, log, faults } = opts
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
  const resync = (): void => {
    const want = counted && !detached ? conn.writableLength : 0
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
    armedAt = Date.now()
    stuckTimer = setTimeout(check, STUCK_MS)
  }
  const check = (): void => {
    stuckTimer = undefined
    if (!conn.writableNeedDrain) return
    // the kernel took some: still reading, look again later. A timer that fires late means this
    // node's own event loop was busy, too busy to see the socket drain: that proves nothing either
    if (conn.writableLength < mark + added || Date.now() - armedAt > STUCK_MS * 1.5) return arm()
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
    if (counted) counters.queuedDeliveries -= waiting
    detached = true
    waiting = 0
    resync()
  })
  const full = (): boolean => {
    if (conn.writableLength >= maxQueuedBytes) return true
    if (waiting < maxQueued) return false
    // far beyond the limit: cut whatever the cause, memory comes first
    if (waiting >= maxQueued * HARD_FACTOR) return true
    // the socket drains: the client reads, the node itself is behind (a burst)
    if (!conn.writableNeedDrain) return false
    if (!counted) return true // stuck for STUCK_MS already
    arm()
    return false
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
        conn.destroy()
      }
    } else {
      track()
      try {
        deliverQoS(packet, written)
      } catch (err) {
        faults.fault(client, err, 'delivery')
      }
    }
    setImmediate(cb)
  }
  setDelivery(client, { deliver0: guarded0, deliverQoS: guardedQoS })
}
