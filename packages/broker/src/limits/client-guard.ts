/**
 * The delivery guard of one client (limits/delivery.ts says what it does and why): one object per
 * connection, on its stream, whose methods the stream's write, its 'drain' and 'close' listeners,
 * the stuck timer and the broker's packet and write hooks call. No closure per client but its two
 * delivery functions (issue 15, docs/performance.md). What the client's connection holds and the
 * stuck clock are its base, ClientBacklog (client-backlog.ts); here: the in-flight window, the
 * deliveries and the slow-consumer cut.
 */
import type { DropReason } from '../ops/metrics.js'
import { DisconnectReason } from '../broker/disconnect.js'
import { continueDelivery, later, protocolVersion, receiveMaximumOf, writePacket, type DeliveredPacket, type Done as Callback } from '../seam/index.js'
import { ClientBacklog } from './client-backlog.js'

/** the guard of a connection, on its stream */
export const GUARD = Symbol('culex.delivery')
export type GuardedConn = ClientBacklog['conn'] & { [GUARD]: ClientGuard }

export class ClientGuard extends ClientBacklog {
  declare readonly conn: GuardedConn
  private cut = false
  // the in-flight window: packet ids of QoS 1/2 PUBLISHes written and not yet acknowledged (seen as
  // they are written, so the session's replay and redeliveries count, each id once), deliveries
  // handed to Aedes and not yet written (`pending`), and those waiting for room (`held`);
  // the Set and the array are made on first use: an idle connection holds neither (issue 15)
  private inflightIds: Set<number> | undefined
  private pending = 0
  /**
   * a delivery written within its send() (seam/aedes-deliver.ts writes a clean client's deliveries
   * in the turn, row C13): in flight as its id, so no longer pending; its completion, still to
   * come, then ends none (`writtenEarly` completions to come)
   */
  private sending: 0 | 1 | 2 = 0
  private writtenEarly = 0
  private held: DeliveredPacket[] | undefined
  private releasing = false
  /** Aedes calls it when a delivery is written (one function per client, made at its first delivery, not per message) */
  private writtenCb: Callback | undefined
  /** the same for a QoS 1/2 delivery: Aedes calls it when the PUBLISH is written, or at once when it sends nothing (forward refused) */
  private writtenQoSCb: Callback | undefined
  /**
   * the session replay at CONNECT waiting for room in the window (seam/aedes-replay.ts: one replayed
   * PUBLISH at a time, the rest of the replay behind it); called when a PUBACK/PUBCOMP frees a slot
   */
  private replayWaiter: (() => void) | undefined

  override closed(): void {
    // a replay waiting for room stops there: what it did not send stays in the session store
    this.replayWaiter = undefined
    // what waited for room in the window goes with the connection, as the socket's buffer does: a
    // persistent session has it in its session store (replayed at the next CONNECT)
    if (this.held) this.held.length = 0
    this.heldBytes = 0
    this.inflightIds?.clear()
    super.closed()
  }

  /** its socket does not take more, or its in-flight window is full */
  protected override backedUp(): boolean {
    return this.conn.writableNeedDrain || (this.held?.length ?? 0) > 0 || this.replayWaiter !== undefined
  }

  protected override heldCount(): number {
    return this.held?.length ?? 0
  }

  private send(packet: DeliveredPacket): void {
    this.pending++
    try {
      // Aedes calls it when the PUBLISH is written, or at once when it sends nothing (forward refused,
      // or a delivery held during the session replay that the replay had sent: session-order.ts). One
      // that sent nothing frees its room without a PUBACK to come: release what waits for it here, or
      // with nothing in flight it would wait for ever [MQTT-4.3.2-2] (node/resume-window.test.ts)
      const written = (this.writtenQoSCb ??= () => {
        if (this.writtenEarly > 0) this.writtenEarly--
        else this.pending--
        this.written()
        if (this.held && this.held.length > 0) this.releaseHeld()
      })
      this.sending = 1
      continueDelivery(this.client, 'limits', 'deliverQoS', packet, written)
      // sent() sets 2 when the PUBLISH went out within continueDelivery
      if ((this.sending as number) === 2) {
        this.pending--
        this.writtenEarly++
      }
      this.sending = 0
    } catch (err) {
      this.sending = 0
      this.opts.faults.fault(this.client, err, 'delivery')
    }
  }

  /** the window: max_outgoing_inflight, lowered to a v5 client's Receive Maximum [MQTT-3.3.4-9]; 0 = none */
  private windowOf(): number {
    const { maxInflightOut } = this.opts
    const rm = receiveMaximumOf(this.client)
    if (rm === undefined || rm <= 0) return maxInflightOut
    return maxInflightOut > 0 ? Math.min(maxInflightOut, rm) : rm
  }

  /** the in-flight window is full, counting `waiting` deliveries about to be sent as in it */
  private windowFull(waiting = this.pending): boolean {
    const w = this.windowOf()
    return w > 0 && (this.inflightIds?.size ?? 0) + waiting >= w
  }

  /**
   * The session replay at CONNECT asks before each QoS 1/2 PUBLISH it sends to a v5 client (seam/
   * aedes-replay.ts): undefined = send it now; else a promise resolved when a PUBACK/PUBCOMP frees a
   * slot, never if the connection closes first (the rest of the queue stays in the session store).
   * The replayed PUBLISHes count in the window as they are written (sent()), like live ones
   * [MQTT-3.3.4-9] [MQTT-4.9.0-2]; only what is in flight counts here: live deliveries meanwhile
   * (`pending`) wait for the replay to end (broker/session-order.ts), not for room. A 3.1.1
   * client's replay is not windowed (as before: max_outgoing_inflight applies to its live deliveries).
   */
  replayRoom(): Promise<void> | undefined {
    if (protocolVersion(this.client) !== 5 || !this.windowFull(0) || this.detached) return undefined
    // the stuck clock, as for deliveries held in the window: a client that acknowledges nothing
    // for ACK_STUCK_MS (client-backlog.ts) stops counting and is cut once max_queued wait for it
    this.lastAckAt = Date.now()
    this.arm()
    return new Promise<void>((resolve) => {
      this.replayWaiter = resolve
    })
  }

  /** a QoS 1/2 PUBLISH with `messageId` was written */
  sent(messageId: number): void {
    ;(this.inflightIds ??= new Set()).add(messageId)
    if (this.sending === 1) this.sending = 2
  }

  /** a PUBACK, PUBCOMP or failure PUBREC came: its flight is over, held deliveries may go */
  acked(messageId: number | undefined): void {
    if (messageId !== undefined) this.inflightIds?.delete(messageId)
    this.acks++
    this.lastAckAt = Date.now()
    if (this.replayWaiter !== undefined && !this.windowFull(0)) {
      const go = this.replayWaiter
      this.replayWaiter = undefined
      go()
    }
    this.releaseHeld()
  }

  /** send what waits in `held` while the window has room (a send that completes at once re-enters: the loop goes on) */
  private releaseHeld(): void {
    if (this.releasing) return
    this.releasing = true
    const held = this.held
    let released = false
    while (held && held.length > 0 && !this.windowFull() && !this.detached) {
      const next = held.shift() as DeliveredPacket
      this.heldBytes -= sizeOf(next)
      released = true
      this.send(next)
    }
    this.releasing = false
    if (released) this.resync()
  }

  /**
   * Close the connection of a subscriber over its queue limit. A v5 client is told why first,
   * DISCONNECT 0x97 Quota exceeded [MQTT-3.14.0-1], only when its stream holds no bytes (the
   * messages waiting for it are in `held`, the in-flight window is what is full): the DISCONNECT
   * then goes to the kernel at once, behind nothing of this node's. With bytes in the stream it
   * would wait behind them (possibly megabytes the client does not read), and the point of the
   * cut is to free them now: it is closed without one, as a 3.1.1 client always is.
   */
  private cutConnection(): void {
    const conn = this.conn
    if (conn.writableLength === 0 && protocolVersion(this.client) === 5) {
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

  private drop(reason: DropReason, cb: Callback): void {
    this.opts.counters.dropped[reason]++
    later(cb)
  }

  guarded0(packet: DeliveredPacket, cb: Callback): void {
    if (this.full()) return this.drop('subscriber_stuck', cb)
    if (this.conn.writableLength >= this.opts.qos0ClientBytes) return this.drop('subscriber_behind', cb)
    this.track()
    try {
      continueDelivery(this.client, 'limits', 'deliver0', packet, (this.writtenCb ??= () => this.written()))
    } catch (err) {
      // the emitter's loop serves every subscriber: this one's fault stays with it
      this.opts.faults.fault(this.client, err, 'delivery')
    }
    later(cb)
  }

  guardedQoS(packet: DeliveredPacket, cb: Callback): void {
    if (packet.qos === 0) return this.guarded0(packet, cb)
    if (this.full()) {
      if (!this.cut) {
        this.cut = true
        this.opts.log.warn({ client: this.client.id, waiting: this.waiting, max_queued: this.opts.maxQueued }, 'slow consumer: disconnecting a QoS 1/2 subscriber over its queue limit')
        this.cutConnection()
      }
    } else {
      this.track()
      // the window is full (or others wait already): wait here, in order, counted as bytes waiting for
      // this client. Not before a persistent session's replay is done: broker/session-order.ts holds
      // those deliveries until the replay ends (the replay waits for room itself: replayRoom)
      if (this.client.connected && ((this.held?.length ?? 0) > 0 || this.windowFull())) {
        const held = (this.held ??= [])
        if (held.length === 0) this.lastAckAt = Date.now()
        held.push(packet)
        this.heldBytes += sizeOf(packet)
        this.resync()
        this.arm()
      } else this.send(packet)
    }
    later(cb)
  }
}

/** about the bytes a PUBLISH takes on the wire: header, topic, packet id, payload */
function sizeOf(packet: DeliveredPacket): number {
  const payload = packet.payload
  const payloadBytes = payload === undefined ? 0 : typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length
  return 9 + packet.topic.length + payloadBytes
}
