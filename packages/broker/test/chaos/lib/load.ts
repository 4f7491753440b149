/**
 * The chaos suite's load: QoS 1 publishers, each paired with one persistent (`clean: false`)
 * QoS 1 subscriber on its own topic, sequence numbers in the payloads. mqtt.js clients that
 * reconnect by themselves (through HAProxy they land on whichever node is up). The accounting
 * (stream.ts) says per publisher what was acknowledged, delivered, lost, duplicated and out of
 * order; every disconnection is timed until the client is connected again.
 */
import mqtt, { type MqttClient } from 'mqtt'
import { Stream } from './stream.js'

export interface LoadOptions {
  /** topic prefix, unique per run */
  run: string
  publishers: number
  /** total publish rate, msg/s, shared by the publishers */
  rate: number
  /** where publishers connect (one URL, or one per publisher) */
  pubUrl: string | string[]
  subUrl: string | string[]
  /** unacknowledged publishes a publisher may have outstanding; at the cap it skips its turn (the rate drops, reported as load held) */
  window?: number
}

interface Conn {
  name: string
  client: MqttClient
  connected: boolean
  /** when the connection was lost (an outage lasts until the next CONNACK) */
  downSince?: number
}

export interface Outage {
  client: string
  ms: number
}

export class Load {
  readonly streams: Stream[] = []
  private readonly pubs: Conn[] = []
  private readonly subs: Conn[] = []
  /** outages of every connection ever made */
  private readonly allOutages: Outage[] = []
  private timer: NodeJS.Timeout | undefined
  private startedAt = 0
  private stoppedAt = 0
  private acc: number[] = []

  constructor(readonly o: LoadOptions) {}

  private url(u: string | string[], i: number): string {
    return Array.isArray(u) ? u[i % u.length]! : u
  }

  private conn(name: string, url: string, clean: boolean): Conn {
    const client = mqtt.connect(url, { clientId: name, clean, reconnectPeriod: 100, connectTimeout: 5000, keepalive: 30, resubscribe: true })
    const c: Conn = { name, client, connected: false }
    client.on('connect', () => {
      c.connected = true
      if (c.downSince !== undefined) this.allOutages.push({ client: name, ms: Date.now() - c.downSince })
      c.downSince = undefined
    })
    client.on('close', () => {
      if (c.connected) c.downSince = Date.now()
      c.connected = false
    })
    client.on('error', () => {}) // refused while a node restarts: mqtt.js retries
    return c
  }

  /** subscribers first (their sessions exist before the first publish), then publishers */
  async connect(): Promise<void> {
    for (let i = 0; i < this.o.publishers; i++) {
      const stream = new Stream(`p${i}`)
      this.streams.push(stream)
      const sub = this.conn(`${this.o.run}-sub-${i}`, this.url(this.o.subUrl, i), false)
      sub.client.on('message', (_t, payload) => stream.received(Number(payload.toString())))
      this.subs.push(sub)
      await new Promise<void>((resolve, reject) => {
        sub.client.once('connect', () => sub.client.subscribe(this.topic(i), { qos: 1 }, (err) => (err ? reject(err) : resolve())))
      })
    }
    for (let i = 0; i < this.o.publishers; i++) {
      const pub = this.conn(`${this.o.run}-pub-${i}`, this.url(this.o.pubUrl, i), true)
      this.pubs.push(pub)
      await new Promise<void>((resolve) => pub.client.once('connect', () => resolve()))
    }
  }

  topic(i: number): string {
    return `chaos/${this.o.run}/${i}`
  }

  /** publish at the configured rate until stop() */
  start(): void {
    const tickMs = 20
    const perTick = this.o.rate / this.o.publishers / (1000 / tickMs)
    const window = this.o.window ?? 500
    this.acc = this.pubs.map(() => 0)
    this.startedAt = Date.now()
    this.timer = setInterval(() => {
      for (const [i, pub] of this.pubs.entries()) {
        const s = this.streams[i]!
        this.acc[i]! += perTick
        while (this.acc[i]! >= 1) {
          this.acc[i]! -= 1
          if (s.outstanding >= window) continue
          const seq = s.sent()
          pub.client.publish(this.topic(i), String(seq), { qos: 1 }, (err) => (err ? s.failed(seq) : s.acked(seq)))
        }
      }
    }, tickMs)
  }

  /**
   * Stop publishing, wait (up to `settleMs`) for the outstanding publishes to be acknowledged and
   * for the subscribers to get every acknowledged message; returns once nothing moved for `quietMs`.
   */
  async stop(settleMs = 20_000, quietMs = 3000): Promise<void> {
    clearInterval(this.timer)
    this.stoppedAt = Date.now()
    const end = Date.now() + settleMs
    let last = -1
    let lastChange = Date.now()
    for (;;) {
      const done = this.streams.every((s) => s.outstanding === 0 && s.missing() === 0)
      const progress = this.streams.reduce((n, s) => n + s.arrivals + s.ackCount, 0)
      if (progress !== last) {
        last = progress
        lastChange = Date.now()
      }
      if (done || Date.now() > end || Date.now() - lastChange > quietMs) break
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  /**
   * After the run: every subscriber disconnects cleanly and resumes its session once more.
   * Nothing is owed to it by then, so whatever it gets is a message its session kept after
   * delivering it (a stale duplicate). Resolves with how many arrived within `quietMs`.
   */
  async resumeSubscribers(quietMs = 1500): Promise<number> {
    const before = this.streams.reduce((n, s) => n + s.arrivals, 0)
    for (const [i, sub] of this.subs.entries()) {
      sub.downSince = undefined
      await sub.client.endAsync()
      const again = this.conn(sub.name, this.url(this.o.subUrl, i), false)
      again.client.on('message', (_t, payload) => this.streams[i]!.received(Number(payload.toString())))
      this.subs[i] = again
      await new Promise<void>((resolve) => again.client.once('connect', () => resolve()))
    }
    let last = -1
    for (;;) {
      const now = this.streams.reduce((n, s) => n + s.arrivals, 0)
      if (now === last) break
      last = now
      await new Promise((r) => setTimeout(r, quietMs))
    }
    return last - before
  }

  async close(): Promise<void> {
    clearInterval(this.timer)
    await Promise.all([...this.pubs, ...this.subs].map((c) => c.client.endAsync(true).catch(() => {})))
  }

  /** true once every client is connected */
  allConnected(): boolean {
    return [...this.pubs, ...this.subs].every((c) => c.connected)
  }

  clientIds(kind: 'sub' | 'pub'): string[] {
    return (kind === 'sub' ? this.subs : this.pubs).map((c) => c.name)
  }

  outages(): Outage[] {
    return [...this.allOutages]
  }

  /** seconds of load so far (until stop()) */
  get seconds(): number {
    return ((this.stoppedAt || Date.now()) - this.startedAt) / 1000
  }
}
