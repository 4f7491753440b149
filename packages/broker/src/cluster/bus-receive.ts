/**
 * Receiving side of the cluster bus (bus.ts): the batches other nodes publish, read on the
 * subscriber link, on the shared bus channel (nodes of the previous release, and any node while
 * some live node listens only there) and on the other nodes' own channels (PSUBSCRIBE patterns
 * that match every node's but this one's, bus-channels.ts); the pressure signal and the progress
 * lines on the control link. Then each batch goes in order per origin (bus-order.ts) to the
 * local subscribers that match.
 */
import type { Redis } from 'ioredis'
import { RESENT, type BusPacket } from './bus-codec.js'
import { decodeBatch, originOf } from './bus-decode.js'
import { otherNodesPatterns } from './bus-channels.js'
import type { BusOrder } from './bus-order.js'
import type { BusProgress } from './bus-progress.js'
import type { BusPressure } from './bus-pressure.js'
import type { SeenByOrigin, SeenWindow } from './bus-seen.js'
import type { createInputGate, createLagProbe } from './bus-flow.js'
import { UNWATCHED } from '../seam/index.js'

type Listener = (packet: BusPacket, cb: typeof UNWATCHED) => void

/** batches read from Redis, for metrics (culex_bus_batches_read_total) */
export interface BusStats {
  /** batches of other nodes */
  fromPeers: number
  /** this node's own batches, read back on the shared bus channel and dropped */
  ownReadBack: number
}

export interface RemoteDeliveryOptions {
  seen: SeenByOrigin
  input: ReturnType<typeof createInputGate>
  listenersFor: (topic: string) => Listener[]
  onShed?: () => void
  onCopyDropped?: () => void
}

/** hands a batch of another node to the local subscribers (in order: bus-order.ts calls it) */
export function remoteDelivery(o: RemoteDeliveryOptions): (packets: BusPacket[], from: string) => void {
  const { seen, input, listenersFor } = o
  return (packets, from) => {
    let window: SeenWindow | undefined
    // straight to the matching local listeners: mqemitter's queue (its
    // concurrency limit) recurses once per queued message that matches
    // nothing, and every node receives every message, so a large batch
    // would overflow the stack. Remote messages cannot be pushed back on
    // as they arrive: once this node's subscribers are behind by highWater
    // bytes, its QoS 0 ones are shed [MQTT-4.3.1-1: at most once], QoS 1/2
    // ones delivered, and no more is read from Redis until the backlog is
    // down (bus-flow.ts); the pressure signal holds the publishers on the
    // other nodes meanwhile.
    // one match per message, not one per topic per batch: the subscriptions can change while a
    // batch is delivered (through the listeners' own work), and a per-batch cache of the matches
    // lost a message in share-join-order.test.ts (2 runs of 4)
    for (let n = 0; n < packets.length; n++) {
      const p = packets[n]!
      if (p.qos === 0) {
        if (input.full()) {
          o.onShed?.()
          continue
        }
      } else if (p.brokerId !== undefined) {
        window ??= seen.of(from)
        const counter = p.brokerCounter ?? 0
        if (p[RESENT] === true && window.has(p.brokerId, counter)) {
          o.onCopyDropped?.()
          continue
        }
        window.add(p.brokerId, counter)
      }
      const listeners = listenersFor(p.topic)
      // nothing waits for a remote delivery: UNWATCHED spares it the Immediate that would call back
      for (let i = 0; i < listeners.length; i++) listeners[i]!(p, UNWATCHED)
      // Aedes writes them in a later turn: until then they count by estimate
      input.count((p.payload.length + p.topic.length + 4) * listeners.length)
    }
  }
}

export interface ListenOptions {
  sub: Redis
  control: Redis
  channel: string
  origin: string
  /** a node of the previous release: the shared channels only (bus-channels.ts) */
  sharedOnly: boolean
  presence: string
  onPresence: (text: string) => void
  order: BusOrder
  progress: BusProgress
  pressure: BusPressure
  probe: ReturnType<typeof createLagProbe>
  input: ReturnType<typeof createInputGate>
  stats: BusStats
  onError: (err: Error) => void
}

/** subscribes the links and reads what comes */
export function listen(o: ListenOptions): void {
  const { sub, control: ctl, channel, origin, order, progress, pressure, probe, input, stats, onError } = o
  const batch = (message: Buffer): void => {
    try {
      const b = decodeBatch(message)
      stats.fromPeers++
      probe.onBatch()
      order.batch(b.origin, b.seq, b.base, b.packets)
      const at = order.position(b.origin)
      if (at !== undefined) progress.delivered(b.origin, at)
      if (input.full()) {
        input.pause()
        probe.stale()
      }
      pressure.check()
    } catch (err) {
      onError(err as Error)
    }
  }

  // the pressure signal and the progress lines have a connection of their own (bus.ts says why)
  const progressPatterns = o.sharedOnly ? [] : otherNodesPatterns(progress.channel, origin)
  ctl.on('error', (err: Error) => onError(err))
  ctl.on('message', (ch: string, message: string) => {
    if (ch === pressure.channel) pressure.onControl(message)
    else if (ch === progress.channel) progress.onMessage(message)
  })
  ctl.subscribe(pressure.channel, progress.channel).catch((err: Error) => onError(err))
  if (progressPatterns.length > 0) {
    const mine = new Set(progressPatterns)
    ctl.on('pmessage', (pattern: string, _ch: string, message: string) => {
      if (mine.has(pattern)) progress.onMessage(message)
    })
    ctl.psubscribe(...progressPatterns).catch((err: Error) => onError(err))
  }

  // 'messageBuffer' only: while any 'message' listener exists ioredis turns every message,
  // each whole bus batch included, into a string
  sub.on('messageBuffer', (chBuf: Buffer, message: Buffer) => {
    const ch = chBuf.toString()
    if (ch === o.presence) return o.onPresence(message.toString())
    if (probe.onMessage(ch)) return
    if (ch !== channel) return
    // our own batches come back on the shared channel
    try {
      if (originOf(message) === origin) {
        stats.ownReadBack++
        return
      }
    } catch (err) {
      return onError(err as Error)
    }
    batch(message)
  })
  const patterns = o.sharedOnly ? [] : otherNodesPatterns(channel, origin)
  if (patterns.length > 0) {
    // never our own: the patterns match every node's channel but ours
    const mine = new Set(patterns)
    sub.on('pmessageBuffer', (pattern: string, _ch: Buffer, message: Buffer) => {
      if (mine.has(pattern)) batch(message)
    })
  }
  const subscribe = (): void => {
    sub.subscribe(channel, probe.channel, o.presence).catch((err: Error) => onError(err))
    if (patterns.length > 0) sub.psubscribe(...patterns).catch((err: Error) => onError(err))
  }
  // a probe out when the link dropped is not coming back; a new socket is not paused
  sub.on('ready', () => {
    probe.reset()
    input.reset()
  })
  // ioredis re-subscribes by itself after a reconnect (autoResubscribe), patterns included
  if (sub.status === 'ready') subscribe()
  else sub.once('ready', subscribe)
}
