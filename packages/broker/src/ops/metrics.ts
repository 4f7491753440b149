/**
 * Prometheus metrics (prom-client). Hot-path counters are plain integers
 * bumped by the broker hooks; prom-client reads them only at scrape time
 * (`collect`), so counting allocates nothing per message.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import type { Aedes } from 'aedes'
import type { SocketTracker } from './sockets.js'
import { clientsOf, grantedSubscriptions } from '../seam/index.js'

export class HotCounters {
  messagesReceived = 0
  messagesDelivered = 0
  publishDenied = 0
  /** PUBLISH packets refused for the client's max_publishes_per_s (limits/publish-quota.ts) */
  publishOverQuota = 0
  /** CONNECTs refused for their credentials (wrong password, unknown user, anonymous not allowed) */
  authFailures = 0
  /** QoS 0 messages dropped, by reason (the `reason` label of culex_messages_dropped_total) */
  readonly dropped: Record<DropReason, number> = { subscriber_stuck: 0, subscriber_behind: 0, node_overloaded: 0, too_large_for_client: 0 }
  /** deliveries handed to clients and not yet written (limits/delivery.ts) */
  queuedDeliveries = 0
  /**
   * QoS 1/2 deliveries waiting for room in their clients' in-flight windows (limits/client-guard.ts
   * `held`), of clients that read: the standing queue a subscriber that acknowledges slower than
   * its publishers publish builds, which the publish gate bounds (delivery_buffer_messages). Exact
   * after resyncBacklog(), as queuedBytes.
   */
  heldDeliveries = 0
  /**
   * bytes written to the sockets of clients that read and not yet taken by
   * the kernel (limits/delivery.ts): what the publish gate (broker/backpressure.ts)
   * and the cluster bus bound. Exact after resyncBacklog(); between, it may
   * count bytes the kernel has taken since (never fewer than are waiting).
   */
  queuedBytes = 0
  /** one re-read per socket counted in queuedBytes with bytes waiting */
  readonly backlogged = new Set<{ resync(): void }>()

  resyncBacklog(): void {
    for (const b of this.backlogged) b.resync()
  }

  get droppedQos0(): number {
    const d = this.dropped
    return d.subscriber_stuck + d.subscriber_behind + d.node_overloaded
  }
  /** connections closed for a client's fault: a malformed packet (limits/guard.ts) or an exception in its handling (limits/client-faults.ts); or because Redis refused a command for it (ops/redis-refusals.ts) */
  readonly clientErrors = { malformed_packet: 0, exception: 0, redis: 0 }
}

/**
 * Why a QoS 0 message was dropped: a subscriber that reads nothing (over
 * max_queued / max_queued_bytes), one that reads slower than the others
 * (over qos0_client_buffer_bytes), or, cluster, a node whose delivery buffer
 * is full when a message arrives from a peer. And a message of any QoS not
 * sent to an MQTT 5 client because it is larger than the Maximum Packet Size
 * the client stated [MQTT-3.1.2-25] (limits/client-packet-size.ts).
 */
export type DropReason = 'subscriber_stuck' | 'subscriber_behind' | 'node_overloaded' | 'too_large_for_client'

export interface MetricSources {
  broker: Aedes
  counters: HotCounters
  sockets: SocketTracker
  /** retained messages stored (broker/create.ts: counted without reading them) */
  retainedCount: () => number | Promise<number>
}

function monotonic(name: string, help: string, read: () => number, registry: Registry): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset()
      this.inc(read())
    },
  })
}

export function createMetrics({ broker, counters, sockets, retainedCount }: MetricSources): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  new Gauge({
    name: 'culex_clients_connected',
    help: 'MQTT clients connected to this node',
    registers: [registry],
    collect() {
      this.set(broker.connectedClients ?? 0)
    },
  })
  monotonic('culex_messages_received_total', 'PUBLISH packets received from clients', () => counters.messagesReceived, registry)
  monotonic('culex_messages_delivered_total', 'PUBLISH packets delivered to subscribers', () => counters.messagesDelivered, registry)
  monotonic('culex_publish_denied_total', 'PUBLISH packets refused by authorization', () => counters.publishDenied, registry)
  monotonic('culex_publish_quota_exceeded_total', 'PUBLISH packets refused for the client\'s max_publishes_per_s (MQTT 5: PUBACK/PUBREC 0x97 or a QoS 0 message dropped; 3.1.1: the connection closed)', () => counters.publishOverQuota, registry)
  monotonic('culex_auth_failures_total', 'CONNECTs refused for their credentials: wrong password, unknown user, anonymous not allowed', () => counters.authFailures, registry)
  new Counter({
    name: 'culex_messages_dropped_total',
    help: 'Messages dropped instead of delivered, by reason: QoS 0 ones for subscriber_stuck (reads nothing), subscriber_behind (slower than the others), node_overloaded (cluster: delivery buffer full); any QoS for too_large_for_client (larger than the MQTT 5 client\'s Maximum Packet Size)',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset()
      for (const [reason, n] of Object.entries(counters.dropped)) this.inc({ reason }, n)
    },
  })
  new Counter({
    name: 'culex_client_errors_total',
    help: 'Client connections closed for a malformed packet, an exception in their handling, or a command Redis refused for them',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset()
      for (const [reason, n] of Object.entries(counters.clientErrors)) this.inc({ reason }, n)
    },
  })
  monotonic('culex_bytes_received_total', 'Bytes read from client sockets', () => sockets.bytesRead, registry)
  monotonic('culex_bytes_sent_total', 'Bytes written to client sockets', () => sockets.bytesWritten, registry)
  new Gauge({
    name: 'culex_queued_deliveries',
    help: 'Deliveries waiting to be written to client sockets on this node',
    registers: [registry],
    collect() {
      this.set(counters.queuedDeliveries)
    },
  })
  new Gauge({
    name: 'culex_held_deliveries',
    help: 'QoS 1/2 deliveries waiting for room in their clients\' in-flight windows on this node (bounded by delivery_buffer_messages)',
    registers: [registry],
    collect() {
      counters.resyncBacklog()
      this.set(counters.heldDeliveries)
    },
  })
  new Gauge({
    name: 'culex_queued_bytes',
    help: 'Bytes waiting to be written to client sockets on this node (bounded by delivery_buffer_bytes)',
    registers: [registry],
    collect() {
      counters.resyncBacklog()
      this.set(counters.queuedBytes)
    },
  })
  new Gauge({
    name: 'culex_subscriptions',
    help: 'Subscriptions held by clients connected to this node',
    registers: [registry],
    collect() {
      const clients = clientsOf(broker)
      let n = 0
      for (const id in clients) n += Object.keys(grantedSubscriptions(clients[id]!)).length
      this.set(n)
    },
  })
  new Gauge({
    name: 'culex_retained_messages',
    help: 'Retained messages stored (cluster-wide in cluster mode)',
    registers: [registry],
    async collect() {
      this.set(await retainedCount())
    },
  })
  return registry
}

/**
 * culex_bus_batches_read_total{from}: cluster bus batches this node read from Redis, `peers` (other
 * nodes' messages) and `self` (its own, read back on the shared bus channel and dropped: only
 * while a node of the previous release is live, or in the 1.5 s after the node's subscriber link
 * (re)subscribed; cluster/bus-channels.ts)
 */
export function registerBusMetrics(registry: Registry, stats: { fromPeers: number; ownReadBack: number }): void {
  new Counter({
    name: 'culex_bus_batches_read_total',
    help: 'Cluster bus batches read from Redis: from=peers, the other nodes\' messages; from=self, this node\'s own read back on the shared bus channel and dropped (while a node of the previous release is live)',
    labelNames: ['from'],
    registers: [registry],
    collect() {
      this.reset()
      this.inc({ from: 'peers' }, stats.fromPeers)
      this.inc({ from: 'self' }, stats.ownReadBack)
    },
  })
}

/**
 * culex_redis_data_lost_total: the times this node found, after its Redis links were down, that
 * Redis had lost its data (cluster/redis-data-loss.ts) and wrote its clients' sessions again: alert
 * on it; retained messages and offline sessions' queues were lost with the data (run Redis with AOF)
 */
export function registerRedisDataLossMetric(registry: Registry, losses: () => number): void {
  monotonic('culex_redis_data_lost_total', 'Times this node found Redis had lost its data (restarted without AOF, a replica promoted empty) and wrote its connected clients\' sessions, subscriptions and wills again; retained messages and offline sessions\' queues were lost with it', losses, registry)
}
