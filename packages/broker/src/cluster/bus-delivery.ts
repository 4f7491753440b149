/**
 * Sending side of the cluster bus' delivery guarantee: a batch is done (its emit callbacks fire,
 * so the QoS 1 PUBACKs of its messages can leave, [MQTT-4.3.2-2]) only once Redis has handed it
 * to the subscriber link of every live node.
 *
 * Redis pub/sub keeps nothing for a link that is not subscribed. After a Redis restart each node's
 * links reconnect on their own schedule: a node's publisher link replays its queued PUBLISHes
 * (ioredis' offline queue) before the other nodes' subscriber links have subscribed again, and
 * Redis delivers those batches to nobody; before this, their messages were acknowledged anyway
 * and lost for every subscriber on the other nodes (issue 8).
 *
 * How, without a round trip per message: PUBLISH answers how many links received the batch. A
 * batch whose count is below the number of live nodes (this one included when the batch went on
 * the shared bus channel, not when it went on this node's own: bus-channels.ts) is held and published
 * again every RETRY_MS, until the count is reached, the missing node is no longer live, or
 * MAX_HOLD_MS has passed (then it is released with a warning). Nodes that got it already drop
 * the copy; batches are numbered per origin and bus-order.ts delivers them once and in order.
 * The fast path costs a comparison per batch.
 *
 * Live nodes (bus-peers.ts): every node beats every BEAT_MS on `<channel>:presence` (`<origin>
 * <base>`, base = its oldest unsettled batch, which lets receivers give up a gap) and says
 * `<origin> bye` when it closes. A node killed outright holds the others' batches for up to
 * SILENT_MS (up to RESUBSCRIBE_GRACE_MS if Redis restarts meanwhile).
 *
 * The count is of links, not of nodes: another connection subscribed to the bus channel (a
 * `redis-cli SUBSCRIBE culex:bus` left open) would stand in for a missing node.
 */
import type { Redis } from 'ioredis'
import { encodeBatch, versionRuns, type BusPacket } from './bus-codec.js'
import { askResend, KEEP_MAX_BYTES, KeptBatches, parseRuns } from './bus-keep.js'
import { BEAT_MS, BusPeers } from './bus-peers.js'
import { HeldEpisodes, type HeldEpisode } from './bus-held.js'
import { NODE_CHANNELS, nodeChannel } from './bus-channels.js'

type Done = (err?: Error | null) => void
export type { HeldEpisode }

const RETRY_MS = 25
const MAX_HOLD_MS = 10_000

interface Outstanding {
  seq: number
  buf: Buffer
  done: Done
  /** first time PUBLISH answered short */
  since: number
  /** links that received the last copy */
  count: number
  /** the last copy went on this node's own channel (bus-channels.ts), which does not reach this node */
  own: boolean
  sending: boolean
  short: boolean
  err?: Error
}

export interface DeliveryOptions {
  pub: Redis
  sub: Redis
  channel: string
  origin: string
  onError: (err: Error) => void
  /** a peer's presence beat or bye, for the receiving side */
  onPeer?: (origin: string, base: number | 'bye') => void
  /** batches were held because a node had not received them; now every one is settled */
  onHeld?: (info: HeldEpisode) => void
  /** `origin` sent again what it kept of the batches `from` up to `to` this node asked for: the runs it had (bus-keep.ts; undefined from an older node) */
  onResent?: (origin: string, from: number, to: number, had?: Array<[number, number]>) => void
  /** the last of this node's batches every live peer reporting its progress delivered (bus-keep.ts keeps those after it) */
  confirmed?: () => number
  /** this node's subscriber link subscribed again (after the first time): what it asked for may be lost */
  onResubscribed?: () => void
  /** behave as the previous release: publish on the shared bus channel only, say nothing of the per-node channels (bus-channels.ts) */
  sharedOnly?: boolean
}


export class BusDelivery {
  readonly presence: string
  /** where this node's batches go while every live node listens there (bus-channels.ts) */
  readonly own: string
  private seq = 0
  private readonly outstanding = new Map<number, Outstanding>()
  private retryTimer: NodeJS.Timeout | undefined
  private readonly beatTimer: NodeJS.Timeout
  private closed = false
  /** batches held until every node had them, reported when none is held any more */
  private readonly held = new HeldEpisodes((info) => this.o.onHeld?.(info))
  /** batches settled while a peer was silent, for it to ask again (bus-keep.ts) */
  private readonly kept = new KeptBatches(
    (n) => this.o.onError(new Error(`cluster bus: ${n} batch(es) kept for nodes that may have missed them dropped (${KEEP_MAX_BYTES / 1048576} MiB bound); a node that asks for them again misses them`)),
    undefined,
    undefined,
    undefined,
    undefined,
    () => this.o.confirmed?.() ?? Infinity,
  )

  /** who must have a batch (bus-peers.ts) */
  readonly peers: BusPeers

  constructor(private readonly o: DeliveryOptions) {
    this.presence = `${o.channel}:presence`
    this.own = nodeChannel(o.channel, o.origin)
    this.peers = new BusPeers(o.sub, (peer) => this.kept.silence(peer))
    this.subscribedOnce = o.sub.status === 'ready'
    o.sub.on('ready', this.onSubReady)
    o.sub.on('close', this.onSubDown)
    o.pub.on('ready', this.onPubReady)
    this.beatTimer = setInterval(() => this.beat(), BEAT_MS)
    this.beatTimer.unref()
  }

  /**
   * publish a batch; `done` once every live node has it. Packets that need batch version 3
   * (bus-codec.ts: binary MQTT 5 properties) go in batches of their own, in order, so that a node
   * of an older release, which refuses version 3, still gets every other message.
   */
  send(packets: BusPacket[], done: Done): number {
    const runs = versionRuns(packets)
    if (runs.length === 1) return this.sendOne(packets, done)
    let pending = runs.length
    let error: Error | null | undefined
    for (const run of runs) {
      this.sendOne(run, (err) => {
        error ??= err
        if (--pending === 0) done(error)
      })
    }
    return this.seq
  }

  /** the number of the batch, the last one when send splits */
  private sendOne(packets: BusPacket[], done: Done): number {
    const seq = ++this.seq
    const buf = encodeBatch(this.o.origin, packets, seq, this.base(seq))
    const b: Outstanding = { seq, buf, done, since: 0, count: 0, own: false, sending: false, short: false }
    this.outstanding.set(seq, b)
    this.transmit(b)
    return seq
  }

  /** a message on the presence channel */
  onPresence(text: string): void {
    const sep = text.indexOf(' ')
    const peer = text.slice(0, sep)
    if (sep <= 0 || peer === this.o.origin) return
    const rest = text.slice(sep + 1)
    if (rest.startsWith('resend ') || rest.startsWith('resent ')) return this.onResend(peer, rest)
    if (rest === NODE_CHANNELS) return this.peers.listensOnNodeChannels(peer)
    const base = Number(rest)
    if (rest !== 'bye' && !Number.isFinite(base)) return
    if (rest === 'bye') {
      this.kept.left(peer)
      this.peers.left(peer)
      this.o.onPeer?.(peer, 'bye')
      this.recheck()
      return
    }
    this.peers.heard(peer)
    this.o.onPeer?.(peer, base)
  }

  /**
   * ask `target` to send its batches `from` up to `to` (excluded) again: this node missed them.
   * Pub/sub keeps nothing for a link that is not subscribed (the target's right after a Redis
   * restart): while the PUBLISH reached fewer links than there are live nodes and `stillAsking`,
   * asked again every ASK_RETRY_MS (bus-keep.ts; bus-order.ts)
   */
  askResend(target: string, from: number, to: number, stillAsking: () => boolean = () => false): void {
    askResend(this.o.pub, this.presence, `${this.o.origin} resend ${target} ${from} ${to}`, () => this.peers.expected(), () => !this.closed && stillAsking())
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    clearInterval(this.beatTimer)
    clearTimeout(this.retryTimer)
    this.o.sub.off('ready', this.onSubReady)
    this.o.sub.off('close', this.onSubDown)
    this.o.pub.off('ready', this.onPubReady)
    if (this.o.pub.status === 'ready') this.o.pub.publish(this.presence, `${this.o.origin} bye`).catch(() => {})
    // held batches fail (their PUBACKs never leave); those still on their way to Redis settle
    // when it answers, as before
    for (const b of [...this.outstanding.values()]) {
      if (b.short && !b.sending) this.settle(b, new Error('cluster bus closed before every node got the message'))
    }
  }

  // ---- internals -------------------------------------------------------------------------------

  private base(fallback: number): number {
    for (const seq of this.outstanding.keys()) return seq
    return fallback
  }

  /** batches go on this node's own channel now (bus-channels.ts) */
  useOwnChannel(): boolean {
    return !this.o.sharedOnly && this.peers.useNodeChannel()
  }

  private transmit(b: Outstanding): void {
    b.sending = true
    // each copy where every live node listens now: a copy held for a peer of the previous release
    // that was heard in the meantime goes on the shared channel
    b.own = this.useOwnChannel()
    this.o.pub.publish(b.own ? this.own : this.o.channel, b.buf).then(
      (count) => {
        b.sending = false
        b.count = count
        b.err = undefined
        if (count >= this.peers.expected(!b.own)) return this.settle(b)
        // closing: nobody retries any more, and the PUBACK must not leave
        if (this.closed) return this.settle(b, new Error('cluster bus closed before every node got the message'))
        this.markShort(b)
      },
      (err: Error) => {
        b.sending = false
        if (this.closed) return this.settle(b, err)
        this.o.onError(err)
        b.err = err
        this.markShort(b)
      },
    )
  }

  private markShort(b: Outstanding): void {
    if (!this.outstanding.has(b.seq)) return
    if (!b.short) {
      b.short = true
      b.since = Date.now()
      this.held.held(b.since)
    }
    this.retryTimer ??= setTimeout(this.retry, RETRY_MS)
  }

  private settle(b: Outstanding, err?: Error | null): void {
    if (!this.outstanding.delete(b.seq)) return
    if (!err) this.kept.keep(b.seq, b.buf)
    b.done(err)
    if (b.short) this.held.settled(this.outstanding.values())
  }

  /** publish the short batches again, oldest first; release those that need it no longer */
  private readonly retry = (): void => {
    this.retryTimer = undefined
    if (this.closed) return
    const shared = this.peers.expected()
    const own = this.peers.expected(false)
    const now = Date.now()
    let waiting = false
    let given = 0
    for (const b of [...this.outstanding.values()]) {
      if (!b.short || b.sending) continue
      // a copy on our own channel does not reach our link
      if (b.count >= (b.own ? own : shared) && !b.err) this.settle(b)
      else if (now - b.since > MAX_HOLD_MS) {
        given++
        this.held.released()
        this.settle(b, b.err)
      } else if (this.o.pub.status === 'ready') this.transmit(b)
      else waiting = true
    }
    if (given > 0) this.o.onError(new Error(`cluster bus: ${given} batch(es) not received by every node within ${MAX_HOLD_MS} ms, released`))
    if (waiting) this.retryTimer = setTimeout(this.retry, RETRY_MS)
  }

  /** a peer left or fell silent: batches held for it may be done */
  private recheck(): void {
    if (this.outstanding.size > 0 && !this.retryTimer) this.retryTimer = setTimeout(this.retry, 0)
  }

  /** `resend <me> <from> <to>`: publish what is kept of it again; `resent <me> ...`: that was all */
  private onResend(peer: string, rest: string): void {
    const [kind, target, from, to, had] = rest.split(' ')
    if (target !== this.o.origin) return
    if (kind === 'resent') return this.o.onResent?.(peer, Number(from), Number(to), parseRuns(had))
    if (kind !== 'resend' || this.closed) return
    const [first, end] = [Number(from), Number(to)]
    const found = this.kept.resend(this.o, this.presence, peer, first, end)
    if (found < end - first) this.o.onError(new Error(`cluster bus: ${peer} asked for batches ${first} to ${end - 1} again; ${end - first - found} of them were no longer kept (${this.kept.describe()})`))
  }

  private beat(): void {
    const { pub } = this.o
    this.kept.trim()
    if (this.outstanding.size > 0) this.recheck()
    if (this.closed || pub.status !== 'ready' || !this.peers.mayBeat()) return
    // before the beat, on the same link: a peer that hears the beat knows where we listen
    if (!this.o.sharedOnly) pub.publish(this.presence, `${this.o.origin} ${NODE_CHANNELS}`).catch(() => {})
    pub.publish(this.presence, `${this.o.origin} ${this.base(this.seq + 1)}`).catch(() => {})
  }

  /** the subscriber link was ready before: its next 'ready' is a re-subscription */
  private subscribedOnce: boolean

  private readonly onSubReady = (): void => {
    this.peers.subReady()
    if (this.subscribedOnce) this.o.onResubscribed?.()
    this.subscribedOnce = true
  }

  private readonly onSubDown = (): void => {
    if (this.peers.subDown()) this.kept.linkDown()
  }

  private readonly onPubReady = (): void => {
    this.peers.pubReady()
    this.beat()
  }
}
