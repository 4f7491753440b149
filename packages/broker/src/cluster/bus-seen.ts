/**
 * The QoS 1/2 messages this node delivered lately from one origin, so that a copy its node
 * published again (flag RESENT, bus-codec.ts: a Redis failover crossed the batch before the
 * replicas confirmed it, replica-acks.ts) is dropped here when this node's subscribers had it.
 * QoS 1 allows the copy [MQTT-4.3.2-1], but the node can tell, so the subscribers do not get it.
 *
 * Cost on the hot path: recording a message is two array writes in a fixed ring (the counter and
 * the broker id string the batch decoder shares between its packets), no allocation; only a
 * message flagged RESENT is looked up. The lookup index (broker id -> counters) is built from the
 * ring on the first lookup and brought up to date at each later one; it may remember more than
 * the ring (every id in it was delivered, so a lookup never drops a message that was not), and
 * is rebuilt once it holds twice the ring.
 */

/** messages remembered per origin: more than replica-acks.ts' MAX_RESENDING (20,000) messages resent at once */
export const SEEN_WINDOW = 1 << 15
const MASK = SEEN_WINDOW - 1

export class SeenWindow {
  private readonly counters = new Float64Array(SEEN_WINDOW)
  private readonly ids = new Array<string | undefined>(SEEN_WINDOW)
  /** messages recorded so far (the ring slot of the next is `added & MASK`) */
  private added = 0
  private lastId = ''
  private index: Map<string, Set<number>> | undefined
  /** `added` when the index was last brought up to date, and the ids it holds */
  private indexed = 0
  private indexSize = 0

  /** a QoS 1/2 message delivered to this node's subscribers */
  add(brokerId: string, counter: number): void {
    // one string kept for a broker id, not one per batch (the decoder makes one per batch)
    if (brokerId !== this.lastId) this.lastId = brokerId
    const at = this.added & MASK
    this.counters[at] = counter
    this.ids[at] = this.lastId
    this.added++
  }

  /** was this message delivered here lately (among the last SEEN_WINDOW recorded)? */
  has(brokerId: string, counter: number): boolean {
    if (this.index === undefined || this.added - this.indexed > SEEN_WINDOW || this.indexSize > 2 * SEEN_WINDOW) {
      this.index = new Map()
      this.indexSize = 0
      this.indexed = Math.max(0, this.added - SEEN_WINDOW)
    }
    const index = this.index
    for (; this.indexed < this.added; this.indexed++) {
      const at = this.indexed & MASK
      const id = this.ids[at]!
      let set = index.get(id)
      if (set === undefined) index.set(id, (set = new Set()))
      set.add(this.counters[at]!)
      this.indexSize++
    }
    return index.get(brokerId)?.has(counter) === true
  }
}

/** one SeenWindow per origin (a peer node's bus), made at its first QoS 1/2 message */
export class SeenByOrigin {
  private readonly windows = new Map<string, SeenWindow>()

  of(origin: string): SeenWindow {
    let w = this.windows.get(origin)
    if (w === undefined) this.windows.set(origin, (w = new SeenWindow()))
    return w
  }

  /** the origin left: its messages will not come again */
  forget(origin: string): void {
    this.windows.delete(origin)
  }

  /** forget the origins no longer `known` (bus-order.ts forgot them: silent, their node died) */
  prune(known: (origin: string) => boolean): void {
    for (const origin of this.windows.keys()) if (!known(origin)) this.windows.delete(origin)
  }
}
