/**
 * Accounting of one publisher -> subscriber stream (sequence numbers 0, 1, 2, ... in payloads),
 * after packages/bench/src/accounting.ts: a flag byte per sequence number tells a first arrival
 * from a duplicate; an arrival below the highest number seen so far is out of order. A message
 * the broker acknowledged (PUBACK) and the subscriber never got is lost; one never acknowledged
 * (the publisher's connection died first) is owed to nobody.
 */
const ACKED = 1
const RECEIVED = 2
const FAILED = 4

export interface StreamCounts {
  stream: string
  sent: number
  acknowledged: number
  delivered: number
  lost: number
  duplicated: number
  outOfOrder: number
  /** first lost sequence numbers, to read the logs by */
  lostSample: number[]
}

export class Stream {
  private flags = new Uint8Array(4096)
  private nextSeq = 0
  ackCount = 0
  private failCount = 0
  private ackedReceived = 0
  unique = 0
  arrivals = 0
  duplicated = 0
  outOfOrder = 0
  maxSeq = -1
  /** arrival order (sequence numbers), kept when `keepOrder` */
  readonly order: number[] = []

  constructor(
    readonly name: string,
    private readonly keepOrder = false,
  ) {}

  private grow(seq: number): void {
    if (seq < this.flags.length) return
    let n = this.flags.length
    while (n <= seq) n *= 2
    const next = new Uint8Array(n)
    next.set(this.flags)
    this.flags = next
  }

  /** the next sequence number to publish */
  sent(): number {
    this.grow(this.nextSeq)
    return this.nextSeq++
  }

  get sentCount(): number {
    return this.nextSeq
  }

  /** published, neither acknowledged nor failed yet */
  get outstanding(): number {
    return this.nextSeq - this.ackCount - this.failCount
  }

  /** called at each first PUBACK (a scenario times its outage by it) */
  onAcked?: (seq: number) => void

  acked(seq: number): void {
    const f = this.flags[seq]!
    if (f & ACKED) return
    this.flags[seq] = f | ACKED
    this.ackCount++
    this.onAcked?.(seq)
    if (f & RECEIVED) this.ackedReceived++
  }

  failed(seq: number): void {
    const f = this.flags[seq]!
    if (f & (FAILED | ACKED)) return
    this.flags[seq] = f | FAILED
    this.failCount++
  }

  received(seq: number): void {
    this.arrivals++
    if (this.keepOrder) this.order.push(seq)
    if (!Number.isInteger(seq) || seq < 0) return
    this.grow(seq)
    const f = this.flags[seq]!
    if (f & RECEIVED) {
      this.duplicated++
      return
    }
    this.flags[seq] = f | RECEIVED
    this.unique++
    if (f & ACKED) this.ackedReceived++
    if (seq < this.maxSeq) this.outOfOrder++
    else this.maxSeq = seq
  }

  /** acknowledged, not received (yet) */
  missing(): number {
    return this.ackCount - this.ackedReceived
  }

  counts(): StreamCounts {
    const lostSample: number[] = []
    for (let i = 0; i < this.nextSeq && lostSample.length < 10; i++) if ((this.flags[i]! & (ACKED | RECEIVED)) === ACKED) lostSample.push(i)
    return {
      stream: this.name,
      sent: this.nextSeq,
      acknowledged: this.ackCount,
      delivered: this.unique,
      lost: this.missing(),
      duplicated: this.duplicated,
      outOfOrder: this.outOfOrder,
      lostSample,
    }
  }
}
