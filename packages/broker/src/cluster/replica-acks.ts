/**
 * Acknowledged writes on replicas (issue 13). Replication from a Redis primary to its replicas
 * is asynchronous: a QoS 1/2 message written to the primary (offline session queues, retained,
 * a QoS 2 message awaiting PUBREL) and acknowledged to its publisher can be missing on the
 * replica Sentinel promotes when the primary dies. With `redis_min_replicas_acked` N > 0 the
 * cluster bus (bus.ts) holds the emit callbacks of a batch holding QoS 1/2 messages, and with
 * them the PUBACK (broker/puback-after-publish.ts waits for the end of the publish) and the
 * PUBREC (Aedes writes it after the publish) [MQTT-4.3.2-2] [MQTT-4.3.3-2], until
 * `WAIT N timeout` says N replicas have every write made before it.
 *
 * - One WAIT per batch, not per message: batches that complete while a WAIT is out share the
 *   next one. WAIT covers the writes of the connection that sends it, and the replication
 *   offset is one for the whole server, so this node's `-wait` link first writes a small key
 *   of its own (SET culex:ack:<node>): that write comes after every write the data link had
 *   an answer for, and WAIT covers it. The data link is never blocked by a WAIT.
 * - A replica down: WAIT answers after `timeout` with fewer replicas. The acknowledgement
 *   leaves anyway (availability first: one replica down must not stop the cluster), counted
 *   in culex_replica_ack_timeouts_total (per WAIT) and logged once per episode at warn, and
 *   once at info when the replicas acknowledge again.
 * - A failover: a write the old primary answered may never have reached the new one, and a
 *   WAIT resent to the new primary by ioredis would vouch for it. So every QoS 1/2 publish
 *   notes the link epoch (+1 at every close of the data, bus publisher or wait link) when it
 *   starts (broker.publish); a batch holding a publish that started in an earlier epoch, or
 *   whose WAIT crossed a close, is not acknowledged yet: its QoS 1/2 messages are published
 *   again by this node (same brokerId/brokerCounter, so their offline-queue and retained writes
 *   are made again on the new primary; through the seam, aedes-republish.ts, without the
 *   `published` hook; the bus leaves this node's subscribers out, `isResend`, and the other nodes
 *   drop it where they delivered it, bus-seen.ts: QoS 1 would allow the copy [MQTT-4.3.2-1], but
 *   the cluster can tell), and the batch's PUBACKs/PUBRECs leave once that publish is
 *   confirmed in turn [MQTT-4.3.2-2]. The publishers' connections stay open. Failing the batch
 *   instead made Aedes close every publisher with a message in it, each reconnecting (~2.7 s:
 *   the node is not ready during the failover) and sending its whole in-flight window again
 *   (docs/cluster.md, Redis high availability). Bounded: at most MAX_RESENDING messages in
 *   resends and MAX_ATTEMPTS resends of one message; past either the batch fails as before
 *   (the publisher's connection closes and it sends again).
 */
import type { Aedes } from 'aedes'
import type { Redis } from 'ioredis'
import { Counter, type Registry } from 'prom-client'
import type { Logger } from '../log.js'
import { messageKey, watchQoSPublishes, type MessageIds as Stamped, type Republish } from '../seam/index.js'

type Done = (err?: Error | null) => void
interface Entry {
  epoch: number
  done: Done
  packets: Stamped[]
  /** resends the messages of this batch already had (the most of any) */
  attempt: number
}

/** messages being published again at once, at most (each is held in memory meanwhile) */
export const MAX_RESENDING = 20_000
/** resends of one message, at most (one per failover it crosses) */
export const MAX_ATTEMPTS = 3

export interface ReplicaAcksOptions {
  /** a link of its own (culex-<node>-wait): WAIT blocks the connection it is sent on */
  conn: Redis
  /** links whose drop may lose answered writes (data, bus publisher) */
  watch: Redis[]
  nodeId: string
  min: number
  timeoutMs: number
  log: Logger
}

export class ReplicaAcks {
  /** WAITs answered with fewer than `min` replicas */
  timeouts = 0
  /** batches failed because a link dropped under them (their publishers send again) */
  failed = 0
  /** QoS 1/2 messages this node published again because a link dropped under their batch */
  resent = 0
  /** copies of messages another node published again, dropped here: this node had delivered them (bus-seen.ts) */
  copiesDropped = 0
  private resending = 0
  /** resends so far of the messages being resent, by `<brokerId>:<brokerCounter>` */
  private readonly attempts = new Map<string, number>()
  private publish: Republish | undefined
  private epoch = 0
  /** publish start epochs by `<brokerId>:<brokerCounter>` */
  private readonly starts = new Map<string, number>()
  private queue: Entry[] = []
  private inFlight = false
  private degradedSince: number | undefined
  private degradedWaits = 0
  private closed = false
  private readonly key: string

  private readonly unwatch: Array<() => void> = []

  constructor(private readonly o: ReplicaAcksOptions) {
    this.key = `culex:ack:${o.nodeId}`
    // a new epoch when a link that was ready drops (its answered writes may be lost); the failed
    // attempts to reconnect that follow sent nothing (ioredis queues commands meanwhile)
    for (const c of [o.conn, ...o.watch]) {
      let wasReady = c.status === 'ready'
      const ready = (): void => void (wasReady = true)
      const close = (): void => {
        if (wasReady) this.epoch++
        wasReady = false
      }
      c.on('ready', ready)
      c.on('close', close)
      this.unwatch.push(() => {
        c.off('ready', ready)
        c.off('close', close)
      })
    }
  }

  /**
   * Note the epoch at which each QoS 1/2 publish starts, by its message's id (the seam,
   * aedes-republish.ts, row A26), and keep the seam's way to publish a message again
   */
  attach(broker: Aedes): void {
    this.publish = watchQoSPublishes(broker, {
      started: (id) => void this.starts.set(id, this.epoch),
      finished: (id) => void this.starts.delete(id),
    })
  }

  /**
   * the bus asks this for each QoS 1/2 message it sends: true while this node publishes it again
   * (the bus then leaves its local subscribers out, they had it, and flags it for the other nodes,
   * which drop it where they delivered it: bus-seen.ts). No allocation while nothing is resent.
   */
  isResend(p: Stamped): boolean {
    return this.attempts.size !== 0 && this.attempts.has(messageKey(p))
  }

  /** the bus calls this for a batch Redis handed to every node: done once replicas have it */
  confirm(packets: Stamped[], done: Done): void {
    if (this.closed) return done()
    let epoch = this.epoch
    let durable = false
    let attempt = 0
    for (const p of packets) {
      if (!(Number(p.qos) > 0)) continue
      durable = true
      const key = messageKey(p)
      const start = this.starts.get(key)
      if (start !== undefined && start < epoch) epoch = start
      attempt = Math.max(attempt, this.attempts.get(key) ?? 0)
    }
    if (!durable) return done()
    this.queue.push({ epoch, done, packets, attempt })
    if (!this.inFlight) this.next()
  }

  private next(): void {
    const batch = this.queue
    if (batch.length === 0 || this.closed) return
    this.queue = []
    this.inFlight = true
    const sentEpoch = this.epoch
    const { conn, min, timeoutMs } = this.o
    const end = (err: Error | null, replicas: number): void => {
      this.inFlight = false
      const crossed = this.epoch !== sentEpoch
      for (const b of batch) {
        if (err) this.fail(b, err)
        else if (crossed || b.epoch !== sentEpoch) this.resend(b)
        else b.done()
      }
      if (!err && !crossed) this.track(replicas)
      this.next()
    }
    // SET: a write of this link's own, after the data link's answered writes; WAIT covers it
    Promise.all([conn.set(this.key, String(sentEpoch), 'PX', 60_000), conn.call('WAIT', String(min), String(timeoutMs)) as Promise<number>]).then(
      ([, replicas]) => end(null, Number(replicas)),
      (err: Error) => end(err, 0),
    )
  }

  private fail(b: Entry, err: Error): void {
    this.failed++
    b.done(err)
  }

  /**
   * A link dropped under the batch: publish its QoS 1/2 messages again (their writes may be
   * missing on the new primary), then let its acknowledgements go, or fail it if that fails
   */
  private resend(b: Entry): void {
    const lost = (): Error => new Error('Redis link dropped (failover?) before the replicas confirmed the message: not acknowledged, the publisher sends it again')
    const publish = this.publish
    const again = b.packets.filter((p) => Number(p.qos) > 0)
    if (!publish || this.closed || b.attempt >= MAX_ATTEMPTS || this.resending + again.length > MAX_RESENDING) return this.fail(b, lost())
    if (this.resending === 0) this.o.log.info({ messages: again.length, attempt: b.attempt + 1 }, 'Redis link dropped before the replicas confirmed QoS 1/2 messages: publishing them again (their PUBACKs wait)')
    this.resending += again.length
    this.resent += again.length
    let left = again.length
    let failure: Error | null | undefined
    const keys = again.map(messageKey)
    for (const k of keys) this.attempts.set(k, b.attempt + 1)
    const one: Done = (err) => {
      failure ??= err
      if (--left > 0) return
      this.resending -= again.length
      for (const k of keys) this.attempts.delete(k)
      if (failure) this.fail(b, lost())
      else b.done()
    }
    for (const p of again) publish(p, one)
  }

  private track(replicas: number): void {
    const { min, timeoutMs, log } = this.o
    if (replicas < min) {
      this.timeouts++
      this.degradedWaits++
      if (this.degradedSince === undefined) {
        this.degradedSince = Date.now()
        log.warn(
          { replicas, redis_min_replicas_acked: min, timeout_ms: timeoutMs },
          'Redis replicas did not acknowledge within redis_replicas_ack_timeout_ms: QoS 1/2 acknowledgements leave without them until they do (a failover meanwhile can lose those messages)',
        )
      }
    } else if (this.degradedSince !== undefined) {
      log.info({ replicas, ms: Date.now() - this.degradedSince, waits_timed_out: this.degradedWaits }, 'Redis replicas acknowledge writes again')
      this.degradedSince = undefined
      this.degradedWaits = 0
    }
  }

  /** culex_replica_ack_timeouts_total, _failed_total, _resent_total and _copies_dropped_total on the node's registry */
  register(registry: Registry): void {
    const read = (name: string, help: string, get: () => number): void =>
      void new Counter({
        name,
        help,
        registers: [registry],
        collect() {
          this.reset()
          this.inc(get())
        },
      })
    read('culex_replica_ack_timeouts_total', 'Redis WAITs for redis_min_replicas_acked replicas that timed out (the acknowledgements left without them)', () => this.timeouts)
    read('culex_replica_ack_failed_total', 'Batches of QoS 1/2 messages not acknowledged because a Redis link dropped before the replicas confirmed them (sent again by their publishers)', () => this.failed)
    read('culex_replica_ack_resent_total', 'QoS 1/2 messages published again by their node because a Redis link dropped (failover) before the replicas confirmed them; their PUBACKs waited, the publishers stayed connected', () => this.resent)
    read('culex_replica_ack_copies_dropped_total', 'QoS 1/2 messages another node published again after a failover, dropped here because this node had delivered them already', () => this.copiesDropped)
  }

  close(): void {
    this.closed = true
    for (const off of this.unwatch.splice(0)) off()
    const left = this.queue
    this.queue = []
    for (const b of left) b.done(new Error('closing before the replicas confirmed the message'))
  }
}
