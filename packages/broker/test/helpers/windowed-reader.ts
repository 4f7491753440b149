/**
 * A raw MQTT client's side of the Receive Maximum: reads the QoS 1 PUBLISHes it gets, counts how
 * many it holds unacknowledged (`maxOutstanding`: every PUBLISH arrived on the socket, read or
 * not, minus the PUBACKs sent before; a lower bound of what the server has unacknowledged, so more
 * than the Receive Maximum here is a server over it [MQTT-3.3.4-9]) and acknowledges only when
 * the window is full, so the server must wait for each PUBACK.
 */
import type { Any, Raw } from '../conformance/raw.js'

export interface Received {
  payload: string
  dup: boolean
  messageId: number
}

export class WindowedReader {
  readonly received: Received[] = []
  /** received and not acknowledged, oldest first */
  readonly outstanding: Received[] = []
  /** payloads acknowledged */
  readonly acked: string[] = []
  maxOutstanding = 0
  private read = 0
  /** PUBLISHes arrived (c.packets scanned up to `scanned`) and PUBACKs sent */
  private arrived = 0
  private scanned = 0
  private acks = 0

  constructor(
    readonly c: Raw,
    readonly receiveMaximum: number,
  ) {}

  get payloads(): string[] {
    return this.received.map((r) => r.payload)
  }
  get dups(): number {
    return this.received.filter((r) => r.dup).length
  }

  /**
   * Read `n` more PUBLISHes (other packets are skipped), each within `ms`. With `ackEvery`, each
   * time the window is full the oldest `ackEvery` are acknowledged; at the end all but the last
   * `keepLast` are (with `ackEvery` 0 nothing ever is).
   */
  async take(n: number, { ackEvery = 0, keepLast = -1, ms = 10_000 }: { ackEvery?: number; keepLast?: number; ms?: number } = {}): Promise<Received[]> {
    const got: Received[] = []
    while (got.length < n) {
      // the window full: nothing more can come before a PUBACK
      if (ackEvery > 0 && this.outstanding.length >= this.receiveMaximum) this.ack(ackEvery)
      const p = await this.nextPublish(ms)
      const r = { payload: String(p.payload), dup: p.dup === true, messageId: p.messageId as number }
      got.push(r)
      this.received.push(r)
      this.outstanding.push(r)
    }
    this.count()
    if (ackEvery > 0 && keepLast >= 0) this.ack(this.outstanding.length - keepLast)
    return got
  }

  /** acknowledge the oldest `k` outstanding */
  ack(k: number): void {
    this.count()
    for (const r of this.outstanding.splice(0, Math.max(0, k))) {
      this.c.send({ cmd: 'puback', messageId: r.messageId })
      this.acked.push(r.payload)
      this.acks++
    }
  }

  /** what arrived since, against the PUBACKs sent so far */
  private count(): void {
    const packets = this.c.packets
    for (; this.scanned < packets.length; this.scanned++) if (packets[this.scanned]!.cmd === 'publish') this.arrived++
    this.maxOutstanding = Math.max(this.maxOutstanding, this.arrived - this.acks)
  }

  private async nextPublish(ms: number): Promise<Any> {
    const end = Date.now() + ms
    for (;;) {
      this.count()
      while (this.read < this.c.packets.length) {
        const p = this.c.packets[this.read++]!
        if (p.cmd === 'publish') return p
      }
      if (this.c.closed) throw new Error(`connection closed after ${this.received.length} PUBLISHes`)
      if (Date.now() > end) throw new Error(`no PUBLISH within ${ms} ms (${this.received.length} so far, ${this.outstanding.length} unacknowledged)`)
      await new Promise((r) => setTimeout(r, 5))
    }
  }
}
