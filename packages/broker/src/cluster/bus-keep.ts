/**
 * Batches a node settled while a peer was silent, kept so that the peer can ask for them again
 * (bus-delivery.ts, bus-order.ts).
 *
 * The bus takes a peer silent for SILENT_MS (or, after a Redis restart, not back within
 * RESUBSCRIBE_GRACE_MS) for dead, so that a killed node does not hold every other node's
 * PUBACKs. A node that is only frozen for longer (a long GC or VM pause, SIGSTOP, a starved
 * process) is not dead: its clients are still connected, and when it comes back it would find
 * a gap of batches that were acknowledged to their publishers and never reached it. Its clean
 * subscribers lost them; its persistent ones got them only from their Redis queue when they
 * reconnected.
 *
 * So while any peer is silent (for KEEP_MS at most: then it is dead), every batch this node
 * settles is kept, for KEEP_MS and at most KEEP_MAX_BYTES (oldest dropped first). A peer that comes back and finds a gap asks for the
 * missing batch numbers on the presence channel (`<peer> resend <origin> <from> <to>`); this node
 * publishes those it kept on the bus channel again and then says `<origin> resent <peer> <from>
 * <to>`, after which the peer gives up what is still missing. The other nodes drop the copies.
 * The fast path pays one boolean test per settled batch.
 */
import type { Redis } from 'ioredis'

/** how long a batch is kept after it was settled while a peer was silent */
export const KEEP_MS = 30_000
/** kept batches at most, in bytes of encoded batches */
export const KEEP_MAX_BYTES = 32 * 1024 * 1024

interface Kept {
  buf: Buffer
  at: number
}

export class KeptBatches {
  /** by batch number, in the order kept (= ascending numbers) */
  private readonly batches = new Map<number, Kept>()
  private bytes = 0
  /** peers taken for dead while they may only be silent, since when (after KEEP_MS: dead) */
  private readonly silent = new Map<string, number>()
  /** batches dropped for the byte bound since the last report */
  private overflow = 0

  constructor(
    /** the byte bound dropped kept batches that a silent peer may still ask for */
    private readonly onOverflow: (batches: number) => void = () => {},
    private readonly keepMs = KEEP_MS,
    private readonly maxBytes = KEEP_MAX_BYTES,
  ) {}

  /** batches are kept while this is true */
  get active(): boolean {
    return this.silent.size > 0
  }

  /** a live peer fell silent (not a bye): from now on settled batches are kept */
  silence(peer: string, now = Date.now()): void {
    if (!this.silent.has(peer)) this.silent.set(peer, now)
  }

  /** a peer was heard again or said bye: keeping goes on only for the others */
  heard(peer: string): void {
    this.silent.delete(peer)
  }

  keep(seq: number, buf: Buffer, now = Date.now()): void {
    this.batches.set(seq, { buf, at: now })
    this.bytes += buf.length
    while (this.bytes > this.maxBytes) this.dropOldest(true)
  }

  /** the kept batches numbered from `from` up to `to` (excluded), in order */
  range(from: number, to: number): Buffer[] {
    const out: Buffer[] = []
    for (const [seq, k] of this.batches) if (seq >= from && seq < to) out.push(k.buf)
    return out
  }

  /**
   * answer `peer`'s `resend`: publish what is kept of it on the bus channel again, then say
   * `resent` on the presence channel, on the same link, so the peer reads it after the batches
   */
  resend(link: { pub: Redis; channel: string; origin: string }, presence: string, peer: string, from: number, to: number): void {
    for (const buf of this.range(from, to)) link.pub.publish(link.channel, buf).catch(() => {})
    link.pub.publish(presence, `${link.origin} resent ${peer} ${from} ${to}`).catch(() => {})
  }

  /** drop what is older than KEEP_MS, and stop keeping for peers silent that long; report a byte-bound drop once */
  trim(now = Date.now()): void {
    for (const [peer, since] of this.silent) if (now - since > this.keepMs) this.silent.delete(peer)
    for (const k of this.batches.values()) {
      if (now - k.at <= this.keepMs) break
      this.dropOldest(false)
    }
    if (this.overflow > 0) {
      this.onOverflow(this.overflow)
      this.overflow = 0
    }
  }

  get size(): number {
    return this.batches.size
  }

  private dropOldest(overflow: boolean): void {
    for (const [seq, k] of this.batches) {
      this.batches.delete(seq)
      this.bytes -= k.buf.length
      if (overflow) this.overflow++
      return
    }
  }
}
