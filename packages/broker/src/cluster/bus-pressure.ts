/**
 * Back-pressure across nodes (Redis pub/sub has none), for the cluster bus (bus.ts). A node whose
 * deliveries pile up (its subscribers or its CPU cannot keep up) says so on the control channel
 * (`<bus channel>:pressure`, `<origin>:1` / `<origin>:0`); while any peer is under pressure, the
 * others hold the emit callbacks, so Aedes stops reading their publishers' sockets and TCP slows
 * the publishers down, as on a single node. The signal is refreshed while it lasts and expires by
 * itself, so a lost "off" (or a dead peer) cannot stall the cluster for longer than
 * PRESSURE_TTL_MS.
 *
 * Two things put a node under pressure: its subscribers' backlog (bytes) and its input lag
 * (bus-flow.ts). The control channel has a connection of its own (bus.ts): on the subscriber one,
 * a node's signal would wait behind the bus traffic its peers are behind on (every node reads its
 * own batches back, too).
 */
import type { Redis } from 'ioredis'
import type { InputGate } from './bus-flow.js'

type Done = (err?: Error | null) => void

const PRESSURE_TTL_MS = 2000
/** input lag (bus-flow.ts) at which a node asks its peers to hold, and under which it lets them go again */
const LAG_HIGH_MS = 100
const LAG_LOW_MS = 25

export interface PressureOptions {
  pub: Redis
  /** `<bus channel>:pressure` */
  channel: string
  origin: string
  onError: (err: Error) => void
  /** what this node takes in from its peers (bus-flow.ts) */
  input: Pick<InputGate, 'paused'>
  /** the input lag now (bus-flow.ts LagProbe) */
  lag: () => number
  /** bytes waiting for this node's client sockets */
  backlog: () => number
  /** backlog under which the pressure ends */
  lowWater: number
}

export class BusPressure {
  readonly channel: string
  private on = false
  private refresh: NodeJS.Timeout | undefined
  private poll: NodeJS.Timeout | undefined
  private readonly lagWatch: NodeJS.Timeout
  /** peers under pressure: origin -> expiry time */
  private readonly peers = new Map<string, number>()
  /** emit callbacks held while a peer is under pressure */
  private held: Done[] = []
  private expiryTimer: NodeJS.Timeout | undefined

  constructor(private readonly o: PressureOptions) {
    this.channel = o.channel
    // a probe out for longer than LAG_HIGH_MS puts the node under pressure before it is back
    this.lagWatch = setInterval(() => {
      if (!this.on && o.lag() >= LAG_HIGH_MS) this.set(true)
    }, LAG_HIGH_MS / 4)
    this.lagWatch.unref()
  }

  /** after a batch came in: under pressure once the input is paused or lags */
  check(): void {
    if (!this.on && (this.o.input.paused || this.o.lag() >= LAG_HIGH_MS)) this.set(true)
  }

  /** some peer is under pressure (emit callbacks are held) */
  peersPressured(): boolean {
    if (this.peers.size === 0) return false
    const now = Date.now()
    for (const [peer, until] of this.peers) if (until <= now) this.peers.delete(peer)
    return this.peers.size > 0
  }

  /** hold an emit callback until no peer is under pressure */
  hold(cb: Done): void {
    this.held.push(cb)
  }

  /** a message on the control channel */
  onControl(text: string): void {
    const sep = text.lastIndexOf(':')
    const peer = text.slice(0, sep)
    if (peer === this.o.origin) return
    if (text.slice(sep + 1) === '1') {
      this.peers.set(peer, Date.now() + PRESSURE_TTL_MS)
      this.expiryTimer ??= setInterval(this.releaseHeld, PRESSURE_TTL_MS / 4)
    } else {
      this.peers.delete(peer)
      this.releaseHeld()
    }
  }

  close(): void {
    clearInterval(this.refresh)
    clearInterval(this.poll)
    clearInterval(this.expiryTimer)
    clearInterval(this.lagWatch)
    this.peers.clear()
    this.releaseHeld()
  }

  private signal(on: boolean): void {
    this.o.pub.publish(this.channel, `${this.o.origin}:${on ? 1 : 0}`).catch((err: Error) => this.o.onError(err))
  }

  /** not while the input is paused, nor before a probe came back since it was */
  private relieved(): boolean {
    return !this.o.input.paused && this.o.backlog() <= this.o.lowWater && this.o.lag() < LAG_LOW_MS
  }

  private set(on: boolean): void {
    this.on = on
    this.signal(on)
    clearInterval(this.refresh)
    clearInterval(this.poll)
    this.refresh = on ? setInterval(() => this.signal(true), PRESSURE_TTL_MS / 3) : undefined
    this.poll = on ? setInterval(() => this.relieved() && this.set(false), 10) : undefined
  }

  private readonly releaseHeld = (): void => {
    if (this.peersPressured()) return
    clearInterval(this.expiryTimer)
    this.expiryTimer = undefined
    const callbacks = this.held
    this.held = []
    for (const cb of callbacks) cb()
  }
}
