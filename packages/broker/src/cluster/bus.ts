/**
 * The cluster bus: how a message published on one node reaches subscribers
 * on the others. Replaces mqemitter-redis on the message path.
 *
 * Why not mqemitter-redis: it sends every message, local ones included, on a
 * round trip through Redis before any subscriber sees it; it issues one
 * Redis (P)SUBSCRIBE per topic filter (Redis then pattern-matches every
 * message against every filter of every node); it msgpack-encodes each
 * message and dedupes through an LRU cache with a TTL (a message matching a
 * SUBSCRIBE and a PSUBSCRIBE arrives twice). On two cores that capped the
 * cross-node path at about a third of a single node.
 *
 * Here: a node delivers to its own subscribers at once (as a single node
 * does, with the same back-pressure), and every message goes to the other
 * nodes on a Redis channel of its own that every other node listens to
 * (bus-channels.ts: one PSUBSCRIBE pattern per character of the node's id,
 * matching every node's channel but its own; the shared bus channel while
 * a node of the previous release is live), many messages per PUBLISH (one
 * batch per event-loop turn, see bus-codec.ts). Each node matches what it
 * receives against its local subscriptions (qlobber, in mqemitter) and
 * reads no batch of its own (drops them on the shared channel), so nothing
 * arrives twice and no dedupe cache is needed. Every
 * node receives every message: right for the handful of nodes a Culex
 * cluster has. The emit callback fires once local delivery is done, Redis
 * has handed the batch to every live node, and those peers delivered it to
 * their subscribers but for a bounded lead (bus-progress.ts: receiver pacing,
 * no standing queue between nodes); Aedes finishes the publish after it
 * (PUBREC for QoS 2; the QoS 1 PUBACK is held until then by
 * broker/puback-after-publish.ts) and only then reads that publisher's next
 * packets.
 *
 * Delivery guarantee (issue 8): a PUBACK waits until the message has reached
 * every live node, rather than a node recovering what it missed afterwards.
 * Redis pub/sub drops what a link that is not subscribed misses (after a
 * Redis restart a node's PUBLISHes can be replayed before the other nodes
 * subscribed again), so the PUBLISH reply count (links that got the batch) is
 * compared with the live nodes; a short batch is held and re-published until
 * they all have it (bus-delivery.ts), and receivers drop copies and restore
 * the order by batch number (bus-order.ts). No extra Redis round trip on the
 * fast path; docs/cluster.md says what it costs when a node dies.
 */
import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { createMatchingEmitter, type LocalEmitter as MQEmitterApi } from '../seam/index.js'
import { RESENT, type BusPacket } from './bus-codec.js'
import { listen, remoteDelivery, type BusStats } from './bus-receive.js'
import { BusDelivery, type HeldEpisode } from './bus-delivery.js'
import { SILENT_MS } from './bus-peers.js'
import { BusOrder } from './bus-order.js'
import { SeenByOrigin } from './bus-seen.js'
import { createInputGate, createLagProbe } from './bus-flow.js'
import { BusProgress } from './bus-progress.js'
import { BusPressure } from './bus-pressure.js'
import { releaseTogether } from '../broker/puback-after-publish.js'

type Done = (err?: Error | null) => void

export interface BusOptions {
  sub: Redis
  pub: Redis
  /** a third link, for the pressure signal only (made by the caller: cluster/redis-connect.ts) */
  control: Redis
  /** Redis channel of the cluster (several clusters can share one Redis) */
  channel: string
  concurrency?: number
  /** bytes waiting for this node's client sockets (HotCounters.queuedBytes) */
  backlog?: () => number
  /** backlog at which this node asks its peers to slow down and sheds QoS 0 from them (they resume at a quarter of it) */
  highWater?: number
  /** a QoS 0 message from a peer dropped because the backlog is at highWater */
  onShed?: () => void
  onError?: (err: Error) => void
  /** batches were held until every node had them (after a Redis restart, a node's death) */
  onHeld?: (info: HeldEpisode) => void
  /** after every node has a batch: hold it until Redis replicas have it too (replica-acks.ts) */
  confirm?: (packets: BusPacket[], done: Done) => void
  /**
   * a QoS 1/2 message this node publishes again (replica-acks.ts `isResend`): not delivered here
   * again, and flagged so the other nodes drop it where they delivered it (bus-seen.ts)
   */
  isResend?: (packet: BusPacket) => boolean
  /** a copy from another node dropped: this node had delivered the message (bus-seen.ts) */
  onCopyDropped?: () => void
  /**
   * behave as the previous release on the wire: publish and listen on the shared bus channel only
   * (bus-channels.ts); for tests of mixed clusters
   */
  sharedOnly?: boolean
}

export type ClusterBus = MQEmitterApi & {
  /** a QoS 1 publish follows in this event-loop turn (its PUBACK was held: broker/puback-after-publish.ts) */
  expect(): void
  /** batches read from Redis (culex_bus_batches_read_total) */
  readonly stats: BusStats
  /** this node's batches go on its own channel now, not on the shared one (bus-channels.ts) */
  ownChannel(): boolean
}

const noop = (): void => {}

export function createClusterBus(opts: BusOptions): ClusterBus {
  const { emitter: local, listenersFor, closed } = createMatchingEmitter({ concurrency: opts.concurrency ?? 100, matchEmptyLevels: true })
  const emitLocal = local.emit.bind(local)
  const origin = randomBytes(8).toString('hex')
  const { sub, pub, channel } = opts
  const onError = opts.onError ?? noop
  const sharedOnly = opts.sharedOnly === true
  const stats: BusStats = { fromPeers: 0, ownReadBack: 0 }

  // back-pressure across nodes (bus-pressure.ts); what this node takes in (bus-flow.ts)
  const highWater = opts.highWater ?? 1 << 20
  const lowWater = Math.floor(highWater / 4)
  const backlog = opts.backlog ?? ((): number => 0)
  const probe = createLagProbe(pub, channel, origin, onError)
  const input = createInputGate(sub, backlog, highWater, lowWater)
  const pressure = new BusPressure({ pub, channel: `${channel}:pressure`, origin, onError, input, lag: probe.lag, backlog, lowWater })

  // One batch per event-loop turn, sent once the turn's publishes are in it. A QoS 1 publish
  // reaches emit in the check phase (Aedes publishes it in the setImmediate after its PUBACK
  // write, lib/write.js), and a setImmediate set there runs only in the next turn's check phase,
  // after that turn's poll phase has read and parsed the next chunks of every publisher (a batch
  // of 20 messages waited 0.67 ms so while 60 others were parsed: docs/performance.md). So the
  // QoS 1 publishes whose PUBACK was held are counted (`expect`, from the poll phase that parsed
  // them) and the batch goes once each has reached emit. The setImmediate stays for the rest
  // (QoS 0, which emits in the poll phase, and QoS 2) and for a publish that never reached emit
  // (it failed before): the count then drops to the PUBACKs held since the last emit, those of
  // the poll phase just before (the rest is stale).
  let pending: BusPacket[] = []
  let waiters: Done[] = []
  let scheduled = false
  let turn: NodeJS.Immediate | undefined
  let expected = 0
  let heldSinceEmit = 0
  const flushTurn = (): void => {
    expected = Math.min(expected, heldSinceEmit)
    flush()
  }
  const flush = (): void => {
    if (!scheduled) return
    scheduled = false
    clearImmediate(turn)
    turn = undefined
    const packets = pending
    const callbacks = waiters
    pending = []
    waiters = []
    const settle = (err?: Error | null): void => {
      if (err) for (const cb of callbacks) cb(err)
      else if (pressure.peersPressured()) for (const cb of callbacks) pressure.hold(cb)
      // the PUBACKs leave once these have run, not at the end of the turn (puback-after-publish.ts)
      else releaseTogether(() => {
        for (const cb of callbacks) cb()
      })
    }
    // done once every live node has the batch (bus-delivery.ts), and the replicas (replica-acks.ts),
    // and the peers that report their progress delivered it (bus-progress.ts)
    let seq = 0
    const handed: Done = (err) => (err ? settle(err) : progress.wait(seq, settle))
    seq = delivery.send(packets, (err) => (err || !opts.confirm ? handed(err) : opts.confirm(packets, handed)))
    progress.sending(seq, packets)
  }

  // once each and in order per origin, whatever order and how many times batches arrive
  // a copy of a message its node published again is dropped where it was delivered (bus-seen.ts)
  const seen = new SeenByOrigin()
  const deliverRemote = remoteDelivery({ seen, input, listenersFor, onShed: opts.onShed, onCopyDropped: opts.onCopyDropped })
  const order = new BusOrder(
    deliverRemote,
    (peer, n, why) => onError(new Error(`cluster bus: ${n} batch(es) from ${peer} never arrived: ${why}`)),
    (peer, from, to) => delivery.askResend(peer, from, to, () => order.asking(peer, from, to)),
  )
  const delivery = new BusDelivery({
    pub,
    sub,
    channel,
    origin,
    onError,
    onPeer: (peer, base) => {
      if (base !== 'bye') return order.beat(peer, base)
      order.forget(peer)
      progress.forget(peer)
      seen.forget(peer)
    },
    onHeld: opts.onHeld,
    onResent: (peer, from, to, had) => order.resent(peer, from, to, had),
    onResubscribed: () => order.reask(),
    confirmed: (): number => progress.confirmed(),
    sharedOnly,
  })
  const progress = new BusProgress({
    pub,
    channel: `${channel}:progress`,
    origin,
    isLive: (peer) => delivery.peers.isLive(peer),
    onError,
    backlog,
    paceBytes: highWater / 32,
    useOwnChannel: () => delivery.useOwnChannel(),
  })
  const sweep = setInterval(() => {
    order.tick(delivery.peers.listeningSince, 4 * SILENT_MS, SILENT_MS)
    seen.prune((peer) => order.position(peer) !== undefined)
  }, SILENT_MS)
  sweep.unref()

  listen({
    sub,
    control: opts.control,
    channel,
    origin,
    sharedOnly,
    presence: delivery.presence,
    onPresence: (text) => delivery.onPresence(text),
    order,
    progress,
    pressure,
    probe,
    input,
    stats,
    onError,
  })

  const bus = local as ClusterBus
  const closeLocal = local.close.bind(local)
  bus.close = (cb: () => void): unknown => {
    clearInterval(sweep)
    delivery.close()
    progress.close()
    probe.close()
    input.close()
    opts.control.disconnect()
    pressure.close()
    return closeLocal(cb)
  }
  bus.emit = (message: unknown, cb: Done = noop): unknown => {
    if (closed()) {
      cb(new Error('cluster bus is closed'))
      return bus
    }
    const packet = message as BusPacket
    // published again (replica-acks.ts): this node's subscribers had it at its first emit
    const resent = packet.qos > 0 && opts.isResend !== undefined && opts.isResend(packet)
    if (resent) packet[RESENT] = true
    // nothing to deliver here (resent, or no local listener: a node whose clients only publish,
    // node A of the 2-node `throughput`): done once the batch is, without the local emitter's
    // round (a closure per message, mqemitter's queue slot and parallel holder)
    const local = !resent && listenersFor(packet.topic).length > 0
    let part: Done = cb
    if (local) {
      // done when delivered locally and accepted by Redis, whichever is last
      let left = 2
      let failed: Error | null = null
      part = (err) => {
        if (err && !failed) failed = err
        if (--left === 0) cb(failed)
      }
    }
    pending.push(packet)
    waiters.push(part)
    if (!scheduled) {
      scheduled = true
      turn = setImmediate(flushTurn)
    }
    // after this publish's own steps (Aedes runs them in ticks and microtasks), before the next's
    heldSinceEmit = 0
    if (expected > 0 && packet.qos === 1 && --expected === 0) process.nextTick(flush)
    return local ? emitLocal(message, part) : bus
  }
  ;(bus as { stats: BusStats }).stats = stats
  bus.ownChannel = () => delivery.useOwnChannel()
  bus.expect = (): void => {
    expected++
    heldSinceEmit++
  }
  return bus
}
