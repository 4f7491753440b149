/**
 * Batches a node settled lately, kept so that a peer that missed them can ask for them again
 * (bus-delivery.ts, bus-order.ts).
 *
 * A batch is settled (its PUBACKs leave) once Redis says every live peer's link got it, or once
 * the peers that did not are taken for dead. Two cases still lose messages without a copy:
 * - a peer silent for SILENT_MS (or, after a Redis restart, not back within
 *   RESUBSCRIBE_GRACE_MS) is taken for dead, so that a killed node does not hold every other
 *   node's PUBACKs; but a node only frozen for longer (a long GC or VM pause, a starved
 *   process) is not dead: its clients are still connected when it comes back;
 * - Redis counts a message as delivered when it queues it for a link, and a Redis killed before
 *   it wrote it out loses it.
 * Either way the peer finds a gap: its clean subscribers lost those messages, its persistent ones
 * got them only from their Redis queue on a reconnect.
 *
 * - Redis counts a batch as delivered to a live peer whose link it then drops, or loses with a
 *   restart, before the peer read it (a peer that stopped reading while its subscribers are
 *   behind, bus-flow.ts, for longer than RECENT_MS).
 *
 * So every settled batch is kept until every live peer that reports its progress
 * (bus-progress.ts) delivered it (at most KEEP_MAX_BYTES), for RECENT_MS in any case (at most
 * RECENT_MAX_BYTES), and for KEEP_MS (at
 * most KEEP_MAX_BYTES) from the moment a peer is taken for dead or this node's own subscriber
 * link goes down until KEEP_MS later (a peer that comes back asks only once its own subscriber
 * link is back, which may be after its beats are heard again; one that does not is dead);
 * oldest dropped first. A peer that
 * finds a gap asks for the missing batch numbers on the presence channel (`<peer> resend
 * <origin> <from> <to>`); this node publishes those it kept on the bus channel again and then
 * says `<origin> resent <peer> <from> <to> <runs>` (the numbers it had, formatRuns()), after which
 * the peer asks again for what it had and the peer still lacks (lost on the way: a link dropped,
 * Redis restarted) and gives up the rest. The other nodes drop the copies. The fast path pays a Map insertion per batch (one
 * per event-loop turn, not per message).
 */
import type { Redis } from 'ioredis'

/** how long a batch is kept in any case */
export const RECENT_MS = 2000
/** kept batches at most, in bytes of encoded batches, in any case */
export const RECENT_MAX_BYTES = 4 * 1024 * 1024
/** how long a batch is kept while a peer is silent or this node's link is down */
export const KEEP_MS = 30_000
/** kept batches at most, in bytes, while a peer is silent or this node's link is down */
export const KEEP_MAX_BYTES = 32 * 1024 * 1024

/** the reason "this node's own subscriber link is down" among the silent peers */
const SELF = '\0self'

interface Kept {
  buf: Buffer
  at: number
}

export class KeptBatches {
  /** by batch number, in the order settled (about ascending numbers) */
  private readonly batches = new Map<number, Kept>()
  private bytes = 0
  /**
   * why batches are kept for KEEP_MS: peers taken for dead while they may only be silent, and
   * this node's own subscriber link going down (SELF), each with until when
   */
  private readonly silent = new Map<string, number>()
  /** batches dropped for the byte bound since the last report */
  private overflow = 0

  constructor(
    /** the byte bound dropped kept batches that a silent peer may still ask for */
    private readonly onOverflow: (batches: number) => void = () => {},
    private readonly keepMs = KEEP_MS,
    private readonly maxBytes = KEEP_MAX_BYTES,
    private readonly recentMs = RECENT_MS,
    private readonly recentMaxBytes = RECENT_MAX_BYTES,
    /** the last batch every live peer that reports its progress delivered (Infinity: none reports) */
    private readonly confirmed: () => number = () => Infinity,
  ) {}

  /** batches are kept for KEEP_MS while this is true, else for RECENT_MS */
  get active(): boolean {
    return this.silent.size > 0
  }

  /**
   * this node's subscriber link went down: Redis may have lost what it counted as delivered, and
   * the peers ask for it only once they are back, so keep for KEEP_MS from now
   */
  linkDown(now = Date.now()): void {
    this.silence(SELF, now)
  }

  /** a live peer fell silent (not a bye): settled batches are kept for KEEP_MS from now */
  silence(peer: string, now = Date.now()): void {
    this.silent.set(peer, now + this.keepMs)
  }

  /** a peer said bye: it asks for nothing any more */
  left(peer: string): void {
    this.silent.delete(peer)
  }

  keep(seq: number, buf: Buffer, now = Date.now()): void {
    this.batches.set(seq, { buf, at: now })
    this.bytes += buf.length
    const active = this.active
    while (this.bytes > this.maxBytes) this.dropOldest(active)
    if (active || this.bytes <= this.recentMaxBytes) return
    // asked first: it may take a peer for dead (silence()), and then nothing goes
    const floor = this.confirmed()
    while (!this.active && this.bytes > this.recentMaxBytes && this.oldest() <= floor) this.dropOldest(false)
  }

  /** the kept batches numbered from `from` up to `to` (excluded), in order */
  range(from: number, to: number): Array<{ seq: number; buf: Buffer }> {
    const out: Array<{ seq: number; buf: Buffer }> = []
    for (const [seq, k] of this.batches) if (seq >= from && seq < to) out.push({ seq, buf: k.buf })
    return out
  }

  /**
   * answer `peer`'s `resend`: publish what is kept of it on the bus channel again, then say
   * `resent` on the presence channel, on the same link, so the peer reads it after the batches,
   * with the numbers it had (runs, bus-order.ts: one of them the peer still lacks then was lost
   * on the way, and is asked for again); the number of batches found
   */
  resend(link: { pub: Redis; channel: string; origin: string }, presence: string, peer: string, from: number, to: number): number {
    const found = this.range(from, to)
    for (const k of found) link.pub.publish(link.channel, k.buf).catch(() => {})
    link.pub.publish(presence, `${link.origin} resent ${peer} ${from} ${to} ${formatRuns(found.map((k) => k.seq))}`).catch(() => {})
    return found.length
  }

  /** what is kept, for an error that says why a peer's request found less than it asked for */
  describe(): string {
    return `${this.batches.size} kept from batch ${this.oldest()}, ${this.active ? `for ${[...this.silent.keys()].map((p) => (p === SELF ? 'our own link' : p)).join(', ')}` : 'none silent'}`
  }

  /** drop what is older than KEEP_MS, and stop keeping for peers silent that long; report a byte-bound drop once */
  trim(now = Date.now()): void {
    for (const [peer, until] of this.silent) if (now > until) this.silent.delete(peer)
    // asked first: a peer it reads as not live any more is taken for dead there (silence())
    const confirmed = this.confirmed()
    const horizon = this.active ? this.keepMs : this.recentMs
    const floor = this.active ? Infinity : confirmed
    for (const [seq, k] of this.batches) {
      // a batch a live peer has not delivered yet stays (those after it are newer)
      if (now - k.at <= horizon || seq > floor) break
      this.dropOldest(false)
    }
    while (!this.active && this.bytes > this.recentMaxBytes && this.oldest() <= floor) this.dropOldest(false)
    if (this.overflow > 0) {
      this.onOverflow(this.overflow)
      this.overflow = 0
    }
  }

  get size(): number {
    return this.batches.size
  }

  /** the number of the oldest batch kept (Infinity: none) */
  private oldest(): number {
    for (const seq of this.batches.keys()) return seq
    return Infinity
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

/** a request to send batches again that did not reach every live node's link is sent again after */
const ASK_RETRY_MS = 250

/**
 * publish `request` (`<origin> resend <target> <from> <to>`) on the presence channel. Pub/sub keeps
 * nothing for a link that is not subscribed (the target's right after a Redis restart): while the
 * PUBLISH reached fewer than `expected()` links and `stillAsking()`, asked again every ASK_RETRY_MS
 */
export function askResend(pub: Redis, presence: string, request: string, expected: () => number, stillAsking: () => boolean): void {
  const again = (): void => {
    if (!stillAsking()) return
    setTimeout(() => {
      if (stillAsking()) askResend(pub, presence, request, expected, stillAsking)
    }, ASK_RETRY_MS).unref()
  }
  pub.publish(presence, request).then((count) => {
    if (count < expected()) again()
  }, again)
}

/** ascending batch numbers as runs `a-b` (b excluded), comma-separated; `-` for none */
export function formatRuns(seqs: readonly number[]): string {
  const sorted = [...seqs].sort((x, y) => x - y)
  const runs: string[] = []
  for (let i = 0; i < sorted.length; ) {
    let j = i
    while (j + 1 < sorted.length && sorted[j + 1]! <= sorted[j]! + 1) j++
    runs.push(`${sorted[i]}-${sorted[j]! + 1}`)
    i = j + 1
  }
  return runs.length > 0 ? runs.join(',') : '-'
}

/** formatRuns' text back (undefined: none given, a node of an older release, or not well formed) */
export function parseRuns(text: string | undefined): Array<[number, number]> | undefined {
  if (text === undefined) return undefined
  if (text === '-') return []
  const runs: Array<[number, number]> = []
  for (const part of text.split(',')) {
    const [a, b] = part.split('-').map(Number)
    if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || b! <= a!) return undefined
    runs.push([a!, b!])
  }
  return runs
}
