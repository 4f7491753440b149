/**
 * Receiving side of the cluster bus' delivery guarantee (see bus-delivery.ts): batches of each
 * origin are handed to the local subscribers once each and in the order they were sent, whatever
 * order they arrive in. A batch can arrive twice (the sender sends it again when Redis' PUBLISH
 * reply says a node did not get it, and the others did) or after a later one (the later one
 * reached a node whose subscriber link had just subscribed again, the earlier one did not and
 * comes with the retry), so per origin this keeps the next number expected and holds batches
 * that came early until the gap is filled, keeping one publisher's messages in order
 * [MQTT-4.6.0-6].
 *
 * A gap is given up (the batches held are delivered, the missing ones counted as missed) when
 * the sender says it no longer holds them (`base`, on every batch and presence beat), when the
 * origin falls silent (its node died), or when too much is held. Before giving up a gap the
 * sender's base has passed, this node asks the sender for it (bus-keep.ts: a sender keeps what
 * it settled while this node looked dead) and waits up to RESEND_WAIT_MS, or until the sender
 * says it sent all it had (and which: one of those still missing then was lost on the way and is
 * asked for again, a few times at most). Pub/sub keeps nothing: a request, or its answer, that Redis lost (a
 * restart) or could not hand to an unsubscribed link is asked again whenever this node's
 * subscriber link subscribes again (`reask`, the wait starting over; the clock does not run while
 * that link is down, as nothing can be heard then) and while the request's PUBLISH reached fewer
 * links than there are live nodes (bus-delivery.ts). Copies of an answer are dropped as copies.
 */
import type { BusPacket } from './bus-codec.js'

/** batches held behind one gap at most */
const MAX_HELD = 10_000
/** answers that said the sender had batches this node then still lacked: asked again this often per gap at most */
const MAX_LOST_AGAIN = 3
/** how long a gap waits for the sender to send it again before it is given up */
export const RESEND_WAIT_MS = 5000

interface OriginState {
  /** number of the next batch to deliver */
  next: number
  /** batches that came early, by number */
  held: Map<number, BusPacket[]>
  /** last time the origin was heard (a batch or a presence beat) */
  heard: number
  /**
   * a gap asked for again: given up below `base` once the sender answered every request
   * (`pending`, by `<from>-<to>`: an answer to an earlier gap's request does not count), or at `until`
   */
  asked?: { base: number; why: string; until: number; pending: Set<string>; lostAgain: number }
}

export interface OrderStats {
  /** batches received twice and dropped */
  duplicates: number
  /** batches given up: the origin no longer had them, or fell silent */
  missed: number
}

/** how long a forgotten origin's next number is remembered, should it turn out alive */
const GONE_MS = 60_000

export class BusOrder {
  private readonly origins = new Map<string, OriginState>()
  /** origins forgotten lately (silent, or bye): where they were, so a copy sent earlier is not delivered twice */
  private readonly gone = new Map<string, { next: number; at: number }>()
  private lastTick: number | undefined
  readonly stats: OrderStats = { duplicates: 0, missed: 0 }

  constructor(
    private readonly deliver: (packets: BusPacket[], origin: string) => void,
    /** a gap was given up: `count` batches of `origin` will never arrive */
    private readonly onMissed: (origin: string, count: number, why: string) => void = () => {},
    /** ask `origin` to send its batches `from` up to `to` (excluded) again; none: give gaps up at once */
    private readonly askResend?: (origin: string, from: number, to: number) => void,
  ) {}

  /** a batch from another node; seq/base undefined = an older node, delivered as it comes */
  batch(origin: string, seq: number | undefined, base: number | undefined, packets: BusPacket[]): void {
    if (seq === undefined) return this.deliver(packets, origin)
    let st = this.origins.get(origin)
    if (!st) {
      // first batch seen from this origin: those it settled before were not meant for this node,
      // those it still holds (from base on) may come again; an origin taken for dead and heard
      // again goes on where it was (a re-sent or kept copy carries the base of its first sending)
      const was = this.gone.get(origin)
      this.gone.delete(origin)
      st = { next: was?.next ?? base ?? seq, held: new Map(), heard: 0 }
      this.origins.set(origin, st)
    }
    st.heard = Date.now()
    if (base !== undefined) this.gap(origin, st, base, 'a batch said the sender holds none of them')
    if (seq < st.next || st.held.has(seq)) {
      this.stats.duplicates++
      return
    }
    if (seq > st.next) {
      st.held.set(seq, packets)
      if (st.held.size > MAX_HELD) this.skipTo(origin, st, Math.min(...st.held.keys()), `more than ${MAX_HELD} batches held behind them`)
      return
    }
    st.next++
    this.deliver(packets, origin)
    this.drain(origin, st)
  }

  /** the last batch of `origin` delivered in order, undefined before any */
  position(origin: string): number | undefined {
    const st = this.origins.get(origin)
    return st ? st.next - 1 : undefined
  }

  /** a presence beat: the origin is alive and holds nothing older than `base` */
  beat(origin: string, base: number): void {
    const st = this.origins.get(origin)
    if (!st) return
    st.heard = Date.now()
    this.gap(origin, st, base, 'a presence beat said the sender holds none of them')
  }

  /**
   * the origin sent again all it had of batches `from` up to `to`, as asked: the rest is gone.
   * `had`: the runs it sent (undefined: an older node, which does not say). They came before this
   * answer on the same link, so one still missing was lost on the way (this node's link dropped
   * or Redis restarted meanwhile): asked for again, up to MAX_LOST_AGAIN times per gap
   */
  resent(origin: string, from: number, to: number, had?: ReadonlyArray<readonly [number, number]>): void {
    const st = this.origins.get(origin)
    const asked = st?.asked
    if (!st || !asked?.pending.delete(`${from}-${to}`)) return
    if (had && asked.lostAgain < MAX_LOST_AGAIN) {
      const lost = this.lacking(st, had, from, to)
      if (lost.length > 0) {
        asked.lostAgain++
        asked.until = Date.now() + RESEND_WAIT_MS
        for (const [a, b] of lost) {
          asked.pending.add(`${a}-${b}`)
          this.askResend?.(origin, a, b)
        }
      }
    }
    if (asked.pending.size === 0) this.giveUp(origin, st, 'and it did not have them either')
  }

  /** the runs of `had` within `from` up to `to` this node still lacks (not delivered, not held) */
  private lacking(st: OriginState, had: ReadonlyArray<readonly [number, number]>, from: number, to: number): Array<[number, number]> {
    const out: Array<[number, number]> = []
    for (const [a, b] of had) {
      let start = -1
      const end = Math.min(b, to)
      for (let q = Math.max(a, from, st.next); q <= end; q++) {
        const lacks = q < end && !st.held.has(q)
        if (lacks && start < 0) start = q
        else if (!lacks && start >= 0) {
          out.push([start, q])
          start = -1
        }
      }
    }
    return out
  }

  /** the request for `origin`'s batches `from` up to `to` is still unanswered */
  asking(origin: string, from: number, to: number, now = Date.now()): boolean {
    const asked = this.origins.get(origin)?.asked
    return asked !== undefined && now < asked.until && asked.pending.has(`${from}-${to}`)
  }

  /**
   * this node's subscriber link subscribed again: requests sent, or answers given, while it was
   * down (or lost with a Redis restart) were never heard; ask again, and wait from now
   */
  reask(now = Date.now()): void {
    if (!this.askResend) return
    for (const [origin, st] of this.origins) {
      if (!st.asked) continue
      st.asked.until = now + RESEND_WAIT_MS
      for (const range of st.asked.pending) {
        const [from, to] = range.split('-').map(Number) as [number, number]
        this.askResend(origin, from, to)
      }
    }
  }

  /** give up the gaps whose sender did not answer within RESEND_WAIT_MS */
  expireAsks(now = Date.now()): void {
    for (const [origin, st] of this.origins) if (st.asked && now >= st.asked.until) this.giveUp(origin, st, `and it did not answer within ${RESEND_WAIT_MS} ms`)
  }

  /** the origin left (or died): deliver what it sent, in order, and forget it */
  forget(origin: string, why = 'the sender left'): void {
    const st = this.origins.get(origin)
    if (!st) return
    if (st.held.size > 0) this.skipTo(origin, st, Math.max(...st.held.keys()) + 1, why)
    this.origins.delete(origin)
    this.gone.set(origin, { next: st.next, at: Date.now() })
  }

  /**
   * every `everyMs`: forget origins silent for `silentMs` (sweep), give up unanswered gaps
   * (expireAsks); neither while this node's subscriber link is down (`listeningSince`
   * undefined: nothing can be heard, and `reask` starts the wait over once it is back). A tick
   * that comes late does neither: this process was frozen or starved, and Node runs timers
   * before it reads the sockets, so the beats and answers it has not read yet are waiting there.
   */
  tick(listeningSince: number | undefined, silentMs: number, everyMs: number, now = Date.now()): void {
    const late = this.lastTick !== undefined && now - this.lastTick > 2 * everyMs
    this.lastTick = now
    for (const [origin, g] of this.gone) if (now - g.at > GONE_MS) this.gone.delete(origin)
    if (late || listeningSince === undefined) return
    this.sweep(silentMs, listeningSince)
    this.expireAsks(now)
  }

  /** forget origins silent for `silentMs` while this node could hear them since `listeningSince` (nodes that died) */
  sweep(silentMs: number, listeningSince: number): void {
    const now = Date.now()
    for (const [origin, st] of this.origins) if (now - Math.max(st.heard, listeningSince) > silentMs) this.forget(origin, `the sender was silent for ${now - st.heard} ms`)
  }

  /** the sender holds nothing below `base` any more: ask for the gap again, or give it up */
  private gap(origin: string, st: OriginState, base: number, why: string): void {
    if (base <= st.next) return
    if (!this.askResend) return this.skipTo(origin, st, base, why)
    const from = st.asked && st.next < st.asked.base ? st.asked.base : st.next
    if (from >= base) return
    // the first request for this gap, or one for the part of it the sender settled since
    if (from === st.next) st.asked = { base, why, until: 0, pending: new Set(), lostAgain: 0 }
    const asked = st.asked!
    asked.base = base
    let missing = false
    for (let q = from; q < base && !missing; q++) missing = !st.held.has(q)
    if (!missing) return
    asked.until = Date.now() + RESEND_WAIT_MS
    asked.pending.add(`${from}-${base}`)
    this.askResend(origin, from, base)
  }

  private giveUp(origin: string, st: OriginState, answer: string): void {
    const { base, why } = st.asked!
    st.asked = undefined
    this.skipTo(origin, st, base, `${why}, ${answer}`)
  }

  /** the sender holds nothing below `base`: deliver what is held below it and move on */
  private skipTo(origin: string, st: OriginState, base: number, why: string): void {
    if (base <= st.next) return
    const from = st.next
    let missed = 0
    for (; st.next < base; st.next++) {
      const packets = st.held.get(st.next)
      if (packets) {
        st.held.delete(st.next)
        this.deliver(packets, origin)
      } else missed++
    }
    this.drain(origin, st)
    if (missed > 0) {
      this.stats.missed += missed
      this.onMissed(origin, missed, `${why} (batches ${from} to ${base - 1}, those not held)`)
    }
  }

  private drain(origin: string, st: OriginState): void {
    for (let p = st.held.get(st.next); p; p = st.held.get(st.next)) {
      st.held.delete(st.next)
      st.next++
      this.deliver(p, origin)
    }
  }
}
