/**
 * Which peers' subscriber links a bus batch must reach (bus-delivery.ts), from the presence
 * beats: a peer is live while heard within SILENT_MS. While this node's own subscriber link is
 * down, and for RESUBSCRIBE_GRACE_MS after it subscribed again, the peers heard in the
 * RESUBSCRIBE_GRACE_MS before it went down count too: after a Redis restart nobody has heard
 * anybody, and peers need a moment to reconnect. A node whose subscriber link stays down while
 * Redis is up stops beating after SUB_DOWN_GRACE_MS, so that one broken node cannot stall the
 * cluster (it is not ready anyway).
 *
 * It also says which channel this node's batches go on (bus-channels.ts): its own while every
 * live peer said it listens there (`<origin> n` on the presence channel) and this node has heard
 * the presence channel for SILENT_MS, else the shared one.
 */
import type { Redis } from 'ioredis'

export const BEAT_MS = 250
export const SILENT_MS = 1500
export const RESUBSCRIBE_GRACE_MS = 5000
export const SUB_DOWN_GRACE_MS = 5000

export class BusPeers {
  /** peer -> when its last beat was heard */
  private readonly beats = new Map<string, number>()
  private hearingSince = Date.now()
  private subDownSince: number | undefined
  /** when our subscriber link last went down */
  private subLostAt = 0
  private pubUpSince = Date.now()
  /** peers that said they listen on the per-node channels (bus-channels.ts) */
  private readonly nodeChannels = new Set<string>()

  constructor(
    private readonly sub: Redis,
    /** a peer is taken for dead from now on (bus-keep.ts: if it was only frozen it asks for what it missed) */
    private readonly onSilent: (peer: string) => void,
  ) {}

  heard(peer: string): void {
    this.beats.set(peer, Date.now())
  }

  /** the peer said bye */
  left(peer: string): void {
    this.beats.delete(peer)
    this.nodeChannels.delete(peer)
  }

  /** the peer said it listens on the per-node channels (an origin's release does not change) */
  listensOnNodeChannels(peer: string): void {
    this.nodeChannels.add(peer)
  }

  /**
   * our batches go on our own channel: our subscriber link has heard the presence channel for
   * SILENT_MS (so every live node has been heard) and every peer that counts said it listens on
   * the per-node channels; else on the shared bus channel, where every node listens
   */
  useNodeChannel(now = Date.now()): boolean {
    if (this.sub.status !== 'ready' || now - this.hearingSince < SILENT_MS) return false
    for (const peer of this.beats.keys()) if (!this.nodeChannels.has(peer)) return false
    return true
  }

  /**
   * links a batch must reach: the live peers', and ours while it is up when it goes on the shared
   * bus channel (`self`); a batch on our own channel does not come back to us (bus-channels.ts)
   */
  expected(self = true): number {
    const now = Date.now()
    const subUp = this.sub.status === 'ready'
    // right after our link came back (or while it is down) we cannot have heard the peers that
    // were live when it went down (heard within the grace before): they count until it is over
    const graced = this.subLostAt > 0 && (!subUp || now - this.hearingSince < RESUBSCRIBE_GRACE_MS)
    let n = self && subUp ? 1 : 0
    for (const [peer, at] of this.beats) {
      if (now - at < SILENT_MS || (graced && at >= this.subLostAt - RESUBSCRIBE_GRACE_MS)) n++
      else {
        this.beats.delete(peer)
        this.nodeChannels.delete(peer)
        this.onSilent(peer)
      }
    }
    return n
  }

  /**
   * the peer beat within SILENT_MS. One that did not is taken for dead here at once (onSilent,
   * as expected() does), so that nothing reads it as gone before bus-keep.ts keeps for it (a
   * timer that runs before this turn's PUBLISH replies would: BusProgress.confirmed())
   */
  isLive(peer: string): boolean {
    const at = this.beats.get(peer)
    if (at === undefined) return false
    if (Date.now() - at < SILENT_MS) return true
    this.expected()
    return false
  }

  /** when our subscriber link last (re)subscribed: receivers cannot have heard anyone before */
  get listeningSince(): number | undefined {
    return this.sub.status === 'ready' ? this.hearingSince : undefined
  }

  /** false once our subscriber link has been down SUB_DOWN_GRACE_MS while the publisher link is up */
  mayBeat(now = Date.now()): boolean {
    return this.sub.status === 'ready' || now - Math.max(this.subDownSince ?? 0, this.pubUpSince) <= SUB_DOWN_GRACE_MS
  }

  subReady(): void {
    this.hearingSince = Date.now()
    this.subDownSince = undefined
  }

  /** true when the link was up until now (not a repeated close while reconnecting) */
  subDown(): boolean {
    if (this.subDownSince !== undefined) return false
    this.subDownSince = this.subLostAt = Date.now()
    return true
  }

  pubReady(): void {
    this.pubUpSince = Date.now()
  }
}
