/**
 * Publishers and subscribers of one thread. Publishers send as fast as their
 * window and socket allow (or at a fixed rate); subscribers account every
 * delivery per publisher and record end-to-end latency for messages sent in
 * the measurement window.
 */
import { SequenceTracker, type StreamCounts } from '../accounting.js'
import { RawClient } from '../client/raw-client.js'
import { PublishTemplate } from '../client/packets.js'
import { createHistogram, encodeHistogram, recordMicros } from '../histogram.js'
import { decodePayload, FLAG_PROBE } from '../payload.js'
import { mapLimit, sleep } from './limit.js'
import type { LoadFinal, LoadPlan, LoadSnapshot, PubPlan, RunWindow, SubPlan } from './plan.js'

const BATCH = 128
const HIGH_WATER = 256 * 1024

interface Publisher {
  plan: PubPlan
  client: RawClient
  tpl: PublishTemplate
  seq: number
  scheduled: boolean
  waitingDrain: boolean
}

interface Subscriber {
  plan: SubPlan
  client: RawClient
  streams: Map<number, SequenceTracker>
  probes: Set<number>
}

export class LoadEngine {
  private pubs: Publisher[] = []
  private subs: Subscriber[] = []
  private running = false
  private readonly hist = createHistogram()
  private published = 0
  private publishedInWindow = 0
  private received = 0
  private receivedInWindow = 0
  private duplicated = 0
  private unexpected = 0
  private startNs = 0n
  private winStart = 0n
  private winEnd = 0n
  private pacer: NodeJS.Timeout | null = null

  constructor(private readonly plan: LoadPlan) {}

  private clientOptions(url: string, clientId: string, clean = true) {
    const s = this.plan.settings
    return {
      url,
      clientId,
      clean,
      keepaliveS: s.keepaliveS,
      protocol: s.protocol ?? 4,
      connectTimeoutMs: s.connectTimeoutMs,
      ...(s.username !== undefined ? { username: s.username } : {}),
      ...(s.password !== undefined ? { password: s.password } : {}),
      ...(s.ca ? { ca: s.ca } : {}),
      ...(s.insecure ? { insecure: true } : {}),
    }
  }

  async connectSubscribers(): Promise<void> {
    const s = this.plan.settings
    const results = await mapLimit(this.plan.subscribers, s.connectConcurrency, async (plan) => {
      const client = await RawClient.connect(this.clientOptions(plan.url, plan.clientId, !plan.persistent))
      const sub: Subscriber = { plan, client, streams: new Map(), probes: new Set() }
      client.onMessage = (_topic, payload) => this.onMessage(sub, payload)
      this.subs.push(sub)
      await client.subscribe(plan.filter, s.qos)
    })
    const failed = results.find((r) => !r.ok)
    if (failed && !failed.ok) throw new Error(`subscriber failed: ${failed.error.message}`)
  }

  async connectPublishers(): Promise<void> {
    const s = this.plan.settings
    const results = await mapLimit(this.plan.publishers, s.connectConcurrency, async (plan) => {
      const client = await RawClient.connect(this.clientOptions(plan.url, plan.clientId))
      const pub: Publisher = {
        plan,
        client,
        tpl: new PublishTemplate(plan.topic, s.qos, s.size, s.protocol ?? 4),
        seq: 0,
        scheduled: false,
        waitingDrain: false,
      }
      client.onAck = () => this.schedule(pub)
      client.on('drain', () => {
        if (pub.waitingDrain) {
          pub.waitingDrain = false
          this.schedule(pub)
        }
      })
      this.pubs.push(pub)
    })
    const failed = results.find((r) => !r.ok)
    if (failed && !failed.ok) throw new Error(`publisher failed: ${failed.error.message}`)
  }

  private onMessage(sub: Subscriber, payload: Buffer): void {
    const h = decodePayload(payload)
    if (!h || h.runId !== this.plan.settings.runId) {
      this.unexpected++
      return
    }
    if (h.flags & FLAG_PROBE) {
      sub.probes.add(h.pubId)
      return
    }
    let tr = sub.streams.get(h.pubId)
    if (!tr) {
      tr = new SequenceTracker()
      sub.streams.set(h.pubId, tr)
    }
    if (tr.record(h.seq) === 'duplicate') {
      this.duplicated++
      return
    }
    this.received++
    const now = process.hrtime.bigint()
    if (now >= this.winStart && now < this.winEnd) this.receivedInWindow++
    if (h.sendNs >= this.winStart && h.sendNs < this.winEnd) recordMicros(this.hist, Number(now - h.sendNs) / 1000)
  }

  /** One probe per publisher: shows that subscriptions route before the run starts. */
  sendProbes(): void {
    const s = this.plan.settings
    for (const p of this.pubs) {
      if (s.qos > 0 && p.client.inflight >= s.window) continue
      p.client.publish(p.tpl, { flags: FLAG_PROBE, runId: s.runId, pubId: p.plan.id, seq: 0, sendNs: 0n })
    }
  }

  /** [subscriber, publisher] pairs that have not seen a probe yet. */
  missingProbes(): number {
    let missing = 0
    for (const sub of this.subs) for (const p of sub.plan.pubs) if (!sub.probes.has(p)) missing++
    return missing
  }

  start(w: RunWindow): void {
    this.startNs = BigInt(w.startNs)
    this.winStart = BigInt(w.windowStartNs)
    this.winEnd = BigInt(w.windowEndNs)
    this.running = true
    const delayMs = Math.max(0, Number(this.startNs - process.hrtime.bigint()) / 1e6)
    setTimeout(() => {
      if (!this.running) return
      if (this.plan.settings.ratePerPub > 0) this.pacer = setInterval(() => this.pace(), 1)
      else for (const p of this.pubs) this.schedule(p)
    }, delayMs)
  }

  private schedule(p: Publisher): void {
    if (!this.running || p.scheduled || p.waitingDrain || this.plan.settings.ratePerPub > 0) return
    p.scheduled = true
    setImmediate(() => {
      p.scheduled = false
      this.pump(p, BATCH)
    })
  }

  /** Sends up to `max` messages; returns how many went out. */
  private pump(p: Publisher, max: number): number {
    const s = this.plan.settings
    let n = 0
    while (n < max && this.running && !p.client.closed) {
      if (s.qos > 0 && p.client.inflight >= s.window) return n
      if (p.client.buffered >= HIGH_WATER) {
        p.waitingDrain = true
        return n
      }
      this.sendOne(p)
      n++
    }
    if (n === max && s.ratePerPub === 0) this.schedule(p)
    return n
  }

  private sendOne(p: Publisher): void {
    const s = this.plan.settings
    let seq = p.seq++
    if (s.injectSeqGapEvery && seq > 0 && seq % s.injectSeqGapEvery === 0) seq = p.seq++
    const now = process.hrtime.bigint()
    p.client.publish(p.tpl, { flags: 0, runId: s.runId, pubId: p.plan.id, seq, sendNs: now })
    this.published++
    if (now >= this.winStart && now < this.winEnd) this.publishedInWindow++
  }

  private pace(): void {
    const rate = this.plan.settings.ratePerPub
    const elapsed = Number(process.hrtime.bigint() - this.startNs) / 1e9
    const due = Math.floor(elapsed * rate) + 1
    for (const p of this.pubs) {
      if (p.waitingDrain) continue
      const behind = due - p.seq
      if (behind > 0) this.pump(p, Math.min(behind, BATCH * 8))
    }
  }

  snapshot(): LoadSnapshot {
    let gaps = 0
    for (const sub of this.subs) for (const tr of sub.streams.values()) gaps += tr.gaps
    let inflight = 0
    for (const p of this.pubs) inflight += p.client.inflight
    return {
      published: this.published,
      received: this.received,
      duplicated: this.duplicated,
      unexpected: this.unexpected,
      gaps,
      inflight,
      sentByPub: this.pubs.map((p) => [p.plan.id, p.seq]),
    }
  }

  /** Stops publishing and waits (up to timeoutMs) for outstanding QoS 1/2 acknowledgements. */
  async stop(timeoutMs: number): Promise<void> {
    this.running = false
    if (this.pacer) clearInterval(this.pacer)
    this.pacer = null
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (this.pubs.every((p) => p.client.closed || (p.client.inflight === 0 && p.client.buffered === 0))) return
      await sleep(20)
    }
  }

  final(): LoadFinal {
    const streams: StreamCounts[] = []
    for (const sub of this.subs) {
      for (const [pub, tr] of sub.streams) {
        streams.push({
          sub: sub.plan.id,
          pub,
          unique: tr.unique,
          duplicated: tr.duplicated,
          outOfOrder: tr.outOfOrder,
          maxSeq: tr.maxSeq,
        })
      }
    }
    return {
      publishers: this.pubs.map((p) => ({ id: p.plan.id, sent: p.seq, unacked: p.client.inflight })),
      streams,
      unexpected: this.unexpected,
      published: this.published,
      publishedInWindow: this.publishedInWindow,
      receivedInWindow: this.receivedInWindow,
      histogram: encodeHistogram(this.hist),
    }
  }

  /** Closed connections that were not closed by us (broker dropped them). */
  dropped(): number {
    return [...this.pubs, ...this.subs].filter((c) => c.client.closed && !c.client.closing).length
  }

  async close(): Promise<void> {
    this.running = false
    if (this.pacer) clearInterval(this.pacer)
    const all = [...this.pubs.map((p) => p.client), ...this.subs.map((s) => s.client)]
    await mapLimit(all, 200, (c) => c.close())
    // persistent sessions end with a clean connect [MQTT-3.1.2-6]: nothing stays queued in the broker for them
    const kept = this.subs.filter((s) => s.plan.persistent)
    await mapLimit(kept, 50, async (s) => (await RawClient.connect(this.clientOptions(s.plan.url, s.plan.clientId, true))).close())
  }
}
