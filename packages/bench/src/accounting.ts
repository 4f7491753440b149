/**
 * Correctness accounting. A "stream" is what one subscriber receives from one
 * publisher: sequence numbers 0, 1, 2, ... A bitset per stream tells new
 * messages from duplicates; a message below the highest sequence seen so far
 * arrived out of order. Losses are settled at the end against what each
 * publisher sent.
 */
import type { QoS } from './options.js'

export type RecordOutcome = 'new' | 'out_of_order' | 'duplicate'

export class SequenceTracker {
  unique = 0
  duplicated = 0
  outOfOrder = 0
  maxSeq = -1
  private bits = new Uint32Array(256)

  record(seq: number): RecordOutcome {
    if (!Number.isInteger(seq) || seq < 0) throw new RangeError(`bad sequence number ${seq}`)
    const word = seq >>> 5
    if (word >= this.bits.length) this.grow(word)
    const mask = 1 << (seq & 31)
    const cur = this.bits[word] as number
    if (cur & mask) {
      this.duplicated++
      return 'duplicate'
    }
    this.bits[word] = cur | mask
    this.unique++
    if (seq < this.maxSeq) {
      this.outOfOrder++
      return 'out_of_order'
    }
    this.maxSeq = seq
    return 'new'
  }

  /** Holes below the highest sequence seen: messages missing so far. */
  get gaps(): number {
    return this.maxSeq + 1 - this.unique
  }

  has(seq: number): boolean {
    const word = seq >>> 5
    if (word >= this.bits.length) return false
    return ((this.bits[word] as number) & (1 << (seq & 31))) !== 0
  }

  private grow(word: number): void {
    let n = this.bits.length
    while (n <= word) n *= 2
    const next = new Uint32Array(n)
    next.set(this.bits)
    this.bits = next
  }
}

/** What one subscriber saw of one publisher, shipped between threads. */
export interface StreamCounts {
  sub: number
  pub: number
  unique: number
  duplicated: number
  outOfOrder: number
  maxSeq: number
}

/** What one publisher did: `sent` sequence numbers, `unacked` of them never acknowledged. */
export interface PublisherCounts {
  id: number
  sent: number
  unacked: number
}

export interface Tally {
  expected: number
  received: number
  lost: number
  duplicated: number
  outOfOrder: number
  unexpected: number
  unacked: number
}

/**
 * Settles losses. `expectedPairs` lists every [subscriber, publisher] stream
 * that should carry all of that publisher's messages. Unacknowledged QoS 1/2
 * publishes are left out of what a subscriber is owed.
 */
export function tally(
  publishers: PublisherCounts[],
  streams: StreamCounts[],
  expectedPairs: Array<[number, number]>,
  unexpected = 0,
  groups: ReadonlyArray<{ members: number[]; pubs: number[] }> = [],
): Tally {
  const pubs = new Map(publishers.map((p) => [p.id, p]))
  const byPair = new Map(streams.map((s) => [`${s.sub}:${s.pub}`, s]))
  const t: Tally = { expected: 0, received: 0, lost: 0, duplicated: 0, outOfOrder: 0, unexpected, unacked: 0 }
  for (const p of publishers) t.unacked += p.unacked
  const expectedKeys = new Set<string>()
  for (const [sub, pub] of expectedPairs) {
    const key = `${sub}:${pub}`
    expectedKeys.add(key)
    const p = pubs.get(pub)
    const owed = p ? Math.max(0, p.sent - p.unacked) : 0
    const s = byPair.get(key)
    const got = s ? Math.min(s.unique, p ? p.sent : s.unique) : 0
    t.expected += p ? p.sent : 0
    t.received += got
    t.lost += Math.max(0, owed - got)
  }
  // shared subscription groups: each publisher's messages are owed once to the group, spread over
  // its members. A message at two members shows only as the group getting more than was sent.
  for (const g of groups) {
    for (const pub of g.pubs) {
      const p = pubs.get(pub)
      const sent = p ? p.sent : 0
      const owed = p ? Math.max(0, p.sent - p.unacked) : 0
      let got = 0
      for (const m of g.members) {
        const key = `${m}:${pub}`
        expectedKeys.add(key)
        got += byPair.get(key)?.unique ?? 0
      }
      t.expected += sent
      t.received += Math.min(got, sent)
      t.lost += Math.max(0, owed - got)
      t.duplicated += Math.max(0, got - sent)
    }
  }
  for (const s of streams) {
    if (!expectedKeys.has(`${s.sub}:${s.pub}`)) {
      t.unexpected += s.unique + s.duplicated
      continue
    }
    t.duplicated += s.duplicated
    t.outOfOrder += s.outOfOrder
  }
  return t
}

export interface Verdict {
  valid: boolean
  invalid_reason: string | null
}

/** QoS 0 may lose (but not duplicate); QoS 1 may duplicate but not lose; QoS 2 neither. */
export function judge(qos: QoS, t: Tally): Verdict {
  const reasons: string[] = []
  if (t.lost > 0 && qos > 0) reasons.push(`${t.lost} message(s) lost at QoS ${qos}, which must not lose`)
  if (t.duplicated > 0 && qos !== 1) {
    reasons.push(`${t.duplicated} duplicate(s) at QoS ${qos}, which must not duplicate`)
  }
  if (t.unacked > 0 && qos > 0) reasons.push(`${t.unacked} publish(es) never acknowledged by the broker`)
  if (t.unexpected > 0) reasons.push(`${t.unexpected} message(s) delivered to a subscriber that should not get them`)
  return reasons.length ? { valid: false, invalid_reason: reasons.join('; ') } : { valid: true, invalid_reason: null }
}
