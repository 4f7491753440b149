/**
 * Receiver pacing of the cluster bus (issue 15): a batch is done (its emit callbacks fire, so
 * its QoS 1 PUBACKs leave and Aedes reads the publisher's next packets) only once every live
 * peer that reports its progress has handed the batch to its own subscribers, not only once
 * Redis has handed it to their links (bus-delivery.ts).
 *
 * Why: Redis answers a PUBLISH as soon as it has copied the batch into the subscriber links'
 * output buffers. A publisher on node A acknowledged at that pace runs ahead of a node B whose
 * subscribers cost more (a fan-out: each message written to many sockets), and the difference
 * piles up in Redis, the kernel and B's client sockets until B's pressure signal (bus.ts: input
 * lag, backlog) holds A: a standing queue of ~100 ms. Paced by B's progress, what is on its
 * way between the nodes is bounded by the publishers' windows and a small lead.
 *
 * Receiving side: after each event-loop turn in which batches arrived, a node publishes on
 * `<channel>:progress` one line, `<its origin> <origin>=<seq>,...`: per sending origin, the
 * number of the last batch delivered in order (bus-order.ts). Cumulative, so a lost line is
 * made good by the next (on `<channel>:progress:n:<origin>` while every live node listens there,
 * so that the node does not read its own lines back: bus-channels.ts). While the node's own client backlog is over paceBytes (its
 * subscribers are behind) the line waits: what it took in waits for them, not in Redis.
 *
 * A line sent while nothing at all waits for the node's clients (every socket took what was
 * written to it, no delivery waits for an in-flight slot) ends with `,~`: the node keeps up.
 *
 * Sending side: peers count once a line of theirs was heard (a node of an older release sends
 * none and is not waited for), for as long as they are live (bus-delivery.ts presence). A batch
 * waits until each of them is at most its lead (bus-lead.ts: AHEAD_MESSAGES or what the peer
 * delivers in LEAD_MS at its rate) / AHEAD_BYTES behind it (strict pacing,
 * no lead, halves a lone publisher's rate: its window per report round trip), or, when the
 * peer's last line said it keeps up, behind by no more than the last IDLE_LEAD_SENDS sends
 * (reached()), or at most WAIT_MS (a line lost with no further traffic to carry a newer one, a
 * peer's control link down): then it goes, as before this.
 */
import type { Redis } from 'ioredis'
import type { BusPacket } from './bus-codec.js'
import { nodeChannel } from './bus-channels.js'
import { PeerLeads } from './bus-lead.js'

type Done = (err?: Error | null) => void

/** longest a batch waits for progress reports */
export const WAIT_MS = 2000
export { AHEAD_MESSAGES, AHEAD_MESSAGES_MAX, LEAD_MS } from './bus-lead.js'
export const AHEAD_BYTES = 256 * 1024

/** batch records kept at most (one per event-loop turn that sent) */
const MAX_RECORDS = 100_000

interface Sent {
  seq: number
  /** messages and payload bytes sent up to and including this batch */
  messages: number
  bytes: number
  /** messages sent before the last IDLE_LEAD_SENDS sends, this one included */
  before: number
}

interface Waiting {
  seq: number
  since: number
  cb: Done
}

export interface ProgressOptions {
  pub: Redis
  /** `<bus channel>:progress` */
  channel: string
  origin: string
  /** a peer is live (heard within SILENT_MS, bus-delivery.ts) */
  isLive: (peer: string) => boolean
  onError: (err: Error) => void
  /** bytes waiting for this node's client sockets: no report while over paceBytes */
  backlog?: () => number
  paceBytes?: number
  /** lines go on `<channel>:n:<origin>` now, where every live node listens (bus-channels.ts), not on `channel` */
  useOwnChannel?: () => boolean
}

/** a report held for the backlog looks at it again after this long */
const REPORT_POLL_MS = 2
/**
 * how a line sent with nothing waiting for the node's clients ends, a last entry '~' (no '=': a node of an
 * older release, which looks only for its own `<origin>=` entry, reads the line as before)
 */
const IDLE = ',~'
/** sends a peer that said it keeps up may be behind (reached()) */
export const IDLE_LEAD_SENDS = 2

export class BusProgress {
  /** receiving side: origin -> last batch delivered, not reported yet */
  private readonly pendingReport = new Map<string, number>()
  private reportScheduled = false
  /** sending side: peer -> highest of our batches it delivered */
  private readonly peers = new Map<string, number>()
  /** sending side: pacing peers whose last line said nothing waited for their clients */
  private readonly idle = new Set<string>()
  /** sending side: how far each pacing peer may be behind (bus-lead.ts) */
  private readonly leads = new PeerLeads()
  private waiting: Waiting[] = []
  /** our batches from the oldest a pacing peer may not have delivered on, in order */
  private sent: Sent[] = []
  private messages = 0
  /** messages sent up to the end of each of the last IDLE_LEAD_SENDS sends */
  private readonly ends: number[] = []
  private bytes = 0
  private timer: NodeJS.Timeout | undefined
  private closed = false

  readonly channel: string
  /** this node's own progress channel (bus-channels.ts) */
  readonly own: string
  private readonly mine: string

  constructor(private readonly o: ProgressOptions) {
    this.channel = o.channel
    this.own = nodeChannel(o.channel, o.origin)
    this.mine = `${o.origin}=`
  }

  // ---- receiving side --------------------------------------------------------------------------

  /** batches of `origin` up to `seq` are delivered here: report it after this turn */
  delivered(origin: string, seq: number): void {
    this.pendingReport.set(origin, seq)
    if (this.reportScheduled) return
    this.reportScheduled = true
    setImmediate(this.report)
  }

  private readonly report = (): void => {
    this.reportScheduled = false
    if (this.closed || this.pendingReport.size === 0) return
    // this node's subscribers are behind: what it took in waits for them, not in Redis
    const backlog = this.o.backlog ? this.o.backlog() : 0
    if (backlog > (this.o.paceBytes ?? Infinity)) {
      this.reportScheduled = true
      setTimeout(this.report, REPORT_POLL_MS)
      return
    }
    let line = ''
    for (const [origin, seq] of this.pendingReport) line += `${line ? ',' : ''}${origin}=${seq}`
    this.pendingReport.clear()
    // every client socket took what this node wrote to it, and no delivery waits for an in-flight
    // slot: it keeps up, its senders may go IDLE_LEAD_SENDS sends past this line (reached())
    if (backlog === 0) line += IDLE
    this.o.pub.publish(this.o.useOwnChannel?.() === true ? this.own : this.o.channel, `${this.o.origin} ${line}`).catch((err: Error) => this.o.onError(err))
  }

  // ---- sending side ----------------------------------------------------------------------------

  /** a line on the progress channel */
  onMessage(text: string): void {
    const sep = text.indexOf(' ')
    const peer = text.slice(0, sep)
    if (sep <= 0 || peer === this.o.origin) return
    // our entry (`<origin>=<seq>`, after the space or a comma), without splitting the line
    const mine = this.mine
    let seq = 0
    for (let at = text.indexOf(mine, sep + 1); at >= 0; at = text.indexOf(mine, at + 1)) {
      const before = text.charCodeAt(at - 1)
      if (before !== 0x20 && before !== 0x2c) continue
      const end = text.indexOf(',', at)
      seq = Number(text.slice(at + mine.length, end < 0 ? text.length : end))
    }
    // a line without our origin: the peer paces us too, and has nothing of ours yet
    if (!Number.isFinite(seq)) return
    if (seq > (this.peers.get(peer) ?? -1)) {
      this.peers.set(peer, seq)
      const at = this.find(seq)
      if (at) this.leads.delivered(peer, at.messages)
    }
    if (text.endsWith(IDLE)) this.idle.add(peer)
    else this.idle.delete(peer)
    if (this.waiting.length > 0) this.release()
    this.prune()
  }

  /** messages a peer may be behind a batch that goes (AHEAD_MESSAGES) */
  leadOf(peer: string): number {
    return this.leads.of(peer)
  }

  /** the peer left */
  forget(peer: string): void {
    if (this.drop(peer)) this.release()
  }

  /** a peer's sending-side state gone (it left, or is no longer live): whether it was pacing us */
  private drop(peer: string): boolean {
    this.idle.delete(peer)
    this.leads.forget(peer)
    return this.peers.delete(peer)
  }

  /** batch `seq` (the last of a send) goes out with `packets` */
  sending(seq: number, packets: readonly BusPacket[]): void {
    const ends = this.ends
    const before = ends.length < IDLE_LEAD_SENDS ? 0 : ends[ends.length - IDLE_LEAD_SENDS]!
    this.messages += packets.length
    ends.push(this.messages)
    if (ends.length > IDLE_LEAD_SENDS) ends.shift()
    for (let i = 0; i < packets.length; i++) this.bytes += packets[i]!.payload.length
    this.sent.push({ seq, messages: this.messages, bytes: this.bytes, before })
    this.prune()
  }

  /** `cb` once every pacing peer delivered batch `seq` (at once when none is behind) */
  wait(seq: number, cb: Done): void {
    if (this.closed || this.reached(seq)) return cb()
    this.waiting.push({ seq, since: Date.now(), cb })
    this.timer ??= setInterval(() => this.release(), WAIT_MS / 8)
  }

  /**
   * the last of our batches every live peer that reports its progress delivered (Infinity: none
   * reports); bus-keep.ts keeps the batches after it
   */
  confirmed(): number {
    let min = Infinity
    for (const [peer, got] of this.peers) if (this.o.isLive(peer) && got < min) min = got
    return min
  }

  /** batches waiting for progress reports */
  get held(): number {
    return this.waiting.length
  }

  close(): void {
    this.closed = true
    clearInterval(this.timer)
    this.timer = undefined
    const all = this.waiting
    this.waiting = []
    for (const w of all) w.cb()
  }

  /**
   * every pacing peer is at most AHEAD_* behind batch `seq`, or (a lead counted in the peer's
   * own work) its last line said its clients had taken everything it wrote them and it is behind
   * by at most the last IDLE_LEAD_SENDS sends, this one included (and AHEAD_BYTES), which Redis
   * has already handed it. A send of more than AHEAD_MESSAGES (several publishers' windows in
   * one turn) otherwise waits for its own report every time, and the publishers' cycle holds
   * the report's round trip too (docs/performance.md, issue 15); two sends, as one is sent
   * while the one before it waits for Redis
   */
  private reached(seq: number): boolean {
    let upTo: Sent | undefined
    for (const [peer, got] of this.peers) {
      if (!this.o.isLive(peer)) {
        this.drop(peer)
        continue
      }
      if (got >= seq) continue
      upTo ??= this.find(seq)
      const at = this.find(got)
      // a peer behind what is recorded (it joined since): wait for it to catch up
      if (!upTo || !at || upTo.bytes - at.bytes > AHEAD_BYTES) return false
      if (upTo.messages - at.messages <= this.leadOf(peer)) continue
      if (!this.idle.has(peer) || at.messages < upTo.before) return false
    }
    return true
  }

  /** the last batch recorded up to `seq` */
  private find(seq: number): Sent | undefined {
    const sent = this.sent
    if (sent.length === 0 || sent[0]!.seq > seq) return undefined
    let lo = 0
    let hi = sent.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (sent[mid]!.seq <= seq) lo = mid
      else hi = mid - 1
    }
    return sent[lo]
  }

  /** keep the records from the last one at or below the slowest live pacing peer's progress */
  private prune(): void {
    const min = this.confirmed()
    const sent = this.sent
    let drop = 0
    while (drop + 1 < sent.length && sent[drop + 1]!.seq <= min) drop++
    // a peer stuck for long (its batches go after WAIT_MS anyway): a bounded record; behind it, it is waited for up to WAIT_MS
    drop = Math.max(drop, sent.length - MAX_RECORDS)
    if (drop > 64 || (drop > 0 && drop === sent.length - 1)) this.sent = sent.slice(drop)
  }

  private release(): void {
    const now = Date.now()
    const go: Waiting[] = []
    const stay: Waiting[] = []
    for (const w of this.waiting) (now - w.since >= WAIT_MS || this.reached(w.seq) ? go : stay).push(w)
    if (go.length === 0) return
    this.waiting = stay
    if (stay.length === 0) {
      clearInterval(this.timer)
      this.timer = undefined
    }
    // in batch order, as they were sent
    go.sort((x, y) => x.seq - y.seq)
    for (const w of go) w.cb()
  }
}
