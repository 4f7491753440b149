/**
 * What one client's connection holds of the node's delivery buffer, and whether the client is
 * stuck (limits/delivery.ts says what it does and why): the bytes and deliveries waiting for it,
 * counted node-wide in `counters` while it reads, and the stuck clock. The base of the client's
 * delivery guard (client-guard.ts), which adds the in-flight window: one object per connection
 * (issue 15, docs/performance.md).
 */
import type { Client } from 'aedes'
import type { DeliveryOptions } from './delivery.js'

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

type Write = (chunk: { length: number }, ...rest: unknown[]) => boolean
type Conn = NodeJS.ReadableStream &
  NodeJS.WritableStream & { writableLength: number; writableNeedDrain: boolean; writableCorked: number; uncork(): void; destroy(err?: Error): void; read(size?: number): unknown }

function checkStuck(g: ClientBacklog): void {
  g.check()
}

export abstract class ClientBacklog {
  readonly conn: Conn
  /** the stream's write before countedWrite */
  readonly write: Write
  protected waiting = 0
  // Node-wide totals count only clients that read: a closed client's share
  // leaves them at once, and so does a stuck one's (below), so that one
  // subscriber that reads nothing can neither drift them nor hold every publisher.
  protected detached = false
  private counted = true
  /** bytes of this client in counters.queuedBytes */
  private accounted = 0
  private listed = false
  /** bytes of the deliveries waiting in the in-flight window (client-guard.ts `held`) */
  protected heldBytes = 0
  /** how many of the deliveries waiting there counters.heldDeliveries counts */
  private heldAccounted = 0
  /** acknowledgements since the stuck clock started, and when the last came (or the window filled) */
  protected acks = 0
  protected lastAckAt = 0
  // A client is stuck when its socket backed up (a write returned false) and
  // the kernel took none of its bytes for STUCK_MS; then it leaves the
  // node-wide counts, and past `maxQueued` waiting messages its deliveries are
  // cut (full()). A client that reads, however slowly, is not: it holds the
  // publishers like any other (QoS 0 for it is dropped past qos0ClientBytes
  // instead). The clock is a timer, not a check at the next delivery: while
  // the publish gate holds the publishers, no delivery may come to notice it.
  private stuckTimer: NodeJS.Timeout | undefined
  /** writableLength when the clock started, and bytes written since */
  private mark = 0
  private added = 0
  private armedAt = 0

  constructor(
    readonly client: Client,
    protected readonly opts: DeliveryOptions,
  ) {
    this.conn = client.conn as unknown as Conn
    this.write = this.conn.write as unknown as Write
  }

  resync(): void {
    const { counters } = this.opts
    const counting = this.counted && !this.detached
    const want = counting ? this.conn.writableLength + this.heldBytes : 0
    counters.queuedBytes += want - this.accounted
    this.accounted = want
    const held = counting ? this.heldCount() : 0
    counters.heldDeliveries += held - this.heldAccounted
    this.heldAccounted = held
    if (want > 0 !== this.listed) {
      this.listed = want > 0
      if (this.listed) counters.backlogged.add(this)
      else counters.backlogged.delete(this)
    }
  }

  protected arm(): void {
    if (this.stuckTimer) return
    this.mark = this.conn.writableLength
    this.added = 0
    this.acks = 0
    this.armedAt = Date.now()
    this.stuckTimer = setTimeout(checkStuck, STUCK_MS, this)
  }

  check(): void {
    this.stuckTimer = undefined
    if (!this.backedUp()) return
    // the kernel took some, or the client acknowledged some: still reading, look again later. A timer
    // that fires late means this node's own event loop was busy, too busy to see the socket drain:
    // that proves nothing either
    if (this.conn.writableLength < this.mark + this.added || this.acks > 0 || Date.now() - this.armedAt > STUCK_MS * 1.5) return this.arm()
    if (!this.conn.writableNeedDrain && Date.now() - this.lastAckAt < ACK_STUCK_MS) return this.arm()
    this.setCounted(false)
  }

  /** `bytes` written to the stream (`ok`: write returned true) */
  wrote(bytes: number, ok: boolean): void {
    // backed up: if it does not drain within STUCK_MS the client stops counting (even when the
    // gate then holds every publisher and no further delivery comes to look at it)
    this.added += bytes
    if (!ok) this.arm()
    if (this.counted && !this.detached) {
      const { counters } = this.opts
      this.accounted += bytes
      counters.queuedBytes += bytes
      if (!this.listed) {
        this.listed = true
        counters.backlogged.add(this)
      }
    }
  }

  private setCounted(on: boolean): void {
    if (on === this.counted || this.detached) return
    this.counted = on
    this.opts.counters.queuedDeliveries += on ? this.waiting : -this.waiting
    this.resync()
  }

  protected written(): void {
    if (this.detached) return
    this.waiting--
    if (this.counted) this.opts.counters.queuedDeliveries--
    this.resync()
  }

  protected track(): void {
    if (this.detached) return
    this.waiting++
    if (this.counted) this.opts.counters.queuedDeliveries++
  }

  drained(): void {
    clearTimeout(this.stuckTimer)
    this.stuckTimer = undefined
    this.setCounted(true)
    this.resync()
  }

  closed(): void {
    clearTimeout(this.stuckTimer)
    if (this.counted) this.opts.counters.queuedDeliveries -= this.waiting
    this.detached = true
    this.waiting = 0
    this.resync()
  }

  /** its socket does not take more, or its in-flight window is full */
  protected abstract backedUp(): boolean

  /** how many deliveries wait in the in-flight window (client-guard.ts `held`) */
  protected abstract heldCount(): number

  protected full(): boolean {
    const { maxQueued, maxQueuedBytes } = this.opts
    if (this.conn.writableLength >= maxQueuedBytes) return true
    if (this.waiting < maxQueued) return false
    // far beyond the limit: cut whatever the cause, memory comes first
    if (this.waiting >= maxQueued * HARD_FACTOR) return true
    // the socket drains and the window has room: the client reads, the node itself is behind (a burst)
    if (!this.backedUp()) return false
    if (!this.counted) return true // stuck for STUCK_MS already
    this.arm()
    return false
  }
}
